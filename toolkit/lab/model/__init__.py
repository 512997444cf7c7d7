"""Host models: a fleet directory (docs/lab-fleet.md) becomes ``(LabHostSpec, HostBackend)`` pairs.

``load_fleet(path)`` validates the whole directory up front (clear ``ConfigError`` naming file and field);
each ``ModelBackend`` then answers the bundled collectors for its host from the files it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from toolkit.lab.backend import LabHostSpec
from toolkit.lab.model.backend import ModelBackend
from toolkit.lab.model.catalog import BundledCollector, load_bundled
from toolkit.lab.model.fleet import (DEMO_PASSWORD, DEMO_USERNAME, FleetModel, HostModel, load_fleet_model,
                                     to_host_spec)
from toolkit.lab.model.inventory import inventory_document, write_inventory

__all__ = ["DEMO_PASSWORD", "DEMO_USERNAME", "FleetModel", "HostModel", "LabCredentials", "LabFleet", "ModelBackend",
           "inventory_document", "load_fleet", "write_inventory"]


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
               clock: Callable[[], float] = time.time) -> LabFleet:
    """Load a fleet directory.

    ``port_base`` None keeps the fleet's ports (5985/5986/22 unless fleet.yml says otherwise); 0 asks the
    servers for free ports (tests, ``demo``); N gives host i ports N+3i (HTTP), N+3i+1 (HTTPS), N+3i+2 (SSH).
    ``bundled`` overrides the collector catalog (tests); ``clock`` the real clock (seconds since the epoch).
    """
    model = load_fleet_model(Path(path))
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
