"""Seeded lab runs for the history tests: generate a scenario, serve it over real WinRM on loopback, run
triage-401 into a run directory. Same code path as `iisfleet demo`, plus planted faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def served_lab(work: Path, *, scenario: str, hosts: int, seed: int = 0,
               faults: dict[str, list[str]] | None = None) -> Iterator[Path]:
    """Generate and serve a lab fleet; yields its inventory (the fleet's answer key is beside it)."""
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.scenarios import generate
    from toolkit.lab.server import LabServer

    fleet_dir = work / "fleet"
    generate(scenario, hosts, fleet_dir, seed=seed, faults=faults or {})
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        inventory_path = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory_path)
        yield inventory_path


def lab_run(work: Path, *, scenario: str, hosts: int, seed: int, faults: dict[str, list[str]] | None = None,
            playbook: str = "triage-401") -> tuple[Path, dict[str, Any]]:
    """Returns (run directory, the fleet's answer key)."""
    from toolkit.inventory import load_inventory
    from toolkit.playbooks import load_playbook
    from toolkit.runner import run_playbook

    run_dir = work / "run"
    with served_lab(work, scenario=scenario, hosts=hosts, seed=seed, faults=faults) as inventory_path:
        targets = load_inventory(inventory_path).select(None)
        run_playbook(load_playbook(playbook), targets, out_dir=run_dir, params={}, concurrency=8, simulated=True)
    return run_dir, json.loads((work / "fleet" / "expected.json").read_text(encoding="utf-8"))


def planted(expected: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(host, cause, site) of every cause the lab planted."""
    return {(host, c["cause"], c["site"]) for host, causes in expected["hosts"].items() for c in causes}
