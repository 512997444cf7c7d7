"""`iisfleet demo` end to end: generate a lab fleet, serve it on loopback, triage it for real, report.

Every step uses the product's real code path (inventory loader, WinRM/SSH transports, runner, diagnosis,
reports); only the servers are simulated. The run is marked ``simulated`` so every report says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DemoResult:
    fleet_dir: Path
    run_dir: Path
    reports: dict[str, Path]
    report: dict[str, Any]
    expected: dict[str, Any]
    #: the run was stopped (Ctrl-C, SIGTERM) before every host finished; the reports cover what arrived
    interrupted: bool = False


def run_demo(
    work_dir: Path,
    *,
    scenario: str = "seed-catalog",
    hosts: int = 12,
    transport: str = "winrm",
    concurrency: int = 8,
    seed: int = 0,
    hooks: Any = None,
    on_stage: Callable[[str], None] = lambda _stage: None,
    playbook_name: str = "triage-401",
    stop: Any = None,
    stop_running: Any = None,
) -> DemoResult:
    """Generate ``scenario`` under ``work_dir/fleet``, serve it, run ``playbook_name`` (triage-401) into
    ``work_dir/run``. ``stop``/``stop_running`` are the runner's stop events (what one and two Ctrl-C do)."""
    import json

    from toolkit.inventory import load_inventory
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.scenarios import generate
    from toolkit.lab.server import LabServer
    from toolkit.playbooks import load_playbook
    from toolkit.report import build_report, run_hosts_of, write_reports
    from toolkit.diagnose import diagnose_run
    from toolkit.rundir import load_run
    from toolkit.runner import run_playbook

    fleet_dir = work_dir / "fleet"
    run_dir = work_dir / "run"
    on_stage(f"generating the '{scenario}' lab fleet ({hosts} hosts)")
    generate(scenario, hosts, fleet_dir, seed=seed)
    # Free ports on each host's own loopback address: the demo never clashes with a `lab serve` or
    # another demo already running on this machine.
    fleet = load_fleet(fleet_dir, port_base=0)
    on_stage("starting the simulated WinRM/SSH servers on loopback")
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=(transport == "ssh")) as server:
        inventory_path = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory_path)
        inventory = load_inventory(inventory_path)
        targets = inventory.select(None)
        if transport == "ssh":
            from dataclasses import replace

            targets = [replace(host, transport="ssh") for host in targets]
        playbook = load_playbook(playbook_name)
        on_stage(f"running {playbook_name} over real {'WinRM' if transport == 'winrm' else 'SSH'} against "
                 f"{len(targets)} hosts")
        summary = run_playbook(playbook, targets, out_dir=run_dir, params={}, concurrency=concurrency,
                               hooks=hooks, simulated=True, stop=stop, stop_running=stop_running)
    on_stage("diagnosing and writing the reports")
    run = load_run(run_dir)
    model = build_report(run.meta, diagnose_run(run).to_dict(), run_hosts_of(run))
    reports = write_reports(run_dir, model)
    expected_path = fleet_dir / "expected.json"
    expected = json.loads(expected_path.read_text(encoding="utf-8")) if expected_path.is_file() else {}
    return DemoResult(fleet_dir=fleet_dir, run_dir=run_dir, reports=reports, report=model, expected=expected,
                      interrupted=summary.status == "interrupted")
