"""The end of `demo` (and `run`): findings by severity, hosts failed by category, the report paths and the
exact next command, which then works as printed. `report` on a partial run says why and exits 3."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.models import HostResult, StepResult
from toolkit.report import SEVERITIES
from toolkit.rundir import RunDirWriter

REPO = Path(__file__).resolve().parents[2]


def _iisfleet(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["COLUMNS"] = "40"  # piped anyway: the policy ignores it
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600, **kwargs)


def test_demo_ends_with_findings_reports_and_the_next_command(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = _iisfleet(["demo", "--out", str(out), "--hosts", "6"])
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    model = json.loads((out / "run" / "report" / "report.json").read_text())
    by_severity = model["summary"]["findings_by_severity"]
    detail = ", ".join(f"{by_severity[sev]} {sev}" for sev in SEVERITIES if by_severity.get(sev))  # worst first
    assert f"findings: {sum(by_severity.values())} ({detail})" in lines
    assert f"report: {out.resolve() / 'run' / 'report' / 'report.html'}" in lines
    assert f"run directory: {out.resolve() / 'run'}" in lines
    next_line = next(line for line in lines if line.startswith("next: "))
    command = shlex.split(next_line[len("next: "):].split("   (")[0])
    assert command[:2] == ["iisfleet", "report"] and "--fail-on" in command
    again = _iisfleet(command[1:])  # the printed command, as printed
    assert again.returncode == 1, again.stderr  # the planted causes are findings at or above the threshold
    assert "…" not in done.stdout



def test_sigterm_stops_the_demo_with_its_lab_and_says_interrupted(tmp_path: Path) -> None:
    """A service manager's SIGTERM (or `timeout`) ends a demo like two Ctrl-C end a run: the lab servers
    shut down, run.json says interrupted, the reports cover what finished, exit 130 — not a silent kill."""
    import signal

    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    process = subprocess.Popen([sys.executable, "-m", "toolkit", "demo", "--out", str(out), "--hosts", "6"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    first_stage = process.stderr.readline()  # printed from inside run_demo: the handler is installed
    assert first_stage.startswith("demo:"), first_stage
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-3000:]
    assert "SIGTERM: stopping the running steps" in stderr and "demo interrupted" in stderr
    meta = json.loads((out / "run" / "run.json").read_text())
    assert meta["status"] == "interrupted"
    assert (out / "run" / "report" / "report.json").is_file()
    assert "Traceback" not in stderr

def _run_dir(path: Path, status: str, finished: bool) -> Path:
    writer = RunDirWriter(path)
    writer.write_meta({"playbook": "triage-401", "status": status, "hosts": ["web01", "web02"],
                       "started_utc": "2026-11-24T22:00:00Z",
                       "finished_utc": "2026-11-24T22:05:00Z" if finished else None})
    writer.write_host(HostResult(host="web01", address="a", transport="winrm", status="ok",
                                 steps=[StepResult("Get-HostFact", "ok")]), finished=True)
    writer.close()
    return path


@pytest.mark.parametrize(("status", "finished", "why"), [
    ("running", False, "run.json still says 'running': the run was killed"),
    ("interrupted", True, "it was interrupted (Ctrl-C or SIGTERM) before every host finished"),
    ("deadline", True, "--deadline stopped it before every host finished"),
])
def test_report_on_a_partial_run_says_why_and_exits_3(tmp_path: Path, status: str, finished: bool, why: str) -> None:
    run_dir = _run_dir(tmp_path / "run", status, finished)
    done = _iisfleet(["report", str(run_dir)])
    assert done.returncode == 3, done.stderr
    note = [line for line in done.stderr.splitlines() if line.startswith("note: this run is partial:")]
    assert len(note) == 1 and why in note[0] and "1 of 2 hosts finished" in note[0], done.stderr
    assert done.stdout.startswith("iisfleet 401 report")  # stdout stays the report


def test_report_on_a_complete_run_has_no_partial_note(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    writer = RunDirWriter(run_dir)
    writer.write_meta({"playbook": "triage-401", "status": "complete", "hosts": ["web01"],
                       "finished_utc": "2026-11-24T22:05:00Z"})
    writer.write_host(HostResult(host="web01", address="a", transport="winrm", status="ok",
                                 steps=[StepResult("Get-HostFact", "ok")]), finished=True)
    writer.close()
    done = _iisfleet(["report", str(run_dir)])
    assert done.returncode == 0 and "partial" not in done.stderr, done.stderr


def test_run_summary_names_failed_hosts_by_category_and_the_retry(tmp_path: Path) -> None:
    """`run` against hosts that refuse connections: the end says how many failed, by category, and the
    exact command to retry them."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "defaults: {transport: winrm, credential: ops, winrm: {scheme: http, port: 1}}\n"
        "credentials:\n  ops: {username: 'CONTOSO\\svc', password: {env: IISFLEET_END_PW}}\n"
        "hosts:\n  web01: {address: 127.0.0.1}\n  web02: {address: 127.0.0.1}\n", encoding="utf-8")
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", "triage-401", "-i", str(inventory), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**{k: v for k, v in os.environ.items() if k != "COLUMNS"}, "IISFLEET_END_PW": "x-not-real-1"})
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert "hosts failed: 2 (connect 2)" in lines, done.stdout
    assert any(line.startswith("retry the hosts that did not finish: iisfleet run triage-401 -i ")
               and line.endswith("--limit web01,web02") for line in lines), done.stdout
    assert any(line.startswith("[2/2] ") for line in lines)  # progress lines off a terminal


def test_lab_serve_prints_no_paramiko_traceback_when_hosts_check_probes_ssh(tmp_path: Path) -> None:
    """`hosts check` opens the SSH port and closes it before the banner (its TCP rung); the lab used to
    print a paramiko traceback for each such connection."""
    import signal
    import time

    fleet = tmp_path / "fleet"
    assert _iisfleet(["lab", "generate", str(fleet), "--scenario", "healthy", "--hosts", "2"]).returncode == 0
    serve = subprocess.Popen([sys.executable, "-m", "toolkit", "lab", "serve", str(fleet), "--port-base", "0"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        give_up = time.monotonic() + 60
        while not (fleet / "inventory.yml").is_file() and time.monotonic() < give_up:
            time.sleep(0.2)
        time.sleep(1.0)
        ssh_inventory = tmp_path / "ssh.yml"
        ssh_inventory.write_text((fleet / "inventory.yml").read_text().replace("transport: winrm", "transport: ssh"))
        check = _iisfleet(["hosts", "check", "-i", str(ssh_inventory)])
        assert check.returncode == 0, check.stdout + check.stderr
        assert "2/2 hosts passed" in check.stdout
    finally:
        serve.send_signal(signal.SIGINT)
        _, stderr = serve.communicate(timeout=60)
    assert "Traceback" not in stderr and "Error reading SSH protocol banner" not in stderr, stderr
    assert "lab stopped" in stderr
