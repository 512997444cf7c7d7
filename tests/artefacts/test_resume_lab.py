"""`iisfleet run --resume` over the lab: a triage run stopped with two Ctrl-C while one host is slow in a
collector (the lab's slow_collector fault on Get-AuthEventLog, 20 s) is finished in place: the hosts that
finished are not contacted, the slow host keeps its finished steps and runs the rest, and the report equals
an uninterrupted run's over the same lab with the same reference time. The run directory then verifies,
its custody log going on with a ``resumption`` entry."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.lab.model import load_fleet, write_inventory
from toolkit.lab.scenarios import generate
from toolkit.lab.server import LabServer

REPO = Path(__file__).resolve().parents[2]
HUNG = "web01"
HUNG_COLLECTOR = "Get-AuthEventLog"


def iisfleet(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={k: v for k, v in os.environ.items() if k != "COLUMNS"})


def _serve(fleet_dir: Path, inventory: Path) -> LabServer:
    fleet = load_fleet(fleet_dir, port_base=0)
    server = LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False)
    server.__enter__()
    write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory)
    return server


def _report(run_dir: Path) -> dict:
    result = iisfleet("report", str(run_dir), "-f", "json")
    # the host's current clock is in the report (clock outliers): it differs between any two runs, and so
    # does its offset from the fleet median by a fraction of a second (the hosts' readings have 1 s
    # resolution and the median of an even count is a midpoint), in clock_outliers and in the findings' text
    # ("clock offset +659 s", "659 seconds ahead" against 660 in the other run); the minute it is off by does not
    text = re.sub(r"host clock [0-9TZ:-]+", "host clock (now)", result.stdout)
    text = re.sub(r"\b(\d+) (s|seconds)\b", lambda m: f"{round(int(m.group(1)) / 60)} min", text)
    report = json.loads(text)
    for key in ("started_utc", "finished_utc"):
        report["run"].pop(key)
    for outlier in report["clock_outliers"]:
        outlier.pop("utc_now")
        outlier["offset_s"] = round(outlier["offset_s"] / 60)
    return report


@pytest.mark.slow
def test_a_run_stopped_with_ctrl_c_resumes_to_the_uninterrupted_report(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    generate("seed-catalog", 6, fleet_dir, seed=3, faults={HUNG: ["slow_collector"]})
    host_yml = fleet_dir / "hosts" / HUNG / "host.yml"
    host_yml.write_text(host_yml.read_text().replace("collector: '*'", f"collector: {HUNG_COLLECTOR}")
                        .replace("delay_s: 120", "delay_s: 20"))
    inventory = fleet_dir / "inventory.yml"
    interrupted = tmp_path / "interrupted"

    server = _serve(fleet_dir, inventory)
    try:
        process = subprocess.Popen([sys.executable, "-m", "toolkit", "run", "triage-401", "-i", str(inventory),
                                    "--out", str(interrupted)], cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        hung_json = interrupted / "hosts" / HUNG / "host.json"
        give_up = time.monotonic() + 300
        while time.monotonic() < give_up:
            finished = [p for p in interrupted.glob("hosts/*/host.json") if json.loads(p.read_text()).get("finished")]
            done = [s["collector"] for s in json.loads(hung_json.read_text())["steps"]] if hung_json.is_file() else []
            if len(finished) == 5 and "Get-IisW3CLog" in done:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.3)
        time.sleep(2.0)  # inside the slow collector now
        for _ in range(2):
            process.send_signal(signal.SIGINT)
            time.sleep(0.3)
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr
        assert f"iisfleet run --resume {interrupted}" in stdout
        before = json.loads(hung_json.read_text())
        kept = [s["collector"] for s in before["steps"] if s["status"] == "ok"]
        assert "Get-HostFact" in kept and HUNG_COLLECTOR not in kept
        assert json.loads((interrupted / "run.json").read_text())["status"] == "interrupted"

        resumed = iisfleet("run", "--resume", str(interrupted), "--json")
        assert resumed.returncode == 0, resumed.stderr
        uninterrupted = tmp_path / "uninterrupted"
        reference = json.loads((interrupted / "run.json").read_text())["reference_utc"]  # the same window
        whole = iisfleet("run", "triage-401", "-i", str(inventory), "--out", str(uninterrupted),
                         "--reference-time", reference)
        assert whole.returncode == 0, whole.stderr
    finally:
        server.__exit__(None, None, None)

    summary = json.loads(resumed.stdout)
    assert summary["status"] == "complete" and summary["counts"]["ok"] == 6
    events = [json.loads(line) for line in (interrupted / "log.jsonl").read_text().splitlines()]
    resumed_at = next(i for i, e in enumerate(events) if e["event"] == "run_resumed")
    after = events[resumed_at:]
    assert sorted(e["host"] for e in after if e["event"] == "host_kept") == ["web02", "web03", "web04", "web05", "web06"]
    ran_again = [e["collector"] for e in after if e["event"] == "step_finished" and e["host"] == HUNG]
    assert not set(ran_again) & set(kept) and HUNG_COLLECTOR in ran_again
    meta = json.loads((interrupted / "run.json").read_text())
    assert meta["status"] == "complete" and len(meta["resumed_utc"]) == 1

    assert _report(interrupted) == _report(uninterrupted)

    verify = iisfleet("bundle", "verify", str(interrupted), "--json")
    assert verify.returncode == 0, verify.stdout
    actions = [json.loads(line)["action"] for line in (interrupted / "custody.jsonl").read_text().splitlines()]
    assert actions[:2] == ["collection", "resumption"]


def test_resume_refuses_what_it_cannot_finish(tmp_path: Path) -> None:
    nothing = iisfleet("run", "--resume", str(tmp_path))
    assert nothing.returncode == 2 and "no readable run.json" in nothing.stderr and "Traceback" not in nothing.stderr
    both = iisfleet("run", "--resume", str(tmp_path), "--out", str(tmp_path / "x"))
    assert both.returncode == 2 and "leave out --out" in both.stderr
    neither = iisfleet("run")
    assert neither.returncode == 2 and "Missing argument 'PLAYBOOK' (or --resume RUN_DIR)" in neither.stderr
