"""Generate the iisfleet JEA endpoint: a module, its role capability, a session configuration, a README.

What is generated follows the collectors and wrappers as they are at export time:

* ``IisFleet/IisFleet.psm1``: one exported function per collector of the catalogue, named by
  :func:`toolkit.jea.function_name`, with the collector's parameters (names and types from its sidecar).
  Each calls a private function whose body is the collector's wrapper text as bundled, so the module runs
  exactly the code iisfleet would otherwise send with ``add_script``. When the target-side C# core exists
  (``ps_scripts/core``) the module carries its source next to it (``IisFleet.Core.cs``) and compiles it with
  ``Add-Type`` once per session, on the first call: under JEA no loader script can be sent.
* ``IisFleet/IisFleet.psd1``: the module manifest; ``FunctionsToExport`` lists exactly those functions.
* ``IisFleet/RoleCapabilities/IisFleetCollector.psrc``: ``VisibleFunctions`` exactly those functions,
  module-qualified; nothing else visible (no cmdlets, providers or external commands).
* ``IisFleet.pssc``: ``RestrictedRemoteServer`` (NoLanguage), a virtual account (optionally limited to
  named local groups) or a gMSA, and ``RoleDefinitions`` mapping the admin's AD group to the role.
* ``README.md``: where to copy the module and the registration commands. iisfleet never runs them.

Why module functions work in a NoLanguage session (they run in the system's default language mode,
FullLanguage unless AppLocker/WDAC enforce) and what the run-as account may read: docs/jea.md.
JEA sessions wrap ``Select-Object``, ``Measure-Object``, ``Get-Command`` … in restricted proxies, even
when a module function calls them; the generated wrappers therefore call those by their module-qualified
names.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from toolkit import __version__
from toolkit.collectors import PARAM_TYPES, Collector, load_catalog
from toolkit.errors import ConfigError, UsageError
from toolkit.jea import DEFAULT_ENDPOINT, MODULE_NAME, ROLE_NAME, function_name
from toolkit.jea.psd1 import quote
from toolkit.resources import ps_scripts_dir

#: Commands a RestrictedRemoteServer session replaces with restricted proxies, and their real modules.
RESTRICTED_PROXIES = {
    "Select-Object": "Microsoft.PowerShell.Utility",
    "Measure-Object": "Microsoft.PowerShell.Utility",
    "Get-Command": "Microsoft.PowerShell.Core",
    "Get-Help": "Microsoft.PowerShell.Core",
    "Get-FormatData": "Microsoft.PowerShell.Utility",
    "Out-Default": "Microsoft.PowerShell.Core",
    "Exit-PSSession": "Microsoft.PowerShell.Core",
}
_PROXY_RE = re.compile(r"(?<![\w\\.-])(" + "|".join(map(re.escape, RESTRICTED_PROXIES)) + r")(?![\w-])",
                       re.IGNORECASE)
#: An AD group or local group as RoleDefinitions takes it: DOMAIN\Name or COMPUTER\Name.
_GROUP_RE = re.compile(r"^[^\\/:*?\"<>|\r\n]+\\[^\\/:*?\"<>|\r\n]+$")
_GMSA_RE = re.compile(r"^[^\\/:*?\"<>|\r\n]+\\[^\\/:*?\"<>|\r\n]+\$?$")
_ENDPOINT_RE = re.compile(r"^[A-Za-z][\w.-]{0,63}$")
CORE_FILE = f"{MODULE_NAME}.Core.cs"


@dataclass(frozen=True)
class ExportOptions:
    group: str  # the AD group whose members may use the endpoint, DOMAIN\Name
    endpoint: str = DEFAULT_ENDPOINT
    gmsa: str | None = None  # DOMAIN\account$ ; None: a virtual account
    virtual_account_groups: tuple[str, ...] = ()  # local groups instead of Administrators
    transcript_directory: str | None = None

    def check(self) -> None:
        if not _GROUP_RE.match(self.group):
            raise UsageError(f"--group {self.group!r}: give the group as DOMAIN\\Name (a local group as "
                             "COMPUTER\\Name)")
        if self.gmsa is not None and not _GMSA_RE.match(self.gmsa):
            raise UsageError(f"--gmsa {self.gmsa!r}: give the account as DOMAIN\\Name$")
        if self.gmsa and self.virtual_account_groups:
            raise UsageError("--virtual-account-group applies to a virtual account, not to a gMSA")
        if not _ENDPOINT_RE.match(self.endpoint):
            raise UsageError(f"--endpoint {self.endpoint!r}: letters, digits, '.', '-', '_' (start with a letter)")
        for name in (self.group, self.gmsa or "", *self.virtual_account_groups, self.transcript_directory or ""):
            try:
                quote(name)
            except ValueError as exc:
                raise UsageError(str(exc)) from None


@dataclass(frozen=True)
class Export:
    files: dict[str, str]  # relative path (POSIX) -> text
    functions: tuple[str, ...]
    core_version: str | None

    def write(self, directory: Path) -> list[Path]:
        """Write every file under ``directory`` (created if needed; existing files are replaced)."""
        written = []
        for relative, text in self.files.items():
            target = Path(directory) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            # CRLF: these files are read by Windows PowerShell and admins' editors on the server.
            target.write_bytes(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))
            written.append(target)
        return written


def _core() -> tuple[str, str] | None:
    """(source text, version) of the target-side core, or None when this version has no core."""
    try:
        folder = ps_scripts_dir().joinpath("core")
        if not folder.is_dir():
            return None
    except FileNotFoundError:
        return None
    try:
        from toolkit.targetcore.source import core_source
    except ImportError:  # the core's Python side is not in this installation: carry the files as they are
        names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".cs"))
        if not names:
            return None
        text = "".join(folder.joinpath(name).read_text(encoding="utf-8-sig").replace("\r\n", "\n").rstrip() + "\n"
                       for name in names)
        return text, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    source = core_source()
    return source.text, source.version


def _core_references() -> tuple[str, ...]:
    try:
        from toolkit.targetcore.source import REFERENCES
    except ImportError:
        return ("System.dll", "System.Core.dll", "System.Xml.dll")
    return tuple(REFERENCES)


def qualify_restricted(script: str) -> str:
    """``script`` with every restricted-proxy command called by its module-qualified name."""
    return _PROXY_RE.sub(lambda m: f"{RESTRICTED_PROXIES[_canonical(m.group(1))]}\\{_canonical(m.group(1))}",
                         script)


def _canonical(name: str) -> str:
    return next(key for key in RESTRICTED_PROXIES if key.lower() == name.lower())


def _private_name(collector: Collector) -> str:
    from toolkit.collectors import session_function_name

    return session_function_name(collector.id)  # the name a WinRM session's loader gives the same wrapper


def _function(collector: Collector) -> str:
    name = function_name(collector.id)
    params = ",\n".join(f"        [{PARAM_TYPES[p.type]}]${p.name}" for p in collector.parameters)
    body = qualify_restricted(collector.script).rstrip()
    return f"""
# ---- {collector.id}/{collector.version}: the bundled wrapper, unchanged apart from qualified proxy commands
function {_private_name(collector)} {{
{body}
}}

function {name} {{
    <#
    .SYNOPSIS
        iisfleet collector {collector.id}/{collector.version} (read-only). Called by iisfleet through the JEA endpoint.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
{params}
    )
    Initialize-{MODULE_NAME}Core
    {_private_name(collector)} @PSBoundParameters
}}
"""


def _module(collectors: list[Collector], core: tuple[str, str] | None) -> str:
    if core is None:
        loader = f"""
function Initialize-{MODULE_NAME}Core {{
    # This iisfleet version has no compiled core: the collectors are plain PowerShell.
}}
"""
    else:
        references = ", ".join(quote(r) for r in _core_references())
        loader = f"""
$script:CoreVersion = {quote(core[1])}
$script:CorePath = Join-Path -Path $PSScriptRoot -ChildPath {quote(CORE_FILE)}

function Initialize-{MODULE_NAME}Core {{
    # Compiled once per session (one wsmprovhost process): a loaded type cannot be replaced, so a
    # different version already loaded is an error rather than a silent mix.
    $loaded = 'IisFleet.Target.Core' -as [type]
    if ($null -eq $loaded) {{
        $source = [System.IO.File]::ReadAllText($script:CorePath)
        Add-Type -TypeDefinition $source -Language CSharp -ReferencedAssemblies @({references})
        $loaded = 'IisFleet.Target.Core' -as [type]
    }}
    $version = $loaded.GetField('Version')
    if ($null -ne $version -and $version.GetValue($null) -ne $script:CoreVersion) {{
        throw ('IisFleet.Target.Core {{0}} is already loaded in this session; this module carries {{1}}' -f $version.GetValue($null), $script:CoreVersion)
    }}
}}
"""
    header = f"""# {MODULE_NAME} module generated by iisfleet {__version__} (`iisfleet jea export`). Do not edit:
# export again after upgrading iisfleet, so the functions match the controller's collectors.
# Every function is read-only; see the collectors' sidecars for what each reads.
Set-StrictMode -Version Latest
"""
    exports = ", ".join(quote(function_name(c.id)) for c in collectors)
    return header + loader + "".join(_function(c) for c in collectors) + \
        f"\nExport-ModuleMember -Function @({exports})\n"


def _guid(*parts: str) -> str:
    """A stable GUID for a generated file (same inputs, same file: exports can be diffed)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "iisfleet-jea:" + ":".join(parts)))


def _list(items: list[str], indent: str = "    ") -> str:
    return "@(\n" + "".join(f"{indent}    {quote(i)}\n" for i in items) + f"{indent})"


def _manifest(functions: list[str], fingerprint: str) -> str:
    return f"""@{{
    RootModule = '{MODULE_NAME}.psm1'
    ModuleVersion = '{_module_version()}'
    GUID = '{_guid("module", fingerprint)}'
    Author = 'iisfleet'
    Description = 'Read-only collectors of iisfleet, exposed to its JEA endpoint'
    PowerShellVersion = '5.0'
    FunctionsToExport = {_list(functions)}
    CmdletsToExport = @()
    VariablesToExport = @()
    AliasesToExport = @()
}}
"""


def _module_version() -> str:
    numbers = [int(n) for n in re.findall(r"\d+", __version__)[:3]]
    return ".".join(str(n) for n in (numbers + [0, 0, 0])[:3])


def _role(functions: list[str], fingerprint: str) -> str:
    qualified = [f"{MODULE_NAME}\\{f}" for f in functions]
    return f"""@{{
    GUID = '{_guid("role", fingerprint)}'
    Author = 'iisfleet'
    Description = 'Run the read-only iisfleet collectors, nothing else'
    ModulesToImport = {quote(MODULE_NAME)}
    VisibleFunctions = {_list(qualified)}
}}
"""


def _session(options: ExportOptions, fingerprint: str) -> str:
    lines = [
        "@{",
        "    SchemaVersion = '2.0.0.0'",
        f"    GUID = '{_guid('session', fingerprint, options.group)}'",
        "    Author = 'iisfleet'",
        f"    Description = {quote('iisfleet read-only collectors for ' + options.group)}",
        "    SessionType = 'RestrictedRemoteServer'",
    ]
    if options.gmsa:
        lines.append(f"    GroupManagedServiceAccount = {quote(options.gmsa)}")
    else:
        lines.append("    RunAsVirtualAccount = $true")
        if options.virtual_account_groups:
            lines.append(f"    RunAsVirtualAccountGroups = {_list(list(options.virtual_account_groups))}")
    if options.transcript_directory:
        lines.append(f"    TranscriptDirectory = {quote(options.transcript_directory)}")
    lines.append(f"    RoleDefinitions = @{{ {quote(options.group)} = @{{ RoleCapabilities = {quote(ROLE_NAME)} }} }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _readme(options: ExportOptions, functions: list[str], core_version: str | None) -> str:
    run_as = (f"the gMSA `{options.gmsa}`" if options.gmsa else
              "a virtual account in the local groups " + ", ".join(f"`{g}`" for g in options.virtual_account_groups)
              if options.virtual_account_groups else
              "a virtual account (member of the local Administrators group for the session only)")
    core = (f"It carries the target-side core (`{CORE_FILE}`, version {core_version}), compiled by `Add-Type` "
            "once per session on the first call." if core_version else "")
    return f"""# iisfleet JEA endpoint `{options.endpoint}`

Generated by `iisfleet jea export` (iisfleet {__version__}). iisfleet never registers it: an administrator of
each web server does, with the commands below. Members of `{options.group}` can then run the collectors
and nothing else; the commands run as {run_as}.

| file | what it is |
|---|---|
| `{MODULE_NAME}/{MODULE_NAME}.psm1` | one read-only function per collector ({len(functions)}): {", ".join(functions)}. {core} |
| `{MODULE_NAME}/{MODULE_NAME}.psd1` | the module manifest |
| `{MODULE_NAME}/RoleCapabilities/{ROLE_NAME}.psrc` | the role: those functions are visible, nothing else |
| `{MODULE_NAME}.pssc` | the session configuration (RestrictedRemoteServer: NoLanguage, no providers, no external commands) |

## Register (elevated Windows PowerShell 5.1 on the web server)

```powershell
# 1. the module, where only administrators can change it
Copy-Item -Recurse -Force .\\{MODULE_NAME} "$env:ProgramFiles\\WindowsPowerShell\\Modules\\{MODULE_NAME}"
# 2. check the session configuration, then register it (this restarts WinRM: open sessions drop)
Test-PSSessionConfigurationFile -Path .\\{MODULE_NAME}.pssc
Register-PSSessionConfiguration -Name '{options.endpoint}' -Path .\\{MODULE_NAME}.pssc -Force
# 3. see what a member of the group gets
Get-PSSessionCapability -ConfigurationName '{options.endpoint}' -Username '{options.group.split(chr(92))[0]}\\<a member>'
```

After upgrading iisfleet, export again and copy the module again (a new session picks it up; the
endpoint need not be registered again unless the .pssc changed). To remove it:
`Unregister-PSSessionConfiguration -Name '{options.endpoint}'` and delete the module folder.

## Use it from iisfleet

```yaml
defaults:
  winrm: {{configuration_name: {options.endpoint}, jea: true}}
```

Over JEA every collector is called as a function with named parameters; no script text is sent. JEA needs
PowerShell 5.0 or later on the server (Windows Server 2012 R2 with WMF 5.1) and WinRM; it does not apply
to SSH. If the server enforces AppLocker or WDAC, the module runs in ConstrainedLanguage unless the
policy allows it (sign it with a publisher the policy trusts); see docs/jea.md of iisfleet.
"""


def build_export(options: ExportOptions, catalog: Mapping[str, Collector] | None = None) -> Export:
    """The files of the JEA endpoint for ``catalog`` (default: the bundled collectors)."""
    options.check()
    collectors = list((catalog if catalog is not None else load_catalog()).values())
    if not collectors:
        raise ConfigError("no collector is bundled: nothing to export")
    functions = [function_name(c.id) for c in collectors]
    core = _core()
    fingerprint = hashlib.sha256("".join(c.id + c.script for c in collectors).encode("utf-8")).hexdigest()[:16]
    files = {
        f"{MODULE_NAME}/{MODULE_NAME}.psm1": _module(collectors, core),
        f"{MODULE_NAME}/{MODULE_NAME}.psd1": _manifest(functions, fingerprint),
        f"{MODULE_NAME}/RoleCapabilities/{ROLE_NAME}.psrc": _role(functions, fingerprint),
        f"{MODULE_NAME}.pssc": _session(options, fingerprint),
        "README.md": _readme(options, functions, core[1] if core else None),
    }
    if core is not None:
        files[f"{MODULE_NAME}/{CORE_FILE}"] = core[0]
    return Export(files=files, functions=tuple(functions), core_version=core[1] if core else None)


def visible_functions(export: Export) -> list[str]:
    """The VisibleFunctions of the exported role, as the lab and the checks read them back from the .psrc."""
    from toolkit.jea.psd1 import as_list, get, loads

    role = loads(export.files[f"{MODULE_NAME}/RoleCapabilities/{ROLE_NAME}.psrc"])
    names = []
    for entry in as_list(get(role, "VisibleFunctions")):
        name = get(entry, "Name") if isinstance(entry, dict) else entry
        names.append(str(name).split("\\")[-1])
    return names
