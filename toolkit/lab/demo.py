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
    domain_controller: bool = False,
) -> DemoResult:
    """Generate ``scenario`` under ``work_dir/fleet``, serve it, run ``playbook_name`` (triage-401) into
    ``work_dir/run``. ``stop``/``stop_running`` are the runner's stop events (what one and two Ctrl-C do).

    ``domain_controller``: also run the lab's Samba AD DC seeded from the fleet's domain (the caller checks
    ``toolkit.lab.addc.available()`` first); the fleet is then regenerated with the Kerberos outcomes of real
    exchanges with that DC, and the run queries it as the inventory's ``directory:``.
    """
    import contextlib
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
    expected = generate(scenario, hosts, fleet_dir, seed=seed)
    with contextlib.ExitStack() as stack:
        directory, after_hosts = None, None
        if domain_controller:
            from toolkit.lab.addc.live import directory_section, lab_domain, real_tickets
            from toolkit.lab.model.fleet import load_fleet_model
            from toolkit.lab.scenarios.causes import recorded_tickets

            on_stage("starting the lab's Samba AD domain controller, seeded from the fleet's domain")
            fleet_model = load_fleet_model(fleet_dir)
            dc = stack.enter_context(lab_domain(fleet_model))
            outcomes = real_tickets(dc, expected, fleet_model)
            if outcomes:
                on_stage(f"replaying {len(outcomes)} Kerberos logons with real tickets")
                generate(scenario, hosts, fleet_dir, seed=seed, overwrite=True, tickets=recorded_tickets(outcomes))
            directory = directory_section(dc)
        # Free ports on each host's own loopback address: the demo never clashes with a `lab serve` or
        # another demo already running on this machine.
        fleet = load_fleet(fleet_dir, port_base=0)
        on_stage("starting the simulated WinRM/SSH servers on loopback")
        server = stack.enter_context(LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=(transport == "ssh")))
        inventory_path = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory_path,
                        directory=directory)
        inventory = load_inventory(inventory_path)
        targets = inventory.select(None)
        directory_config = getattr(inventory, "directory", None)
        if directory_config is not None:
            from toolkit.directory import collect_for_run

            ref = directory_config.credential
            credential = inventory.resolver.resolve(ref) if ref is not None else None

            def after_hosts(run_dir: Path) -> None:
                collect_for_run(run_dir, directory_config, credential)
        if transport == "ssh":
            from dataclasses import replace

            targets = [replace(host, transport="ssh") for host in targets]
        playbook = load_playbook(playbook_name)
        on_stage(f"running {playbook_name} over real {'WinRM' if transport == 'winrm' else 'SSH'} against "
                 f"{len(targets)} hosts")
        summary = run_playbook(playbook, targets, out_dir=run_dir, params={}, concurrency=concurrency,
                               hooks=hooks, simulated=True, stop=stop, stop_running=stop_running,
                               after_hosts=after_hosts)
    on_stage("diagnosing and writing the reports")
    run = load_run(run_dir)
    model = build_report(run.meta, diagnose_run(run).to_dict(), run_hosts_of(run))
    reports = write_reports(run_dir, model)
    expected_path = fleet_dir / "expected.json"
    expected = json.loads(expected_path.read_text(encoding="utf-8")) if expected_path.is_file() else {}
    return DemoResult(fleet_dir=fleet_dir, run_dir=run_dir, reports=reports, report=model, expected=expected,
                      interrupted=summary.status == "interrupted")
