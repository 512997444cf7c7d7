"""Static checks on the bundled collectors, and proof (bad_scripts/mutations.yml) that each check bites.

The collectors run only on customers' Windows servers, never here, so these checks are what stands
between a careless edit and a script that writes to a production host or fails to parse there.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector_static_checks import (
    ALL_CHECKS,
    ALLOWED_COMMANDS,
    Script,
    calls_the_core,
    commands,
    local_functions,
)
from toolkit.collectors import ssh_bootstrap, ssh_bootstrap_command
from toolkit.resources import ps_scripts_dir

HERE = Path(__file__).parent
BAD = HERE / "bad_scripts"
SCRIPTS_DIR = Path(str(ps_scripts_dir()))
SCRIPT_PATHS = sorted(SCRIPTS_DIR.glob("*.ps1"))
COLLECTOR_PATHS = [p for p in SCRIPT_PATHS if not p.name.startswith("_")]

EXPECTED_COLLECTORS = {
    "Get-HostFact", "Get-IisConfig", "Get-IisW3CLog", "Get-IisHttpErrLog", "Get-IisFailedRequestTrace",
    "Get-IisContentAcl", "Get-LocalUserRight", "Get-IisSpn", "Get-AuthEventLog", "Get-IisRawArtefact",
    "Get-IisCertificate",
}


def test_the_collectors_and_the_bootstrap_are_bundled() -> None:
    assert {p.stem for p in COLLECTOR_PATHS} == EXPECTED_COLLECTORS
    assert (SCRIPTS_DIR / "_ssh_bootstrap.ps1").is_file()
    assert not (SCRIPTS_DIR / ".keep").exists()
    for path in COLLECTOR_PATHS:
        assert path.with_suffix(".yml").is_file(), f"{path.name} has no sidecar"


@pytest.mark.parametrize("check_name", sorted(ALL_CHECKS))
@pytest.mark.parametrize("path", SCRIPT_PATHS, ids=lambda p: p.stem)
def test_bundled_script_passes(path: Path, check_name: str) -> None:
    problems = ALL_CHECKS[check_name](Script.load(path))
    assert problems == [], "\n".join(problems)


# ------------------------------------------------------------------- the checks bite on bad scripts

def _mutations() -> list[dict[str, Any]]:
    return yaml.safe_load((BAD / "mutations.yml").read_text("utf-8"))


def _mutated(case: dict[str, Any], tmp_path: Path) -> Script:
    script = (BAD / "Get-GoodExample.ps1").read_text("utf-8")
    sidecar = (BAD / "Get-GoodExample.yml").read_text("utf-8")
    if "script_replace" in case:
        old, new = case["script_replace"]
        assert old in script, f"case {case['name']}: baseline has no {old!r}"
        script = script.replace(old, new)
    if "sidecar_replace" in case:
        old, new = case["sidecar_replace"]
        assert old in sidecar, f"case {case['name']}: baseline sidecar has no {old!r}"
        sidecar = sidecar.replace(old, new)
    if "append" in case:
        # Before the final ConvertTo-Json line, so the script keeps its shape.
        head, tail = script.rsplit("ConvertTo-Json", 1)
        script = head + case["append"] + "ConvertTo-Json" + tail
    raw = script.encode("utf-8")
    if case.get("bom"):
        raw = b"\xef\xbb\xbf" + raw
    if "raw_append_hex" in case:
        raw += bytes.fromhex(case["raw_append_hex"])
    path = tmp_path / "Get-GoodExample.ps1"
    path.write_bytes(raw)
    path.with_suffix(".yml").write_text(sidecar, "utf-8")
    return Script.load(path)


def test_baseline_example_passes_every_check() -> None:
    script = Script.load(BAD / "Get-GoodExample.ps1")
    failures = {name: check(script) for name, check in ALL_CHECKS.items() if check(script)}
    assert failures == {}


def test_every_check_has_a_bad_case() -> None:
    covered = {case["expect"] for case in _mutations()}
    assert covered == set(ALL_CHECKS)


@pytest.mark.parametrize("case", _mutations(), ids=lambda c: c["name"])
def test_check_catches_bad_script(case: dict[str, Any], tmp_path: Path) -> None:
    script = _mutated(case, tmp_path)
    problems = ALL_CHECKS[case["expect"]](script)
    assert problems, f"check {case['expect']!r} did not catch {case['name']!r}"


# ----------------------------------------------------------------------- specific collector rules

def test_allow_list_entries_are_all_used_and_explained() -> None:
    used = {name.lower() for path in SCRIPT_PATHS for name, _ in commands(Script.load(path))}
    for name, reason in ALLOWED_COMMANDS.items():
        assert len(reason) > 15, f"{name} needs a real reason"
        assert name.lower() in used, f"{name} is allowed but no script uses it; drop it from the list"


def test_log_collectors_hand_their_work_to_the_core() -> None:
    # The W3C/HTTPERR wrappers only probe the environment and call the C# core, which streams the files
    # (shared with IIS, which holds the current log open) and finds the folders in applicationHost.config.
    core = "".join(p.read_text("utf-8") for p in sorted((SCRIPTS_DIR / "core").glob("*.cs")))
    for name, call in (("Get-IisW3CLog", "[IisFleet.Target.LogCollectors]::W3C("),
                       ("Get-IisHttpErrLog", "[IisFleet.Target.LogCollectors]::HttpErr(")):
        script = Script.load(SCRIPTS_DIR / f"{name}.ps1")
        assert call in script.blanked(strings=False)
        assert "get-content" not in {command.lower() for command, _ in commands(script)}
    assert "FileShare.ReadWrite | FileShare.Delete" in core, "IIS holds the current log open; reading must share it"
    assert "sites/site" in core and "logFile" in core and "centralW3CLogFile" in core
    assert "DtdProcessing.Prohibit" in core and "XmlResolver = null" in core


def test_path_finding_collectors_read_applicationhost_config() -> None:
    # Collectors on the C# core find their folders in the core; the rest parse applicationHost.config here.
    for name in ("Get-IisFailedRequestTrace", "Get-IisContentAcl", "Get-IisSpn"):
        script = Script.load(SCRIPTS_DIR / f"{name}.ps1")
        if calls_the_core(script):
            continue  # the core reads it
        assert "read-iisconfigxml" in local_functions(script)
        assert "Read-IisConfigXml" in {command for command, _ in commands(script)}, f"{name} never calls it"


def test_config_xml_is_loaded_without_a_resolver() -> None:
    total_loads = 0
    for path in COLLECTOR_PATHS:
        code = Script.load(path).blanked(strings=False)
        loads = code.count(".LoadXml(")
        total_loads += loads
        assert code.count("XmlResolver = $null") == loads, f"{path.name}: every XmlDocument must drop its resolver"
    assert total_loads > 0, "no script uses .LoadXml( any more: this check no longer sees how they parse XML"


def test_local_user_right_deletes_secedit_temp_files_in_finally() -> None:
    script = Script.load(SCRIPTS_DIR / "Get-LocalUserRight.ps1")
    finally_blocks = [script.text_of(n) for n in script.nodes("finally_clause")]
    assert any("[System.IO.File]::Delete($tempFile)" in block and "$infPath, $logPath" in block
               for block in finally_blocks)
    assert "secedit.exe /export /areas USER_RIGHTS /cfg $infPath /log $logPath" in script.raw.decode()


# ------------------------------------------------------------------------------------ bootstrap

def test_bootstrap_is_small_enough_for_the_windows_command_line() -> None:
    command = ssh_bootstrap_command()
    # cmd.exe (the default shell of Windows OpenSSH) caps a command line at 8191 characters.
    assert len(command) < 8191
    encoded = command.rsplit(" ", 1)[1]
    assert base64.b64decode(encoded).decode("utf-16-le") == ssh_bootstrap()


def test_bootstrap_serves_a_session_of_json_requests_for_windows_powershell() -> None:
    text = ssh_bootstrap()
    assert text.splitlines()[0] == "# collector-id: _ssh_bootstrap/2"
    assert "$ProgressPreference = 'SilentlyContinue'" in text
    code = Script.load(SCRIPTS_DIR / "_ssh_bootstrap.ps1").blanked(strings=False)
    # One process per connection: a loop over request lines, answers closed by the request's own token.
    assert "while ($null -ne ($line = $reader.ReadLine()))" in code and "$request.end" in code
    assert "ConvertFrom-Json" in code and "-AsHashtable" not in code
    assert "PSObject.Properties" in text and "@parameters" in text and "2>&1" in code
    # Its own UTF-8 writer on stdout; the console encoding is never touched (no console over SSH).
    assert "[Console]::OpenStandardOutput()" in code and "OutputEncoding" not in code
    assert "Set-StrictMode -Version Latest" in text


def test_shared_helpers_are_identical_in_every_script() -> None:
    # Each collector is one self-contained file, so helpers are copied; a fix must reach every copy.
    copies: dict[str, dict[str, str]] = {}
    for path in COLLECTOR_PATHS:
        script = Script.load(path)
        for node in script.nodes("function_statement"):
            name = next(script.text_of(c) for c in node.children if c.type == "function_name")
            copies.setdefault(name, {})[path.stem] = script.text_of(node)
    powershell_only = [p.stem for p in COLLECTOR_PATHS if not calls_the_core(Script.load(p))]
    core_wrappers = [p.stem for p in COLLECTOR_PATHS if calls_the_core(Script.load(p))]
    assert core_wrappers, "no wrapper calls the C# core any more: this test no longer sees them"
    if powershell_only:
        assert "Add-ProbeError" in copies
        assert set(copies["Add-ProbeError"]) == set(powershell_only)
    assert set(copies["Test-CollectorEnvironment"]) == set(core_wrappers)
    for name, texts in copies.items():
        assert len(set(texts.values())) == 1, f"{name} differs between {sorted(texts)}"


# ------------------------------------------------------------------------------ thin core wrappers

CORE_WRAPPERS = [p for p in COLLECTOR_PATHS if calls_the_core(Script.load(p))]


@pytest.mark.parametrize("path", CORE_WRAPPERS, ids=lambda p: p.stem)
def test_core_wrapper_probes_first_then_calls_one_entry_point(path: Path) -> None:
    script = Script.load(path)
    code = script.blanked(strings=True)
    probe = code.index("$environmentError = Test-CollectorEnvironment")
    # Nothing but the strictness settings and the probe's own definition run before the probe.
    before = code[code.index("Set-StrictMode"):probe]
    assert re.sub(r"(?s)function Test-CollectorEnvironment \{.*?\n\}\n", "", before).split() == \
        ["Set-StrictMode", "-Version", "Latest", "$ErrorActionPreference", "=", "$ProgressPreference", "="]
    calls = re.findall(r"\[IisFleet\.Target\.(\w+)\]::(\w+)\(", code)
    assert len([c for c in calls if c[0] != "LocalHost"]) == 1, calls
    assert code.index("[IisFleet.Target.") > probe, "the core is touched before the probe ran"


def test_the_probe_says_what_the_lab_says() -> None:
    """The lab answers a core wrapper in a session without the core (or in ConstrainedLanguage) with the
    envelope the probe writes; their words must not drift apart."""
    from toolkit.lab.session import CORE_NOT_LOADED, CORE_NOT_LOADED_TARGET
    from toolkit.lab.winrm.endpoints import ENVIRONMENT_MESSAGES

    text = CORE_WRAPPERS[0].read_text("utf-8").replace("''", "'")
    assert CORE_NOT_LOADED in text and f"$reason = '{CORE_NOT_LOADED_TARGET}'" in text
    assert ENVIRONMENT_MESSAGES["ConstrainedLanguage"] in text and "$reason = 'ConstrainedLanguage'" in text


def test_the_core_starts_only_a_setspn_listing_and_a_secedit_export() -> None:
    """Read-only on targets: the core starts processes in one place (ToolProcess.cs), and its only callers
    are a setspn -L listing (Spn.Windows.cs) and a secedit /export (RawArtefacts.Windows.cs)."""
    cores = {p.name: p.read_text("utf-8") for p in (SCRIPTS_DIR / "core").glob("*.cs")}
    assert [name for name, text in cores.items() if "ProcessStartInfo(" in text] == ["ToolProcess.cs"]
    assert "".join(cores.values()).count("ProcessStartInfo(") == 1
    calls = sorted(re.findall(r'ToolProcess\.Run\("([^"]+)", "([^"]*)', "".join(cores.values())))
    assert calls == [("secedit.exe", "/export /cfg \\"), ("setspn.exe", "-L \\")], calls
    assert not re.search(r'"-(S|A|D|R|U|C|F|Q|X|T)\b', cores["Spn.Windows.cs"])
    assert not re.search(r"/(configure|import|generaterollback|refreshpolicy)", cores["RawArtefacts.Windows.cs"], re.I)


def test_the_session_functions_parse_for_powershell_4(tmp_path: Path) -> None:
    """What the core loader defines over WinRM (every wrapper as a global function) parses, on 4.0 too."""
    from collector_static_checks import check_no_ps7_syntax, check_parses, check_ps4_syntax

    from toolkit.collectors import load_catalog, session_function_name, session_functions_text

    path = tmp_path / "session-functions.ps1"
    path.write_text(session_functions_text(), encoding="utf-8")
    script = Script.load(path)
    assert check_parses(script) + check_ps4_syntax(script) + check_no_ps7_syntax(script) == []
    defined = {script.text_of(n) for n in script.nodes("function_name")}
    assert {f"global:{session_function_name(cid)}" for cid in load_catalog()} <= defined


def _code_tokens(text: str) -> list[str]:
    """The parsed leaves of ``text`` that are code (comments left out), in order."""
    from collector_static_checks import _parser

    raw = text.encode("utf-8")
    tokens: list[str] = []
    stack = [_parser().parse(raw).root_node]
    while stack:
        node = stack.pop()
        if node.type == "comment":
            continue
        if node.child_count == 0:
            tokens.append(raw[node.start_byte:node.end_byte].decode("utf-8"))
        stack.extend(reversed(node.children))
    return tokens


@pytest.mark.parametrize("path", [p for p in SCRIPT_PATHS if not p.stem.startswith("_")
                                  or p.stem in ("_core_loader", "_step_batch")], ids=lambda p: p.stem)
def test_a_session_function_body_is_its_wrapper_less_only_comments(path: Path) -> None:
    from toolkit.collectors import without_comment_lines

    script = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    stripped = without_comment_lines(script)
    assert _code_tokens(stripped) == _code_tokens(script)
    assert len(stripped) < len(script)


