"""Static checks for the bundled PowerShell collectors (they never run on this machine).

Each ``check_*`` function takes a :class:`Script` and returns a list of problems (empty = pass), so
the same function is applied to the real collectors and to the deliberately bad snippets in
``bad_scripts/``, which prove that every check bites. Parsing uses the tree-sitter PowerShell grammar
from ``tree-sitter-language-pack==0.9.1`` (bundled grammars, works offline).

Known grammar gaps (valid PowerShell that this grammar rejects, so the collectors avoid it):
compound assignment ``-=``, labelled ``break``, a ``-bor`` expression directly inside a method's
argument list, a ``param()`` block on the same line as ``function X {``, and ``ForEach-Object
-Process {…}`` (the bare scriptblock form parses).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tree_sitter_language_pack import get_parser

from toolkit.resources import ps_scripts_dir

# ---------------------------------------------------------------------------------------------
# The read-only allow-list. Every command a collector runs must be here, with the reason it is safe.
# Names are matched case-insensitively. Script-local helper functions are allowed separately (see
# LOCAL_FUNCTION_VERBS) because their bodies are themselves checked.
ALLOWED_COMMANDS: dict[str, str] = {
    "Set-StrictMode": "changes only the running script's own strictness, nothing on the host",
    "Get-Date": "reads the clock (the time of a wrapper's environment refusal)",
    "ConvertTo-Json": "serialises the envelope to the output stream",
    "ConvertFrom-Json": "bootstrap only: parses the request read from stdin",
    "ForEach-Object": "bootstrap only: writes each output object of a request as soon as it comes",
    "Add-Type": "core loader only (see LOADER_ONLY_COMMANDS): compiles the bundled C# core in memory; the "
                "compiler's temp files are its only writes and it deletes them",
    "New-Object": "builds in-memory .NET objects (PowerShell 4.0 has no [T]::new()); write-capable and COM types "
                  "are refused by check_no_write_apis",
    "Get-CimInstance": "reads WMI/CIM classes (OS, computer, groups, users); CIM methods are never invoked",
    "Get-ItemProperty": "reads registry values (InetStp, Lsa, HTTP parameters)",
    "Test-Path": "checks existence",
    "Join-Path": "string operation on paths",
    "Get-WinEvent": "reads event logs and their state; never clears or exports",
    "secedit.exe": "only ever with /export (the temp file it must write is deleted in finally)",
}

#: Commands only the core loader may run: one place compiles code on the host.
LOADER_ONLY_COMMANDS = frozenset({"add-type"})
LOADER_STEM = "_core_loader"

#: Arguments a native command must (and must not) be given, so an allowed tool cannot be misused.
NATIVE_COMMAND_RULES: dict[str, tuple[str, re.Pattern[str]]] = {
    "secedit.exe": ("/export", re.compile(r"/(configure|import|generaterollback|validate)\b", re.I)),
    "setspn.exe": ("-L", re.compile(r"(^|\s)-(S|A|D|R|U|C|F|Q|X|T)\b", re.I)),
}

#: Verbs a script-local helper function may use; anything that sounds like a change is refused.
LOCAL_FUNCTION_VERBS = frozenset({"Get", "Read", "ConvertTo", "Test", "Add", "Measure", "Find", "Resolve"})

#: Verbs that change something. Refused for commands and for helper names alike.
WRITE_VERBS = frozenset({
    "Set", "New", "Remove", "Stop", "Restart", "Start", "Clear", "Disable", "Enable", "Install",
    "Uninstall", "Register", "Unregister", "Rename", "Move", "Copy", "Out", "Export", "Import", "Invoke",
    "Update", "Reset", "Suspend", "Resume", "Write", "Add", "Limit", "Grant", "Revoke", "Unblock", "Publish",
})

#: Built-in aliases of Windows PowerShell 5.1 (and common Unix-style ones) that collectors must not use.
ALIASES = frozenset({
    "%", "?", "ac", "asnp", "cat", "cd", "cfs", "chdir", "clc", "clear", "clhy", "cli", "clp", "cls", "clv",
    "cnsn", "compare", "copy", "cp", "cpi", "cpp", "curl", "cvpa", "dbp", "del", "diff", "dir", "dnsn", "ebp",
    "echo", "epal", "epcsv", "epsn", "erase", "etsn", "exsn", "fc", "fhx", "fl", "foreach", "ft", "fw", "gal",
    "gbp", "gc", "gcb", "gci", "gcm", "gcs", "gdr", "ghy", "gi", "gin", "gjb", "gl", "gm", "gmo", "gp", "gps",
    "gpv", "group", "gsn", "gsnp", "gsv", "gtz", "gu", "gv", "gwmi", "h", "history", "icm", "iex", "ihy", "ii",
    "ipal", "ipcsv", "ipmo", "ipsn", "irm", "ise", "iwmi", "iwr", "kill", "lp", "ls", "man", "md", "measure",
    "mi", "mount", "move", "mp", "mv", "nal", "ndr", "ni", "nmo", "npssc", "nsn", "nv", "ogv", "oh", "popd",
    "ps", "pushd", "pwd", "r", "rbp", "rcjb", "rcsn", "rd", "rdr", "ren", "ri", "rjb", "rm", "rmdir", "rmo",
    "rni", "rnp", "rp", "rsn", "rsnp", "rujb", "rv", "rvpa", "rwmi", "sajb", "sal", "saps", "sasv", "sbp", "sc",
    "scb", "select", "set", "shcm", "si", "sl", "sleep", "sls", "sort", "sp", "spjb", "spps", "spsv", "start",
    "stz", "sujb", "sv", "swmi", "tee", "trcm", "type", "wget", "where", "wjb", "write",
})

#: Commands that format or print for a person; a collector's output stream carries only JSON.
FORBIDDEN_OUTPUT = re.compile(r"^(Write-Host|Format-\w+|Out-String|Out-Host|Out-Default|Out-GridView)$", re.I)

#: PowerShell 7-only syntax and commands. Applied to code with strings and comments blanked.
PS7_PATTERNS: dict[str, re.Pattern[str]] = {
    "null-coalescing ??": re.compile(r"\?\?"),
    "null-conditional ?. or ?[": re.compile(r"\?\.|\}\?\[|\w\?\["),
    "pipeline chain &&": re.compile(r"&&"),
    "pipeline chain ||": re.compile(r"\|\|"),
    "ternary ?:": re.compile(r"\s\?\s[^\n]*\s:\s"),
    "-Parallel": re.compile(r"-Parallel\b", re.I),
    "-AsHashtable": re.compile(r"-AsHashtable\b", re.I),
    "ConvertTo-Json -AsArray": re.compile(r"-AsArray\b", re.I),
    "-EscapeHandling": re.compile(r"-EscapeHandling\b", re.I),
    "$PSStyle": re.compile(r"\$PSStyle\b", re.I),
    "Get-Error": re.compile(r"\bGet-Error\b", re.I),
    "Test-Json": re.compile(r"\bTest-Json\b", re.I),
    "Join-String": re.compile(r"\bJoin-String\b", re.I),
    "Get-Uptime": re.compile(r"\bGet-Uptime\b", re.I),
    "ConvertFrom-Markdown": re.compile(r"\bConvertFrom-Markdown\b", re.I),
    "clean block": re.compile(r"^\s*clean\s*\{", re.I | re.M),
    "$IsWindows/$IsLinux": re.compile(r"\$Is(Windows|Linux|MacOS|CoreCLR)\b", re.I),
}

#: Syntax Windows PowerShell 4.0 (Server 2012 R2's in-box version) cannot parse: a script using any of it
#: fails there with a parse error before its first line runs, so no envelope comes back. All of these
#: arrived in PowerShell 5.0. Applied to code with strings and comments blanked.
PS4_SYNTAX_PATTERNS: dict[str, re.Pattern[str]] = {
    "[T]::new() constructor (use New-Object)": re.compile(r"::\s*new\s*\(", re.I),
    "class definition": re.compile(r"^\s*class\s+[\w.]+\s*(:\s*[\w.]+\s*)?\{", re.I | re.M),
    "enum definition": re.compile(r"^\s*enum\s+\w+\s*\{", re.I | re.M),
    "using statement": re.compile(r"^\s*using\s+(namespace|module|assembly)\b", re.I | re.M),
    "Get-ChildItem -Depth": re.compile(r"\bGet-ChildItem\b[^\n|;]*\s-Depth\b", re.I),
    "Select-Object -SkipLast": re.compile(r"-SkipLast\b", re.I),
    "-NoNewline": re.compile(r"-NoNewline\b", re.I),
}

#: Commands that do not exist on a stock Server 2012 R2 (PowerShell 4.0, no LocalAccounts module).
PS4_MISSING_COMMANDS = frozenset(name.lower() for name in (
    "Get-LocalUser", "Get-LocalGroup", "Get-LocalGroupMember", "New-TemporaryFile", "Get-TimeZone",
    "Get-ComputerInfo", "ConvertFrom-String", "Format-Hex", "Get-Clipboard", "Set-Clipboard", "Compress-Archive",
    "Expand-Archive", "Get-ItemPropertyValue", "Write-Information", "New-Guid", "Import-PowerShellDataFile",
    "Get-Runspace", "Get-PSReadLineOption",
))

#: .NET calls that write. Applied to code with comments blanked (string arguments kept).
WRITE_API_PATTERNS: dict[str, re.Pattern[str]] = {
    "file write/delete/move": re.compile(
        r"\[(System\.)?IO\.(File|Directory)\]::(Write\w*|Append\w*|Delete|Move|Copy|Replace|Create\w*|Set\w+|"
        r"Encrypt|Decrypt|OpenWrite)\b", re.I),
    "writable file open": re.compile(
        r"FileAccess\]::(Write|ReadWrite)|FileMode\]::(Create|CreateNew|Append|Truncate|OpenOrCreate)", re.I),
    "stream writer / file stream": re.compile(r"\bStreamWriter\b|\bFileStream\]::new|\bFileInfo\]::new", re.I),
    "New-Object of a file, COM or process type": re.compile(
        r"New-Object\b[^\n]*(-ComObject\b|IO\.(FileStream|FileInfo|DirectoryInfo)\b|Diagnostics\.Process\b)", re.I),
    "temp file creation": re.compile(r"GetTempFileName", re.I),
    "registry write": re.compile(
        r"\.(SetValue|CreateSubKey|DeleteSubKey\w*|DeleteValue|SetAccessControl)\(|OpenSubKey\([^)]*\$true", re.I),
    "ACL change": re.compile(r"\.(SetAccessRule\w*|AddAccessRule|RemoveAccessRule\w*|SetOwner|SetSecurityDescriptor\w*)\(", re.I),
    "file-system object change": re.compile(r"\.(MoveTo|CopyTo|Delete|Create|CreateSubdirectory|Encrypt|Decrypt)\(", re.I),
    "WMI/CIM method or write": re.compile(r"Invoke-(Cim|Wmi)Method|\[WMIClass\]|\.Put\(\)|Set-(Cim|Wmi)Instance", re.I),
    "ADSI method other than Members": re.compile(r"\.Invoke\(\s*'(?!Members')", re.I),
    "reflection call other than GetProperty": re.compile(r"InvokeMember\([^,]+,\s*'(?!GetProperty')", re.I),
    "dynamic code": re.compile(r"Invoke-Expression|\[scriptblock\]::Create|AddScript\(", re.I),
    "service/process control": re.compile(r"ServiceController\]|\.(Start|Stop|Kill)\(\)|Diagnostics\.Process\]::Start", re.I),
}

#: A (file, pattern name) pair that is allowed, with the reason. Kept tiny on purpose.
WRITE_API_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("Get-LocalUserRight", "file write/delete/move"):
        "deletes the temp files secedit /export had to write; checked by check_temp_files_deleted_in_finally",
    ("_ssh_bootstrap", "dynamic code"): "the bootstrap's job is to run the collector script it receives",
    ("_core_loader", "dynamic code"): "defines the bundled wrappers as the session's functions (WinRM, once per "
        "session); the text is exactly toolkit.collectors.session_functions_text, which the lab checks",
    ("_ssh_bootstrap", "stream writer / file stream"):
        "its one StreamWriter wraps its own stdout ([Console]::OpenStandardOutput), never a file",
}

#: Sidecar type -> the PowerShell type literal in param().
PS_TYPE_FOR = {"int": "int", "long": "long", "string": "string", "string[]": "string[]", "bool": "bool"}

MARKER_RE = re.compile(r"^# collector-id: (?P<id>[A-Za-z_][\w-]*)/(?P<version>\d+)$", re.M)


@functools.cache
def _parser() -> Any:
    return get_parser("powershell")


@dataclass
class Script:
    """One PowerShell file plus its optional sidecar, parsed once."""

    path: Path
    raw: bytes
    sidecar: dict[str, Any] | None = None
    tree: Any = field(init=False)

    def __post_init__(self) -> None:
        self.tree = _parser().parse(self.raw)

    @classmethod
    def load(cls, path: Path) -> "Script":
        sidecar_path = path.with_suffix(".yml")
        sidecar = yaml.safe_load(sidecar_path.read_text("utf-8")) if sidecar_path.exists() else None
        return cls(path=path, raw=path.read_bytes(), sidecar=sidecar)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def is_bootstrap(self) -> bool:
        return self.stem.startswith("_")

    def text_of(self, node: Any) -> str:
        return self.raw[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def nodes(self, *types: str) -> Iterator[Any]:
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            if node.type in types:
                yield node
            stack.extend(reversed(node.children))

    def blanked(self, *, strings: bool) -> str:
        """The source with comments (and optionally string literals) replaced by spaces."""
        data = bytearray(self.raw)
        kinds = ("comment", "string_literal") if strings else ("comment",)
        for node in self.nodes(*kinds):
            for index in range(node.start_byte, node.end_byte):
                if data[index] not in (0x0A, 0x0D):
                    data[index] = 0x20
        return data.decode("utf-8", "replace")

    def line_of(self, offset_text: str, offset: int) -> int:
        return offset_text.count("\n", 0, offset) + 1


def command_name(script: Script, command: Any) -> str:
    """The name a ``command`` node invokes: ``Get-Item``, ``setspn.exe``, ``%``, or ``$variable``."""
    for child in command.children:
        if child.type == "command_name":
            return script.text_of(child)
        if child.type == "command_name_expr":
            inner = [c for c in child.children if c.type == "command_name"]
            return script.text_of(inner[0] if inner else child)
    # The grammar gives some aliases (``%``) no command_name node: take the first token.
    first = [c for c in command.children if c.type != "command_invokation_operator"]
    return script.text_of(first[0]).split()[0] if first else ""


def commands(script: Script) -> Iterator[tuple[str, Any]]:
    for node in script.nodes("command"):
        yield command_name(script, node), node


def local_functions(script: Script) -> set[str]:
    return {script.text_of(n).lower() for n in script.nodes("function_name")}


# ------------------------------------------------------------------------------------ the checks


def check_parses(script: Script) -> list[str]:
    problems = []
    for node in script.nodes("ERROR"):
        problems.append(f"line {node.start_point[0] + 1}: syntax error near {script.text_of(node)[:40]!r}")
    stack = [script.tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            problems.append(f"line {node.start_point[0] + 1}: missing {node.type!r}")
        stack.extend(node.children)
    return problems


def check_encoding(script: Script) -> list[str]:
    if script.raw.startswith(b"\xef\xbb\xbf"):
        return ["starts with a UTF-8 BOM; scripts travel as text and must be saved without one"]
    try:
        script.raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not UTF-8: {exc}"]
    return []


def check_no_ps7_syntax(script: Script) -> list[str]:
    code = script.blanked(strings=True)
    problems = []
    for label, pattern in PS7_PATTERNS.items():
        for match in pattern.finditer(code):
            problems.append(f"line {script.line_of(code, match.start())}: PowerShell 7-only {label}")
    return problems


def check_ps4_syntax(script: Script) -> list[str]:
    """Nothing PowerShell 4.0 cannot parse or run: 5.0 syntax, 5.x-only commands, ``#requires -Version 5``."""
    code = script.blanked(strings=True)
    problems = [f"line {script.line_of(code, match.start())}: PowerShell 5.0+ {label}; Server 2012 R2 runs 4.0"
                for label, pattern in PS4_SYNTAX_PATTERNS.items() for match in pattern.finditer(code)]
    for node in script.nodes("class_statement", "enum_statement"):
        problems.append(f"line {node.start_point[0] + 1}: PowerShell 5.0+ {node.type.split('_')[0]} definition")
    problems += [f"line {node.start_point[0] + 1}: {name} does not exist on PowerShell 4.0 / Server 2012 R2"
                 for name, node in commands(script) if name.lower() in PS4_MISSING_COMMANDS]
    text = script.raw.decode("utf-8", "replace")
    for match in re.finditer(r"^#requires\s+-version\s+(\d+)", text, re.I | re.M):
        if int(match.group(1)) > 4:
            problems.append(f"line {script.line_of(text, match.start())}: #requires -Version {match.group(1)}")
    return sorted(set(problems))


def check_no_aliases(script: Script) -> list[str]:
    return [f"line {node.start_point[0] + 1}: alias {name!r}; spell out the command"
            for name, node in commands(script) if name.lower() in ALIASES]


def check_no_host_formatting(script: Script) -> list[str]:
    return [f"line {node.start_point[0] + 1}: {name} writes for a person; emit data only"
            for name, node in commands(script) if FORBIDDEN_OUTPUT.match(name)]


def check_allowed_commands(script: Script) -> list[str]:
    allowed = {name.lower() for name in ALLOWED_COMMANDS}
    helpers = local_functions(script)
    problems = []
    for helper in sorted(helpers):
        verb = helper.split("-", 1)[0]
        if verb not in {v.lower() for v in LOCAL_FUNCTION_VERBS}:
            problems.append(f"helper function {helper!r} must use a read-only verb ({', '.join(sorted(LOCAL_FUNCTION_VERBS))})")
    for name, node in commands(script):
        line = node.start_point[0] + 1
        lowered = name.lower()
        if lowered in LOADER_ONLY_COMMANDS and script.stem != LOADER_STEM:
            problems.append(f"line {line}: {name} is for {LOADER_STEM}.ps1 only; wrappers call the loaded core")
            continue
        if name.startswith("$"):
            if not script.is_bootstrap:
                problems.append(f"line {line}: dynamic invocation of {name}; only the bootstrap may run a script block")
            continue
        if lowered in helpers:
            continue
        if lowered not in allowed:
            problems.append(f"line {line}: {name!r} is not on the read-only allow-list")
            continue
        rule = NATIVE_COMMAND_RULES.get(lowered)
        if rule:
            required, forbidden = rule
            text = script.text_of(node)
            if required.lower() not in text.lower().split() or forbidden.search(text):
                problems.append(f"line {line}: {name} must be called with {required} only: {text!r}")
    return problems


def check_no_write_apis(script: Script) -> list[str]:
    code = script.blanked(strings=False)
    problems = []
    for label, pattern in WRITE_API_PATTERNS.items():
        if (script.stem, label) in WRITE_API_EXCEPTIONS:
            continue
        for match in pattern.finditer(code):
            problems.append(f"line {script.line_of(code, match.start())}: {label}: {match.group(0)!r}")
    return problems


def check_temp_files_deleted_in_finally(script: Script) -> list[str]:
    """Any file deletion must sit in a ``finally`` block, and the sidecar must say so."""
    problems = []
    code = script.blanked(strings=False)
    deletes = [m.start() for m in re.finditer(r"\[System\.IO\.File\]::Delete\(", code)]
    if not deletes:
        return []
    finally_ranges = [(n.start_byte, n.end_byte) for n in script.nodes("finally_clause")]
    for offset in deletes:
        byte_offset = len(code[:offset].encode("utf-8"))
        if not any(start <= byte_offset < end for start, end in finally_ranges):
            problems.append(f"line {script.line_of(code, offset)}: file deletion outside a finally block")
    note = str((script.sidecar or {}).get("read_only", ""))
    if "temp" not in note.lower() or "finally" not in note.lower():
        problems.append("sidecar read_only must say which temp file is written and that it is deleted in finally")
    return problems


def check_marker(script: Script) -> list[str]:
    text = script.raw.decode("utf-8", "replace")
    markers = MARKER_RE.findall(text)
    if len(markers) != 1:
        return [f"expected exactly one '# collector-id: <Id>/<version>' line, found {len(markers)}"]
    marker_id, version = markers[0]
    problems = []
    if not text.startswith(f"# collector-id: {marker_id}/{version}"):
        problems.append("the marker must be the first line")
    if marker_id != script.stem:
        problems.append(f"marker names {marker_id!r} but the file is {script.path.name}")
    if script.sidecar is not None:
        if script.sidecar.get("name") != script.stem:
            problems.append(f"sidecar name {script.sidecar.get('name')!r} differs from the file name")
        if script.sidecar.get("version") != int(version):
            problems.append(f"sidecar version {script.sidecar.get('version')!r} differs from marker version {version}")
    envelope = re.search(r"^\s*collector\s*=\s*'([^']*)'\s*$", text, re.M)
    envelope_version = re.search(r"^\s*version\s*=\s*(\d+)\s*$", text, re.M)
    if not script.is_bootstrap:
        if envelope is None or envelope.group(1) != script.stem:
            problems.append("the envelope's collector = '<Id>' must equal the file name")
        if envelope_version is None or envelope_version.group(1) != version:
            problems.append("the envelope's version must equal the marker version")
    return problems


def check_script_shape(script: Script) -> list[str]:
    """[CmdletBinding()], a typed param() block, Set-StrictMode, help, one compact JSON document."""
    if script.is_bootstrap:
        return []
    problems = []
    top = script.tree.root_node
    param_blocks = [c for c in top.children if c.type == "param_block"]
    if not param_blocks:
        return ["no script-level param() block"]
    block = script.text_of(param_blocks[0])
    if not re.match(r"\s*\[CmdletBinding\(\)\]", block, re.I):
        problems.append("param block lacks [CmdletBinding()]")
    for name, node in commands(script):
        if name.lower() == "set-strictmode" and "-Version Latest" in script.text_of(node):
            break
    else:
        problems.append("no 'Set-StrictMode -Version Latest'")
    if not re.search(r"^\$ErrorActionPreference = 'Stop'$", script.raw.decode("utf-8", "replace"), re.M):
        problems.append("no \"$ErrorActionPreference = 'Stop'\"")
    help_blocks = [script.text_of(n) for n in script.nodes("comment") if script.text_of(n).startswith("<#")]
    if not any(".SYNOPSIS" in h for h in help_blocks):
        problems.append("no comment-based help with .SYNOPSIS")
    for parameter in param_names(script):
        if not any(re.search(rf"\.PARAMETER\s+{re.escape(parameter)}\b", h, re.I) for h in help_blocks):
            problems.append(f"help has no .PARAMETER {parameter}")
    json_calls = [(name, node) for name, node in commands(script) if name.lower() == "convertto-json"]
    if len(json_calls) != 1:
        problems.append(f"expected one ConvertTo-Json (the envelope), found {len(json_calls)}")
    else:
        text = script.text_of(json_calls[0][1])
        if "-Compress" not in text or not re.search(r"-Depth \d+", text):
            problems.append("ConvertTo-Json must use -Depth N -Compress")
    return problems


def param_names(script: Script) -> list[str]:
    return [p["name"] for p in script_parameters(script)]


def script_parameters(script: Script) -> list[dict[str, Any]]:
    """The script-level parameters as ``{name, type, default}`` (default as a Python value)."""
    top = script.tree.root_node
    blocks = [c for c in top.children if c.type == "param_block"]
    if not blocks:
        return []
    result = []
    for parameter in (n for n in _walk(blocks[0]) if n.type == "script_parameter"):
        type_name = None
        default: Any = _NO_DEFAULT
        name = ""
        for child in parameter.children:
            if child.type == "attribute_list":
                literals = [n for n in _walk(child) if n.type == "type_literal"]
                if literals:
                    type_name = re.sub(r"\s", "", script.text_of(literals[0]))[1:-1]
            elif child.type == "variable":
                name = script.text_of(child).lstrip("$")
            elif child.type == "script_parameter_default":
                default = _ps_literal(script.text_of(child).lstrip("=").strip())
        result.append({"name": name, "type": type_name, "default": default})
    return result


class _NoDefault:
    def __repr__(self) -> str:
        return "<no default>"


_NO_DEFAULT = _NoDefault()


def _ps_literal(text: str) -> Any:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"'[^']*'", text) or re.fullmatch(r'"[^"$`]*"', text):
        return text[1:-1]
    if re.fullmatch(r"@\(\s*\)", text):
        return []
    if text.lower() in ("$true", "$false"):
        return text.lower() == "$true"
    if text.lower() == "$null":
        return None
    return ("<expression>", text)


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def check_sidecar_matches_params(script: Script) -> list[str]:
    if script.is_bootstrap:
        return []
    if script.sidecar is None:
        return ["no sidecar .yml next to the script"]
    problems = []
    declared = {p["name"]: p for p in (script.sidecar.get("parameters") or [])}
    actual = {p["name"]: p for p in script_parameters(script)}
    for name in sorted(set(declared) - set(actual)):
        problems.append(f"sidecar declares {name} but param() has no such parameter")
    for name in sorted(set(actual) - set(declared)):
        problems.append(f"param() has {name} but the sidecar does not declare it")
    for name in sorted(set(declared) & set(actual)):
        spec, real = declared[name], actual[name]
        expected_type = PS_TYPE_FOR.get(spec.get("type", ""))
        if real["type"] is None:
            problems.append(f"{name}: param() gives no type")
        elif expected_type is None or real["type"].lower() != expected_type:
            problems.append(f"{name}: sidecar type {spec.get('type')!r} but param() says [{real['type']}]")
        if real["default"] is _NO_DEFAULT:
            problems.append(f"{name}: param() gives no default; every collector parameter is optional")
        elif real["default"] != spec.get("default"):
            problems.append(f"{name}: sidecar default {spec.get('default')!r} but param() default {real['default']!r}")
    return problems


def check_sidecar_complete(script: Script) -> list[str]:
    if script.is_bootstrap:
        return []
    sidecar = script.sidecar or {}
    problems = [f"sidecar lacks {key!r}" for key in ("name", "version", "description", "reads", "read_only", "output")
                if not sidecar.get(key) and sidecar.get(key) != []]
    for spec in sidecar.get("parameters") or []:
        for key in ("name", "type", "default", "description"):
            if key not in spec:
                problems.append(f"sidecar parameter {spec.get('name', '?')} lacks {key!r}")
    output = sidecar.get("output") or {}
    if not isinstance(output.get("data"), dict) or not output.get("sample"):
        problems.append("sidecar output needs a 'data' schema and a 'sample'")
    return problems


def hash_literal_key_sets(script: Script) -> list[frozenset[str]]:
    """The key names of every ``@{...}`` literal in the script (quotes stripped)."""
    result = []
    for literal in script.nodes("hash_literal_expression"):
        keys = set()
        for body in (c for c in literal.children if c.type == "hash_literal_body"):
            for entry in (c for c in body.children if c.type == "hash_entry"):
                for key in (c for c in entry.children if c.type == "key_expression"):
                    keys.add(script.text_of(key).strip("'\""))
        result.append(frozenset(keys))
    return result


def _object_schemas(fields: dict[str, Any], path: str) -> Iterator[tuple[str, frozenset[str]]]:
    yield path, frozenset(str(k) for k in fields)
    for name, spec in fields.items():
        if isinstance(spec, dict):
            if isinstance(spec.get("items"), dict):
                yield from _object_schemas(spec["items"], f"{path}.{name}[]")
            if isinstance(spec.get("fields"), dict):
                yield from _object_schemas(spec["fields"], f"{path}.{name}")


def check_output_keys(script: Script) -> list[str]:
    """Every object the sidecar's output schema describes is built by one hash literal with exactly
    those keys, so the script and its contract cannot drift apart. A wrapper of the C# core builds no
    data itself: there every key must be a JSON property name the core writes (the Mono tests then
    validate the core's real envelopes against the sidecar)."""
    if script.is_bootstrap:
        return []
    data_schema = ((script.sidecar or {}).get("output") or {}).get("data")
    if not isinstance(data_schema, dict):
        return ["sidecar has no output.data schema"]
    if calls_the_core(script):
        # The C# core writes this collector's data: every key the sidecar lists must be a name it writes.
        written = core_property_names()
        return [f"{path}: the C# core (ps_scripts/core) never writes the key(s) {sorted(keys - written)}"
                for path, keys in _object_schemas(data_schema, "data") if not keys <= written]
    built = hash_literal_key_sets(script)
    problems = []
    for path, keys in _object_schemas(data_schema, "data"):
        if keys not in built:
            closest = max(built, key=lambda b: len(b & keys), default=frozenset())
            missing, extra = sorted(keys - closest), sorted(closest - keys)
            problems.append(f"{path}: no @{{...}} in the script has exactly the keys the sidecar lists "
                            f"(closest lacks {missing}, adds {extra})")
    return problems


def calls_the_core(script: Script) -> bool:
    """Whether the wrapper hands its work to the C# core (``[IisFleet.Target.<Class>]::Method(...)``)."""
    return "[IisFleet.Target." in script.blanked(strings=False)


def core_property_names() -> frozenset[str]:
    """JSON property names the core writes: ``Property("x", ...)``, ``Name("x")``, ``StringArray("x", ...)``."""
    folder = Path(str(ps_scripts_dir())) / "core"
    text = "".join(path.read_text("utf-8") for path in sorted(folder.glob("*.cs")))
    return frozenset(re.findall(r'\b(?:Property|Name|StringArray)\("([^"]+)"', text))


ALL_CHECKS: dict[str, Callable[[Script], list[str]]] = {
    "parses": check_parses,
    "encoding": check_encoding,
    "ps7-syntax": check_no_ps7_syntax,
    "ps4-syntax": check_ps4_syntax,
    "aliases": check_no_aliases,
    "host-formatting": check_no_host_formatting,
    "allow-list": check_allowed_commands,
    "write-apis": check_no_write_apis,
    "temp-files": check_temp_files_deleted_in_finally,
    "marker": check_marker,
    "shape": check_script_shape,
    "sidecar-params": check_sidecar_matches_params,
    "sidecar-complete": check_sidecar_complete,
    "output-keys": check_output_keys,
}
