"""Host models: a fleet directory (docs/lab-fleet.md) becomes ``(LabHostSpec, HostBackend)`` pairs.

``load_fleet(path)`` validates the whole directory up front (clear ``ConfigError`` naming file and field);
each ``ModelBackend`` then answers the bundled collectors for its host from the files it was given.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from toolkit.errors import UsageError
from toolkit.lab.backend import LabHostSpec
from toolkit.lab.model.backend import ModelBackend
from toolkit.lab.model.catalog import BundledCollector, load_bundled
from toolkit.lab.model.fleet import (DEMO_PASSWORD, DEMO_USERNAME, FleetModel, HostModel, load_fleet_model,
                                     to_host_spec)
from toolkit.lab.model.inventory import inventory_document, write_inventory

__all__ = ["DEMO_PASSWORD", "DEMO_USERNAME", "FleetModel", "HostModel", "LabCredentials", "LabFleet", "ModelBackend",
           "START_ENV", "inventory_document", "lab_clock", "load_fleet", "second_of_day", "seconds_behind",
           "write_inventory"]

#: Load a lab fleet as if the real clock were at this UTC second of the day (HH:MM:SS). The second a fleet
#: is loaded decides where its moved traffic splits into daily log files (toolkit/lab/rollover.py), so a
#: lab test that failed at one second is run again at that second with this variable.
START_ENV = "IISFLEET_LAB_START"

#: When fleets were loaded in this process, newest last, as (real clock, the fleet's clock) in epoch
#: seconds: a failing lab test names the second (tests/conftest.py).
LOADED_AT: deque[tuple[float, float]] = deque(maxlen=16)


def second_of_day(text: str, *, name: str = START_ENV) -> int:
    """``HH:MM:SS`` (UTC) as seconds since midnight; a clear ``UsageError`` naming ``name`` otherwise."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})", text.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3]) > 59:
        raise UsageError(f"{name}={text!r}: expected a UTC time of day as HH:MM:SS, e.g. 02:06:10")
    return int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])


def seconds_behind(second: int) -> float:
    """How far to set the real clock back (less than a day) so that it reads that UTC second now."""
    return (time.time() - second) % 86400


def lab_clock() -> Callable[[], float]:
    """The real clock, or with ``IISFLEET_LAB_START=HH:MM:SS`` one set back (less than a day) so that it
    reads that UTC second now. The simulated hosts' clocks follow it; the controller keeps the real clock
    and sees them as behind, as it would a fleet with a clock offset."""
    wanted = os.environ.get(START_ENV, "").strip()
    if not wanted:
        return time.time
    behind = seconds_behind(second_of_day(wanted))

    def clock() -> float:
        return time.time() - behind

    return clock


@dataclass(frozen=True)
class LabCredentials:
    username: str
    password: str  # the lab's documented demo password; never a real secret

    def __repr__(self) -> str:
        return f"LabCredentials(username={self.username!r}, password=<lab demo password>)"


@dataclass(frozen=True)
class LabFleet:
    name: str
    directory: Path
    model: FleetModel
    hosts: list[tuple[LabHostSpec, ModelBackend]]
    credentials: LabCredentials

    def backend(self, host: str) -> ModelBackend:
        for spec, backend in self.hosts:
            if spec.name == host:
                return backend
        raise KeyError(host)


def load_fleet(path: Path, *, port_base: int | None = None, bundled: dict[str, BundledCollector] | None = None,
               clock: Callable[[], float] | None = None) -> LabFleet:
    """Load a fleet directory.

    ``port_base`` None keeps the fleet's ports (5985/5986/22 unless fleet.yml says otherwise); 0 asks the
    servers for free ports (tests, ``demo``); N gives host i ports N+3i (HTTP), N+3i+1 (HTTPS), N+3i+2 (SSH).
    ``bundled`` overrides the collector catalog (tests); ``clock`` the real clock (seconds since the epoch;
    default :func:`lab_clock`).
    """
    clock = clock or lab_clock()
    model = load_fleet_model(Path(path))
    LOADED_AT.append((time.time(), clock()))
    catalog = load_bundled() if bundled is None else bundled
    pairs = []
    for index, host in enumerate(model.hosts):
        spec = to_host_spec(host, model)
        if port_base is not None:
            spec = replace(spec, http_port=port_base and port_base + 3 * index,
                           https_port=port_base and port_base + 3 * index + 1,
                           ssh_port=port_base and port_base + 3 * index + 2)
        pairs.append((spec, ModelBackend(host, model, catalog, clock=clock)))
    return LabFleet(name=model.name, directory=model.directory, model=model, hosts=pairs,
                    credentials=LabCredentials(model.username, model.password))
