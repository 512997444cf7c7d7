"""Static checks of the generated JEA endpoint (`iisfleet jea export`): every file parses as PowerShell,
the data files are pure hashtable literals, and the role exposes exactly the catalogue's collectors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tree_sitter_language_pack import get_parser

from toolkit.collectors import load_catalog
from toolkit.errors import UsageError
from toolkit.jea import MODULE_NAME, ROLE_NAME, function_name
from toolkit.jea.export import RESTRICTED_PROXIES, ExportOptions, build_export, qualify_restricted, visible_functions
from toolkit.jea.psd1 import as_list, get, loads, quote

PSRC = f"{MODULE_NAME}/RoleCapabilities/{ROLE_NAME}.psrc"
PSD1 = f"{MODULE_NAME}/{MODULE_NAME}.psd1"
PSM1 = f"{MODULE_NAME}/{MODULE_NAME}.psm1"
PSSC = f"{MODULE_NAME}.pssc"


@pytest.fixture(scope="module")
def export():
    return build_export(ExportOptions(group="CONTOSO\\IIS Auditors"))


def _errors(text: str) -> list[tuple[int, str]]:
    tree = get_parser("powershell").parse(text.encode("utf-8"))
    found, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append((node.start_point[0] + 1, text.splitlines()[node.start_point[0]][:80]))
        stack.extend(node.children)
    return found


@pytest.mark.parametrize("name", [PSM1, PSD1, PSRC, PSSC])
def test_every_generated_powershell_file_parses(export, name) -> None:
    assert _errors(export.files[name]) == []


def test_the_parse_check_bites() -> None:
    assert _errors("function Get-X {\n  param([string]$A\n}\n")
    with pytest.raises(ValueError, match="line 2"):
        loads("@{\n  Key = Get-Process\n}")
    with pytest.raises(ValueError, match="expandable"):
        loads('@{ Key = "$env:TEMP" }')
    with pytest.raises(ValueError, match="duplicate"):
        loads("@{ A = 1; a = 2 }")


def test_role_exposes_exactly_the_catalogue_and_nothing_else(export) -> None:
    role = loads(export.files[PSRC])
    catalog_functions = sorted(function_name(cid) for cid in load_catalog())
    assert sorted(visible_functions(export)) == catalog_functions
    assert all(str(name).startswith(f"{MODULE_NAME}\\") for name in as_list(get(role, "VisibleFunctions")))
    # no cmdlet, alias, provider or external command is made visible, no code is defined in the role
    assert {key.lower() for key in role} == {"guid", "author", "description", "modulestoimport", "visiblefunctions"}
    assert get(role, "ModulesToImport") == MODULE_NAME
    manifest = loads(export.files[PSD1])
    assert sorted(as_list(get(manifest, "FunctionsToExport"))) == catalog_functions
    assert get(manifest, "CmdletsToExport") == [] and get(manifest, "AliasesToExport") == []


def test_module_functions_carry_each_collector_and_its_parameters(export) -> None:
    module = export.files[PSM1]
    for collector in load_catalog().values():
        assert f"function {function_name(collector.id)} {{" in module
        assert f"# collector-id: {collector.id}/{collector.version}" in module
        for spec in collector.parameters:
            assert f"${spec.name}" in module
    exported = module.rsplit("Export-ModuleMember -Function", 1)[1]
    assert sorted(re.findall(r"'([^']+)'", exported)) == sorted(function_name(c) for c in load_catalog())
    # restricted proxies are always called by their full names inside the module
    for command in RESTRICTED_PROXIES:
        for line in module.splitlines():
            stripped = line.split("#", 1)[0]
            if f"| {command}" in stripped or stripped.strip().startswith(command):
                pytest.fail(f"unqualified {command}: {line.strip()}")
    assert qualify_restricted("$a | select-object -First 1") == "$a | Microsoft.PowerShell.Utility\\Select-Object -First 1"


def test_session_configuration(export) -> None:
    session = loads(export.files[PSSC])
    assert get(session, "SessionType") == "RestrictedRemoteServer"
    assert get(session, "RunAsVirtualAccount") is True
    assert "LanguageMode" not in session  # RestrictedRemoteServer's default: NoLanguage
    assert get(session, "RoleDefinitions") == {"CONTOSO\\IIS Auditors": {"RoleCapabilities": ROLE_NAME}}
    gmsa = loads(build_export(ExportOptions(group="CONTOSO\\G", gmsa="CONTOSO\\svc-iisfleet$")).files[PSSC])
    assert get(gmsa, "GroupManagedServiceAccount") == "CONTOSO\\svc-iisfleet$" and "RunAsVirtualAccount" not in gmsa
    limited = loads(build_export(ExportOptions(group="CONTOSO\\G", virtual_account_groups=("Event Log Readers",)))
                    .files[PSSC])
    assert get(limited, "RunAsVirtualAccountGroups") == ["Event Log Readers"]


@pytest.mark.parametrize("options, message", [
    (ExportOptions(group="IIS Auditors"), "DOMAIN"),
    (ExportOptions(group="CONTOSO\\G", gmsa="svc"), "gmsa"),
    (ExportOptions(group="CONTOSO\\G", gmsa="CONTOSO\\s$", virtual_account_groups=("X",)), "virtual account"),
    (ExportOptions(group="CONTOSO\\G", endpoint="bad name"), "endpoint"),
    (ExportOptions(group="CONTOSO\\G\u2019x"), "typographic"),
])
def test_bad_options_are_refused(options, message) -> None:
    with pytest.raises(UsageError, match=message):
        build_export(options)


def test_quote_round_trips_through_the_reader() -> None:
    for text in ("plain", "it's", "C:\\Program Files\\x", "''"):
        assert loads(f"@{{ K = {quote(text)} }}")["K"] == text


def test_cli_writes_the_endpoint_and_never_registers(tmp_path: Path) -> None:
    out = tmp_path / "jea"
    proc = subprocess.run([sys.executable, "-m", "toolkit", "jea", "export", str(out), "--group", "CONTOSO\\IIS Ops",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert sorted(result["functions"]) == sorted(function_name(c) for c in load_catalog())
    for name in (PSM1, PSD1, PSRC, PSSC, "README.md"):
        assert (out / name).is_file()
    assert (out / PSSC).read_bytes().count(b"\r\n") > 3  # Windows line endings for the server's tools
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "Register-PSSessionConfiguration" in readme and "never registers" in readme
    again = subprocess.run([sys.executable, "-m", "toolkit", "jea", "export", str(out), "--group", "CONTOSO\\IIS Ops"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not an empty folder" in " ".join(again.stderr.split())
    bad = subprocess.run([sys.executable, "-m", "toolkit", "jea", "export", str(tmp_path / "x"), "--group", "nodomain"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "DOMAIN\\Name" in " ".join(bad.stderr.split()) and "Traceback" not in bad.stderr
