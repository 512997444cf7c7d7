"""The seconds of the day at which a lab fleet's client conversations fall across a daily log file.

The lab presents a fleet's traffic moved to "now" (``toolkit.lab.model.backend``) and splits it into daily
``u_exYYMMDD.log`` files at midnight of the moved time, as IIS does. So the second a fleet is loaded
decides which conversations (a 401 and the same client's next line for that URL, within the handshake
window) have their two lines in two files. A diagnosis that holds for any fleet showing the same evidence
does not depend on that second: ``bench/rollover/rollover.py`` checks every such second of a fleet,
``tests/e2e/test_log_rollover.py`` a sample.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

DAY = 86400
WINDOW_S = 30


def split_seconds(fleet_dir: Path, reference: dt.datetime) -> dict[int, set[str]]:
    """Second of the day at which the fleet is loaded → hosts one of whose conversations it splits.

    A stored line at time t is presented at t + (load − reference); the files split at presented midnight.
    """
    from toolkit.logs.w3c import iter_records

    found: dict[int, set[str]] = defaultdict(set)
    for log in sorted(fleet_dir.glob("hosts/*/files/**/W3SVC*/*.log")):
        host = log.relative_to(fleet_dir / "hosts").parts[0]
        rows = []
        with log.open("rb") as stream:
            for record in iter_records(stream, str(log)):
                row = {name: value.decode("utf-8", "replace") for name, value in record.fields.items()}
                try:
                    when = dt.datetime.strptime(f"{row['date']} {row['time']}", "%Y-%m-%d %H:%M:%S")
                except (KeyError, ValueError):
                    continue
                rows.append((when, row))
        rows.sort(key=lambda item: item[0])
        last: dict[tuple[str, str, str], tuple[dt.datetime, dict[str, str]]] = {}
        for when, row in rows:
            key = (row.get("c-ip", ""), row.get("cs(User-Agent)", ""), row.get("cs-uri-stem", ""))
            previous = last.get(key)
            if previous is not None and previous[1].get("sc-status") == "401":
                gap = int((when - previous[0]).total_seconds())
                if 0 < gap <= WINDOW_S + 5:
                    age = int((reference - previous[0]).total_seconds())
                    for k in range(gap):  # presented(previous) = 23:59:59 − k: midnight falls inside the gap
                        found[(DAY - 1 - k + age) % DAY].add(host)
            last[key] = (when, row)
    return found


def quiet_second(split: dict[int, set[str]], start: int = 12 * 3600) -> int:
    """The first second from ``start`` on that splits no conversation."""
    for offset in range(DAY):
        second = (start + offset) % DAY
        if second not in split:
            return second
    raise SystemExit("every second of the day splits a conversation")


def clock_at(second: int) -> float:
    """An epoch time at that UTC second of the day, within the last day, so the fleet's traffic stays in the
    past (``IISFLEET_LAB_START``'s arithmetic)."""
    from toolkit.lab.model import seconds_behind

    return time.time() - seconds_behind(second)


def lab_envelopes(fleet_dir: Path, run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every host's envelopes from one lab run of triage-401 (real WinRM, real runner)."""
    from toolkit.inventory import load_inventory
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.server import LabServer
    from toolkit.playbooks import load_playbook
    from toolkit.rundir import load_run
    from toolkit.runner import run_playbook

    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        inventory_path = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory_path)
        targets = load_inventory(inventory_path).select(None)
        run_playbook(load_playbook("triage-401"), targets, out_dir=run_dir, params={}, concurrency=6,
                     simulated=True)
    run = load_run(run_dir)
    return {name: dict(record.envelopes) for name, record in run.hosts.items()}


def w3c_envelopes(fleet_dir: Path, hosts: set[str], second: int) -> dict[str, dict[str, Any]]:
    """Get-IisW3CLog as the lab's C# core answers it on each host with the fleet loaded at that second."""
    from toolkit.collectors import read_bundled_text
    from toolkit.contract import merge_parts
    from toolkit.lab.model import load_fleet

    at = clock_at(second)
    fleet = load_fleet(fleet_dir, port_base=0, clock=lambda: at)
    since = dt.datetime.fromtimestamp(at - DAY, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {}
    for host in sorted(hosts):
        answer = fleet.backend(host).answer(read_bundled_text("Get-IisW3CLog.ps1"),
                                            {"Since": since, "HandshakeWindowSeconds": WINDOW_S,
                                             "MaxLinesPerFile": 200000})
        if answer.error:
            raise RuntimeError(f"{host}: {answer.error}")
        out[host] = merge_parts([json.loads(line) for line in answer.output])
    return out


def findings(envelopes: dict[str, dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(host, cause, site, substatus) of every 401 finding the diagnosis makes of these envelopes."""
    from toolkit.diagnose import diagnose
    from toolkit.diagnose.evidence import build_host_evidence

    hosts = {name: build_host_evidence(name, env) for name, env in envelopes.items()}
    return {(host, f.cause, f.site, f.substatus) for f in diagnose(hosts).findings for host in f.hosts
            if f.substatus.startswith("401")}
