"""`iisfleet analyze`: JSON schema, Rich summary and exit codes (Typer's CliRunner and a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
