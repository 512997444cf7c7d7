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
    assert [f["cause"] for f in model["findings"]] == ["logon-right-denied", "content-acl-denied", "certificate-expiring"]
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


#: Screenshots of the HTML report are kept here for people to look at (CI keeps the folder as an artefact).
ARTEFACTS = Path(os.environ.get("IISFLEET_ARTEFACTS") or HERE.parents[1] / "test-artefacts") / "report-screenshots"


def _wide_fleet_model() -> dict:
    """Fourteen servers, three sites, a day of hours: enough to show the chart's top-N small multiples
    and a matrix wider than a phone."""
    servers = [f"web{i:02}" for i in range(1, 15)]
    sites = ["Default Web Site", "Shop", "Intranet"]
    causes = ["logon-right-denied", "content-acl-denied", "kerberos-spn-duplicate"]
    matrix, timeline, hosts = [], {}, []
    for i, server in enumerate(servers):
        terminal_total = 0
        for j, site in enumerate(sites):
            if (i + j) % 4 == 3:
                continue  # this server does not serve this site
            terminal = (i * 7 + j * 13) % 40 if (i + j) % 3 else 0
            terminal_total += terminal
            matrix.append({"server": server, "site": site, "requests": 2000 + 10 * i, "terminal_401": terminal,
                           "leading_cause": causes[(i + j) % 3] if terminal else None})
        if terminal_total:
            timeline[server] = {f"2026-11-24T{h:02}": (i * h) % 17 for h in range(24) if (i * h) % 17}
        hosts.append({"name": server, "address": f"10.0.0.{i + 1}", "status": "ok", "requests": 6000,
                      "terminal_401": terminal_total})
    findings = [{"id": f"f{k}", "cause": causes[k % 3], "title": f"finding {k}", "substatus": "401.1",
                 "severity": "high", "confidence": {"level": "high"}, "hosts": servers[k:k + 3],
                 "site": sites[k % 3], "scope": "/", "terminal_401": 10 + k, "evidence": [], "missing_evidence": [],
                 "explanation": "", "fix": {"command": "", "shell": "powershell"}} for k in range(4)]
    return build_report({"playbook": "triage-401", "status": "complete", "simulated": True, "hosts": servers},
                        {"hosts": hosts, "matrix": matrix, "timeline": timeline, "findings": findings})


def _browser(tmp_path: Path) -> list[str]:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}"]


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="Debian chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("which", ["golden", "wide-fleet"])
def test_html_renders_in_headless_chromium(model: dict, tmp_path: Path, which: str) -> None:
    """The report in a real browser: the collapsed findings name their hosts and sites, the matrix cells
    name rate and leading cause as text, the chart has labelled axes; screenshots at 1400 and 800 px wide
    land in test-artefacts/report-screenshots/ for a person to look at."""
    report = model if which == "golden" else _wide_fleet_model()
    page = tmp_path / "report.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    dom = subprocess.run([*_browser(tmp_path), "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert "SIMULATED" in text and "<script" not in text
    for index, finding in enumerate(report["findings"], 1):
        names = ", ".join(finding["hosts"][:6])
        # in the <summary>, i.e. visible while the finding is collapsed
        summary = text.split(f'id="finding-{index}"', 1)[1].split("</summary>", 1)[0]
        assert f"on {names}" in summary and f"site {finding['site']}" in summary, summary
    for cell in report["matrix"]:
        if cell["terminal_401"]:
            assert f'<span class="cause">{cell["leading_cause"]}</span>' in text
    assert text.count('<figure class="panel">') == min(len(report["timeline"]), 12)
    assert "hour (UTC)" in text and "401 per hour" in text
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1400, 800):
        shot = ARTEFACTS / f"report-{which}-{width}px.png"
        subprocess.run([*_browser(tmp_path), f"--window-size={width},2400", f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, timeout=120, check=True)
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == width
        assert len(png) > 30_000  # a blank page is a few hundred bytes


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
