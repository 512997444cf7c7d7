"""Stopping a run for real: a lab fleet served over WinRM with one host whose collectors hang (the lab's
``slow_collector`` fault, 120 s per collector), and real signals sent to an ``iisfleet run`` process.

* two Ctrl-C stop the hung step within a few seconds (its pipeline stopped, the session closed);
* SIGTERM does what two Ctrl-C do;
* a third Ctrl-C exits at once;
every time ``run.json`` says ``interrupted`` and the exit code is 130.
"""

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
from toolkit.rundir import load_run

REPO = Path(__file__).resolve().parents[2]
#: What "within a few seconds" means here: one WinRM poll (5 s) plus stopping the pipeline, on a busy CI box.
STOP_WITHIN_S = 15.0


@pytest.fixture(scope="module")
def slow_fleet(tmp_path_factory: pytest.TempPathFactory):
    fleet_dir = tmp_path_factory.mktemp("stop") / "fleet"
    names = sorted(generate("healthy", 3, fleet_dir, seed=0)["hosts"])
    slow = names[0]
    generate("healthy", 3, fleet_dir, seed=0, faults={slow: ["slow_collector"]}, overwrite=True)
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=True) as server:
        inventory = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory)
        ssh_inventory = fleet_dir / "inventory-ssh.yml"
        ssh_inventory.write_text(inventory.read_text().replace("transport: winrm", "transport: ssh", 1))
        yield inventory, names, slow, ssh_inventory


def _run_until_only_the_slow_host_is_left(inventory: Path, out: Path, names: list[str]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "toolkit", "run", "triage-401", "-i", str(inventory),
                                "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        finished = [p for p in out.glob("hosts/*/host.json") if json.loads(p.read_text()).get("finished")]
        if len(finished) == len(names) - 1:
            time.sleep(1.0)  # the slow host is inside a collector now
            return process
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the fast hosts did not finish")


@pytest.mark.slow
@pytest.mark.parametrize("signals", [
    pytest.param([signal.SIGINT, signal.SIGINT], id="two-ctrl-c"),
    pytest.param([signal.SIGTERM], id="sigterm"),
    pytest.param([signal.SIGINT, signal.SIGINT, signal.SIGINT], id="three-ctrl-c"),
    pytest.param([signal.SIGINT, signal.SIGINT], id="two-ctrl-c-over-ssh"),
])
def test_signals_stop_a_hung_host_quickly(slow_fleet, tmp_path: Path, signals: list[int], request) -> None:
    inventory, names, slow, ssh_inventory = slow_fleet
    if request.node.callspec.id.endswith("over-ssh"):
        inventory = ssh_inventory
    out = tmp_path / "run"
    process = _run_until_only_the_slow_host_is_left(inventory, out, names)
    sent = time.monotonic()
    for number in signals:
        process.send_signal(number)
        time.sleep(0.3)
    stdout, stderr = process.communicate(timeout=120)
    took = time.monotonic() - sent
    assert process.returncode == 130, stderr
    assert took < STOP_WITHIN_S, f"stopped after {took:.1f} s"
    assert "Traceback" not in stderr
    run = load_run(out)
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    for name in names:
        if name != slow:
            assert run.hosts[name].status == "ok"  # what arrived is kept
    if len(signals) < 3:
        # the hung step is recorded as cut short by the operator, not as a host failure
        first = run.hosts[slow].steps[0]
        assert first["status"] == "skipped" and first["skipped_reason"].startswith(
            "the run was interrupted while this step ran"), first
        assert run.hosts[slow].error is None
        assert "retry the hosts that did not finish:" in stdout and f"--limit {slow}" in stdout
    else:
        assert "exiting now" in stderr


@pytest.mark.slow
def test_progress_lines_when_not_on_a_terminal(slow_fleet, tmp_path: Path, monkeypatch) -> None:
    """Off a terminal: a numbered line per finished host, and a "still running" line naming the hung host
    and its step while nothing else happens."""
    import toolkit.cli.run as run_cli

    inventory, names, slow, _ = slow_fleet
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["IISFLEET_TEST_HEARTBEAT_S"] = "2"
    process = subprocess.Popen([sys.executable, "-c",
                                "import toolkit.cli.run as r, os; r.HEARTBEAT_S = float(os.environ"
                                "['IISFLEET_TEST_HEARTBEAT_S']); from toolkit.cli import main; main()",
                                "run", "triage-401", "-i", str(inventory), "--out", str(out)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(12)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert run_cli.HEARTBEAT_S == 30.0  # the product's value; the subprocess shortened its own
    lines = stdout.splitlines()
    assert any(line.startswith(f"[{len(names) - 1}/{len(names)}]") or "more finished" in line for line in lines), stdout
    assert any("still running 1:" in line and slow in line and "Get-HostFact" in line for line in lines), stdout


@pytest.mark.slow
def test_budgets_are_stated_truthfully(slow_fleet, tmp_path: Path) -> None:
    """A step that times out names its collector, how long it really ran and which limit stopped it (its
    own timeout, or what was left of the host's budget); steps the budget left out say the budget."""
    inventory, names, slow, _ = slow_fleet
    tight = tmp_path / "inventory.yml"
    tight.write_text(inventory.read_text().replace("defaults:\n", "defaults:\n  time_budget: 5\n", 1))
    book = tmp_path / "three-steps.yml"
    book.write_text("name: three-steps\ndescription: three collectors with short timeouts\nsteps:\n"
                    "  - {collector: Get-HostFact, timeout: 2s}\n  - {collector: Get-IisConfig, timeout: 2s}\n"
                    "  - {collector: Get-IisSpn, timeout: 2s}\n  - {collector: Get-LocalUserRight, timeout: 2s}\n")
    done = subprocess.run([sys.executable, "-m", "toolkit", "run", str(book), "-i", str(tight), "--limit", slow,
                           "--out", str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert done.returncode == 3, done.stderr  # a timeout counts as unreachable
    one_line = " ".join(done.stdout.split())
    assert re.search(r"Get-HostFact: the script did not finish within its 2 s budget \(stopped after [2-9] s\); "
                     r"the limit was the step's 2 s timeout", one_line), done.stdout
    steps = load_run(tmp_path / "run").hosts[slow].steps
    assert steps[0]["status"] == "failed"
    cut = [s for s in steps if s["status"] == "skipped"]
    limited = [s for s in steps if s["error"] and "what was left of the host's 5 s budget" in s["error"]["message"]]
    assert cut or limited, steps  # 4 x 2 s do not fit in 5 s: later steps get less, or none
    for step in cut:
        assert step["skipped_reason"] == "the host's time budget was used up (5 s for all its steps)"
    if cut:
        assert f"{len(cut)} step(s) not run: the host's time budget was used up (5 s for all its steps)" in one_line
    for step in steps:
        if step["error"] and step["error"]["category"] == "timeout":
            assert "the limit was the step's 2 s timeout" in step["error"]["message"] or \
                "the limit was what was left of the host's 5 s budget" in step["error"]["message"]
