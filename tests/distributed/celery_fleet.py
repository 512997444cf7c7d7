"""Helpers for the distributed-run tests: a lab inventory with zones, and the run's log events. The broker
and the workers come from ``toolkit.lab.broker`` (shared with bench/distributed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: Every host's budget in the zoned lab inventory; the tests' visibility timeout is longer, as the engine demands.
BUDGET = 25.0


def zone_inventory(inventory: Path, zones: dict[str, str], *, time_budget: float) -> Path:
    """The lab's inventory with a ``zone`` var per host and a short host budget."""
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    document.setdefault("defaults", {})["time_budget"] = time_budget
    for name, host in document["hosts"].items():
        host.setdefault("vars", {})["zone"] = zones[name]
    out = inventory.with_name("zoned-inventory.yml")
    out.write_text(yaml.safe_dump(document), encoding="utf-8")
    return out


def events(run_dir: Path) -> list[dict[str, Any]]:
    import json

    path = run_dir / "log.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
