"""Report rendering: deterministic golden files, hostile text escaped, exit codes, a real browser render."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from toolkit.report import RENDERERS, build_report, exit_code, render

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("IISFLEET_UPDATE_GOLDEN") == "1"


@pytest.fixture()
def model() -> dict:
    run = json.loads((HERE / "fixtures" / "run.json").read_text())
    diagnosis = json.loads((HERE / "fixtures" / "diagnosis.json").read_text())
    return build_report(run, diagnosis)


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_golden(model: dict, fmt: str) -> None:
    """Every format renders byte-identically to its reviewed golden file (IISFLEET_UPDATE_GOLDEN=1 rewrites)."""
    text = render(model, fmt)
    golden = GOLDEN / f"report.{fmt}"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_findings_sorted_by_severity_then_volume(model: dict) -> None:
    assert [f["cause"] for f in model["findings"]] == ["logon-right-denied", "content-acl-denied"]
    assert model["summary"]["findings_by_severity"]["high"] == 1
    assert model["summary"]["hosts_failed"] == 1


def test_hostile_host_text_is_escaped(model: dict) -> None:
    html = render(model, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "default-src 'none'" in html  # no script may run even if escaping were missed
    md = render(model, "md")
    assert "<script>" not in md


def test_exit_codes(model: dict) -> None:
    assert exit_code(model, "low") == 1
    assert exit_code(model, "critical") == 3  # no critical finding, but web04 was unreachable
    healthy = build_report({"hosts": ["a"]}, {"hosts": [{"name": "a", "status": "ok"}], "findings": []})
    assert exit_code(healthy, "info") == 0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="Debian chromium is not installed (.ci/run installs it)")
def test_html_renders_in_headless_chromium(model: dict, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(model, "html"), encoding="utf-8")
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-cause="logon-right-denied"' in dom.stdout
    assert 'data-cause="content-acl-denied"' in dom.stdout
    assert "<svg" in dom.stdout and "SIMULATED" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([*browser, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000  # a blank page is a few hundred bytes


def test_host_errors_keep_category_and_explanation_from_the_run(model: dict) -> None:
    """The diagnosis may flatten a host error to text; the run directory's structured error wins."""
    diagnosis = {"hosts": [{"host": "web09", "status": "failed", "error": "AuthenticationError: nope"}],
                 "findings": []}
    run_hosts = {"web09": {"address": "10.0.0.9", "error": {
        "category": "auth", "message": "AuthenticationError: nope", "explanation": "wrong credentials"}}}
    built = build_report({"hosts": ["web09"]}, diagnosis, run_hosts)
    assert built["hosts"][0]["error"] == {"category": "auth", "message": "AuthenticationError: nope",
                                          "explanation": "wrong credentials"}
    assert built["hosts"][0]["address"] == "10.0.0.9"
    text = render(built, "text")
    assert "[auth] AuthenticationError: nope" in text and "wrong credentials" in text
    assert exit_code(built) == 3
    bare = build_report({"hosts": ["web09"]}, diagnosis)  # without the run: the text still renders
    for fmt in ("text", "md", "html", "json"):  # csv lists findings only
        assert "AuthenticationError: nope" in render(bare, fmt)


def test_demo_out_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from toolkit.cli import app

    target = tmp_path / "taken"
    target.write_text("x")
    result = CliRunner().invoke(app, ["demo", "--out", str(target)])
    assert result.exit_code == 2 and not isinstance(result.exception, OSError), result.output
    assert f"{target}:isafile,notafolder" in "".join(result.output.split())  # rich folds long paths
    under = CliRunner().invoke(app, ["demo", "--out", str(target / "demo")])  # a parent is a file
    assert under.exit_code == 2 and isinstance(under.exception, SystemExit), under.output
    assert f"{target / 'demo'}:cannotcreatethedemofolder" in "".join(under.output.split())
    assert target.read_text() == "x"


def _minimal_run(run_dir: Path) -> Path:
    """A finished one-host run directory with no evidence (enough for `iisfleet report`)."""
    from toolkit.models import HostResult, StepResult
    from toolkit.rundir import RunDirWriter

    writer = RunDirWriter(run_dir)
    writer.write_meta({"playbook": "triage-401", "status": "complete", "finished_utc": "2026-11-24T22:00:00Z",
                       "hosts": ["web01"]})
    writer.write_host(HostResult(host="web01", address="a", transport="winrm", status="ok",
                                 steps=[StepResult("Get-IisConfig", "ok")]), finished=True)
    writer.close()
    return run_dir


@pytest.mark.parametrize("envelope", [b"[1, 2]", b"\xff\x00 not text", b"{garbage"])
def test_report_on_a_garbage_envelope_is_one_error_line_and_exit_2(tmp_path: Path, envelope: bytes) -> None:
    from typer.testing import CliRunner

    from toolkit.cli import app

    _minimal_run(tmp_path)
    (tmp_path / "hosts" / "web01" / "Get-IisConfig.json").write_bytes(envelope)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert "hosts/web01/Get-IisConfig.json" in "".join(result.output.split())  # rich folds long paths


@pytest.mark.parametrize("where", ["a-folder", "under-a-file"])
def test_report_out_that_cannot_be_written_is_a_usage_error(tmp_path: Path, where: str) -> None:
    from typer.testing import CliRunner

    from toolkit.cli import app

    run_dir = _minimal_run(tmp_path / "run")
    (tmp_path / "a-file").write_text("x")
    out = tmp_path if where == "a-folder" else tmp_path / "a-file" / "report.txt"
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(out)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("error: ")
    assert "cannot write the report" in " ".join(result.output.split())
    assert (tmp_path / "a-file").read_text() == "x"
