"""The runner over the lab: every fault ends in its category while the other hosts' results are complete."""

from __future__ import annotations

from dataclasses import replace

from fleet_helpers import ECHO_ID, StubPlaybook, StubStep
from lab_fixtures import FLEET, winrm_host

from toolkit.rundir import load_run
from toolkit.runner import run_playbook

EXPECTED = {
    "good": ("ok", None), "good2": ("ok", None), "latency": ("ok", None), "plainok": ("ok", None),
    "reset": ("failed", "connect"), "authfail": ("failed", "auth"), "refused": ("failed", "connect"),
    "unknownca": ("failed", "tls"), "slow": ("partial", "timeout"), "garbage": ("failed", "contract"),
    "scripterr": ("failed", "script"), "writeerr": ("failed", "script"), "leaky": ("failed", "contract"),
}


def test_fleet_sweep_over_winrm(lab, tmp_path, catalog) -> None:
    hosts = []
    for name in FLEET:
        # the reset fault matters most over HTTP with message encryption (the notes' pitfall 1)
        host = winrm_host(lab, name, scheme="http" if name == "reset" else "https")
        hosts.append(replace(host, time_budget=30))
    playbook = StubPlaybook("lab-sweep", [StubStep(ECHO_ID, {"Message": "slow"}, timeout=1.5),
                                          StubStep(ECHO_ID, {"Message": "second", "Count": 2}, timeout=10)])
    summary = run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, concurrency=8, catalog=catalog)
    got = {h.host: (h.status, h.error.category if h.error else None) for h in summary.hosts}
    assert got == EXPECTED

    run = load_run(tmp_path / "run")
    assert run.status == "complete"
    for name, (status, category) in EXPECTED.items():
        record = run.hosts[name]
        assert record.status == status
        if status == "ok":
            assert record.envelopes[ECHO_ID]["data"] == {"message": "second", "count": 2}
            assert [s["status"] for s in record.steps] == ["ok", "ok"]
        else:
            assert record.error["category"] == category
            assert record.error["explanation"]
    # the slow host's session survived its timed-out step
    assert run.hosts["slow"].envelopes[ECHO_ID]["data"]["message"] == "second"
    # a credential echoed by a host never reaches the run directory
    assert ECHO_ID not in run.hosts["leaky"].envelopes
    assert {s["status"] for s in run.hosts["refused"].steps} == {"skipped"}
