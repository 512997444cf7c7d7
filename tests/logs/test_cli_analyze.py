"""`iisfleet analyze`: JSON schema, Rich summary and exit codes (Typer's CliRunner and a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.logs.synth import write_log

runner = CliRunner()


def test_json_on_the_bundled_samples() -> None:
    result = runner.invoke(app, ["analyze", "--sample", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "iisfleet.analyze/1"
    assert doc["lines"]["total"] == 5521 and doc["lines"]["malformed"] == 0
    assert doc["requests"] == 5500
    assert doc["status_401"] == {"total": 477, "terminal": 202, "handshake": 275}
    row = doc["rows"][0]
    assert set(row) >= {"site", "substatus", "win32", "win32_hex", "win32_name", "count", "terminal"}
    assert sum(r["count"] for r in doc["rows"]) == 477
    ntlm = [r for r in doc["rows"] if r["win32_name"] == "SEC_E_NO_CREDENTIALS"]
    # NTLM's second round is a handshake; the one exception is a conversation cut off by the end of a file.
    assert ntlm and sum(r["terminal"] for r in ntlm) == 1
    assert ntlm[0]["samples"][0]["line"] > 1480
    assert doc["sites"][0]["terminal_rate"] >= doc["sites"][-1]["terminal_rate"]
    assert doc["httperr"]["total"] == 5


def test_rich_summary_names_codes_and_meanings() -> None:
    result = runner.invoke(app, ["analyze", "--sample", "--top", "3"])
    assert result.exit_code == 0, result.output
    for text in ("terminal", "SEC_E_LOGON_DENIED", "401.3", "Terminal 401 rate per server and site",
                 "Top 3 for terminal 401s", "HTTPERR"):
        assert text in result.stdout


def test_since_until_and_window(tmp_path: Path) -> None:
    path = tmp_path / "W3SVC1" / "u_ex261124.log"
    path.parent.mkdir()
    write_log(path, lines=3000, seed=1, lines_per_second=1.0)  # 3000 s of traffic from midnight
    result = runner.invoke(app, ["analyze", str(path), "--json", "--since", "2026-11-24T00:20:00Z",
                                 "--until", "2026-11-24 00:30:00", "--window", "0"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["time_range"]["first"] >= "2026-11-24T00:20:00Z"
    assert doc["time_range"]["last"] <= "2026-11-24T00:30:00Z"
    assert 0 < doc["requests"] < 3000 and doc["lines"]["filtered"] == 3000 - doc["requests"]
    assert doc["window_s"] == 0


def test_exit_2_on_unusable_input(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nope.log")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    (tmp_path / "data.json").write_text("{}")
    not_log = runner.invoke(app, ["analyze", str(tmp_path / "data.json")])
    assert not_log.exit_code == 2 and "not a W3C" in not_log.stderr
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["analyze", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "nothing to analyse" in empty.stderr
    assert runner.invoke(app, ["analyze"]).exit_code == 2
    bad_time = runner.invoke(app, ["analyze", "--sample", "--since", "yesterday-ish"])
    assert bad_time.exit_code == 2 and "--since" in bad_time.stderr


def test_real_process_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "toolkit", "analyze", "--sample", "--json"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["requests"] == 5500
    bad = subprocess.run([sys.executable, "-m", "toolkit", "analyze", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "error:" in bad.stderr


# --- several servers' logs, and event exports next to them ------------------------------------------------

FIXTURES = Path(__file__).parents[1] / "fixtures"
MULTI = FIXTURES / "logs" / "admin-cases" / "multi-server"
EXPORTS = FIXTURES / "parsers" / "events" / "exports"


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["analyze", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_servers_from_folder_layout() -> None:
    """No s-computername in the logs: <server>/W3SVC<n>/ names each server, nothing is merged."""
    doc = _json(str(MULTI))
    assert {(s["server"], s["site"]): s["terminal"] for s in doc["sites"]} == {
        ("web01", "W3SVC1"): 1, ("web02", "W3SVC1"): 2}
    assert doc["warnings"] == []


def test_server_given_once_per_path(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "W3SVC1", tmp_path / "b" / "W3SVC1"
    for folder, source in ((first, MULTI / "web01"), (second, MULTI / "web02")):
        folder.mkdir(parents=True)
        (folder / "u_ex261124.log").write_bytes((source / "W3SVC1" / "u_ex261124.log").read_bytes())
    doc = _json(str(first), str(second), "--server", "WEB-A", "--server", "WEB-B")
    assert sorted(s["server"] for s in doc["sites"]) == ["WEB-A", "WEB-B"]
    assert doc["warnings"] == []
    # Without names, the two copies would be one server: said, not silent.
    merged = runner.invoke(app, ["analyze", str(first), str(second)])
    assert merged.exit_code == 0
    assert "counted as one server" in merged.stderr
    assert "counted as one server" in _json(str(first), str(second))["warnings"][0]
    wrong = runner.invoke(app, ["analyze", str(first), str(second), "--server", "A", "--server", "B",
                                "--server", "C"])
    assert wrong.exit_code == 2 and "once per PATH" in wrong.stderr


def test_each_event_export_format_is_accepted_offline() -> None:
    """Event Viewer "Save as XML" (BOM, declaration, <Events> root with RenderingInfo), the same without
    a BOM, and wevtutil qe /f:xml output (no root) as cmd and Windows PowerShell save it."""
    counts = {}
    for export in sorted(EXPORTS.glob("*.xml")):
        doc = _json(str(export), str(MULTI))
        counts[export.name] = doc["events"]["records"]
        reasons = {e["reason"]: e for e in doc["events"]["logon_failures"]}
        assert reasons["0xC000015B"]["name"] == "STATUS_LOGON_TYPE_NOT_GRANTED"
        assert reasons["0xC000015B"]["accounts"][0]["account"] == "NT AUTHORITY\\IUSR"
        assert reasons["0xC000006A"]["accounts"] == [{"account": "CONTOSO\\jdoe", "count": 1}]
        assert doc["requests"] == 5  # the logs are analysed alongside
    assert counts == {"event-viewer-no-bom.xml": 3, "event-viewer-save-as.xml": 3, "wevtutil-qe-powershell.xml": 2,
                      "wevtutil-qe.xml": 2}


def test_event_exports_inside_a_folder_are_found(tmp_path: Path) -> None:
    (tmp_path / "web05" / "W3SVC1").mkdir(parents=True)
    (tmp_path / "web05" / "W3SVC1" / "u_ex261124.log").write_bytes(
        (MULTI / "web01" / "W3SVC1" / "u_ex261124.log").read_bytes())
    (tmp_path / "web05" / "Security-4625.xml").write_bytes((EXPORTS / "event-viewer-save-as.xml").read_bytes())
    (tmp_path / "web05" / "notes.xml").write_text("<notes>not events</notes>")
    doc = _json(str(tmp_path))
    assert doc["events"]["records"] == 3 and doc["events"]["sources"] == [str(tmp_path / "web05" / "Security-4625.xml")]
    assert doc["sites"][0]["server"] == "web05"
    text = runner.invoke(app, ["analyze", str(tmp_path)])
    assert "STATUS_LOGON_TYPE_NOT_GRANTED x2" in text.stdout


def test_a_broken_event_export_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "Security.xml"
    broken.write_bytes((EXPORTS / "event-viewer-save-as.xml").read_bytes()[:-40])
    result = runner.invoke(app, ["analyze", str(broken)])
    assert result.exit_code == 2 and "Security.xml" in result.stderr and "Traceback" not in result.output


def test_an_evtx_file_is_accepted_offline(tmp_path: Path) -> None:
    pytest.importorskip("evtx", reason="the evtx package did not install (pip install 'iisfleet[evtx]')")
    from toolkit.lab.model.evtx import write_evtx

    event = {"provider": "Microsoft-Windows-Security-Auditing", "id": 4625, "time": "2026-11-24T10:00:01Z",
             "record_id": 7, "channel": "Security", "computer": "WEB05",
             "data": [("TargetUserName", "IUSR"), ("TargetDomainName", "NT AUTHORITY"), ("Status", "0xc000015b"),
                      ("SubStatus", "0x0"), ("LogonType", "8")]}
    full = dict(event, id=1104, record_id=8, data=[])
    path = tmp_path / "Security.evtx"
    write_evtx(str(path), [event, full])
    doc = _json(str(path), str(MULTI))
    assert doc["events"]["by_id"] == {"1104": 1, "4625": 1} and doc["events"]["security_log_full"] is True
    text = runner.invoke(app, ["analyze", str(path), str(MULTI)])
    assert "the Security log is full" in text.stdout
