"""Run-directory writes: one fsync per envelope and one per host's final state (the in-between host.json
states are renamed into place without fsync), and a run killed with SIGKILL mid-host stays reportable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from fleet_helpers import ECHO_ID, StubPlaybook, StubStep
from lab_fixtures import winrm_host

from toolkit.rundir import load_run
from toolkit.runner import run_playbook

HERE = Path(__file__).parent


def test_fsyncs_per_host_are_its_envelopes_and_its_final_state(lab, tmp_path, catalog, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    playbook = StubPlaybook("writes", [StubStep(ECHO_ID, {"Message": "one"}, timeout=10),
                                       StubStep(ECHO_ID, {"Message": "two"}, timeout=10),
                                       StubStep(ECHO_ID, {"Message": "three"}, timeout=10)])
    hosts = [winrm_host(lab, name) for name in ("good", "good2")]
    run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, concurrency=2, catalog=catalog)
    # the fsync happens on the temporary file ".<name>.<random>.tmp" before it is renamed to <name>
    per_file = Counter(Path(path).parent.name + "/" + Path(path).name[1:].removesuffix(".tmp").rsplit(".", 1)[0]
                       for path in synced)
    for name in ("good", "good2"):
        assert per_file[f"{name}/host.json"] == 1  # its final state only (it was written 5 times)
        assert per_file[f"{name}/{ECHO_ID}.json"] == 3  # each envelope once (the same file three times)
    assert per_file["run/run.json"] == 2
    # then the seal (docs/bundle.md): each host manifest, the run manifest and the custody log's first entry
    assert per_file["manifests/good.json"] == per_file["manifests/good2.json"] == per_file["run/manifest.json"] == 1
    assert sum(per_file.values()) == 2 * 4 + 2 + 4


KILLED_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from types import SimpleNamespace
from pathlib import Path
from fleet_helpers import ECHO_ID, StubPlaybook, StubStep, echo_collector
from lab_fixtures import winrm_host
from toolkit.runner import run_playbook

lab = SimpleNamespace(**json.loads(sys.argv[2]))
lab.endpoints = (lambda endpoints: (lambda: endpoints))(lab.endpoints)
playbook = StubPlaybook("killed", [StubStep(ECHO_ID, {"Message": "first"}, timeout=20),
                                   StubStep(ECHO_ID, {"Message": "slow"}, timeout=20),
                                   StubStep(ECHO_ID, {"Message": "third"}, timeout=20)])
hosts = [winrm_host(lab, name) for name in ("good", "good2", "slow")]
run_playbook(playbook, hosts, out_dir=Path(sys.argv[3]), params={}, concurrency=3, catalog={ECHO_ID: echo_collector()})
"""


def test_a_run_killed_mid_host_stays_reportable(lab, tmp_path) -> None:
    from toolkit.report import report_for_run

    out = tmp_path / "run"
    lab_info = json.dumps({"endpoints": lab.endpoints(), "ca_cert_path": str(lab.ca_cert_path)})
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(HERE), lab_info, str(out)],
                               env={**os.environ, "IISFLEET_TEST_LAB_PASSWORD": "unused"})
    deadline = time.monotonic() + 60
    try:
        while True:  # until the two quick hosts are done and the slow one is inside its slow step
            log = (out / "log.jsonl").read_text(encoding="utf-8") if (out / "log.jsonl").is_file() else ""
            finished = log.count('"event": "host_finished"')
            slow_started = '"host": "slow", "collector": "Test-Echo", "status": "ok"' in log
            if finished >= 2 and slow_started:
                break
            assert process.poll() is None and time.monotonic() < deadline, "the run did not get going"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    run = load_run(out)
    assert run.status == "interrupted"
    assert {name: run.hosts[name].status for name in ("good", "good2")} == {"good": "ok", "good2": "ok"}
    slow = run.hosts["slow"]
    assert not slow.finished and slow.status == "partial"
    assert [s["status"] for s in slow.steps] == ["ok"]  # the in-between state the kill left
    assert slow.envelopes[ECHO_ID]["data"]["message"] == "first"
    report = report_for_run(out)
    assert {h["name"] for h in report["hosts"]} == {"good", "good2", "slow"}
