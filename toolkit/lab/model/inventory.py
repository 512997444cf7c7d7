"""Write the inventory a served lab fleet answers to, in iisfleet's own format (docs/contracts.md §3)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml



def inventory_document(fleet: Any, endpoints: Mapping[str, Mapping[str, Any]], ca_cert_path: Path | None,
                       known_hosts_path: Path | None, *, transport: str = "winrm", scheme: str = "http",
                       directory: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The inventory as a dict. WinRM over HTTP with Negotiate (message encryption) by default.

    ``fleet`` is a ``LabFleet`` or its ``FleetModel``; ``directory`` becomes the ``directory:`` section (the
    lab DC: ``toolkit.lab.addc.live.directory_section``).
    """
    fleet = getattr(fleet, "model", fleet)
    winrm: dict[str, Any] = {"scheme": scheme, "auth": "negotiate", "cert_validation": True,
                             "ca_bundle": str(ca_cert_path) if ca_cert_path else None, "encryption": "auto"}
    ssh: dict[str, Any] = {"port": 22, "known_hosts": str(known_hosts_path) if known_hosts_path else None,
                           "host_key_checking": True}
    hosts: dict[str, Any] = {}
    groups: dict[str, dict[str, list[str]]] = {}
    for host in fleet.hosts:
        end = dict(endpoints.get(host.name, {}))
        entry: dict[str, Any] = {"address": end.get("address", host.address)}
        http_port = int(end.get("http_port") or host.http_port)
        https_port = int(end.get("https_port") or host.https_port)
        port = http_port if scheme == "http" else https_port
        if port != (5985 if scheme == "http" else 5986):
            entry["winrm"] = {"port": port}
        ssh_port = end.get("ssh_port")
        if ssh_port and int(ssh_port) != 22:
            entry["ssh"] = {"port": int(ssh_port)}
        if host.tags:
            entry["tags"] = list(host.tags)
            for tag in host.tags:
                groups.setdefault(tag, {"hosts": []})["hosts"].append(host.name)
        endpoint = _endpoint_to_use(host)
        if endpoint is not None:
            entry.setdefault("winrm", {}).update(endpoint)
        # the other listener's port, for tests that switch scheme per host
        entry["vars"] = {"lab_http_port": http_port, "lab_https_port": https_port}
        hosts[host.name] = entry
    document: dict[str, Any] = {
        "simulated": True,
        "defaults": {"transport": transport, "credential": "lab", "winrm": winrm, "ssh": ssh},
        "credentials": {"lab": {"username": fleet.username, "password": {"plaintext": fleet.password}}},
        "hosts": hosts,
    }
    if groups:
        document["groups"] = groups
    if directory:
        document["directory"] = dict(directory)
    return document


def _endpoint_to_use(host: Any) -> dict[str, Any] | None:
    """The winrm options that select a host's endpoint: None for Windows' default (Microsoft.PowerShell),
    else the iisfleet JEA endpoint when the host offers one, else its first endpoint."""
    endpoints = getattr(host, "endpoints", ())
    if not endpoints or any(e.name.lower() == "microsoft.powershell" for e in endpoints):
        return None
    jea = next((e for e in endpoints if e.jea), None)
    if jea is not None:
        return {"configuration_name": jea.name, "jea": True}
    return {"configuration_name": endpoints[0].name}


def write_inventory(fleet: Any, endpoints: Mapping[str, Mapping[str, Any]], ca_cert_path: Path | None,
                    known_hosts_path: Path | None, out: Path, *, transport: str = "winrm", scheme: str = "http",
                    directory: Mapping[str, Any] | None = None) -> Path:
    """Write the inventory atomically to ``out`` and return it."""
    document = inventory_document(fleet, endpoints, ca_cert_path, known_hosts_path, transport=transport, scheme=scheme,
                                  directory=directory)
    header = ("# Written by `iisfleet lab serve` for a SIMULATED fleet. The password below is the lab's fixed,\n"
              "# documented demo credential (docs/lab-fleet.md); only lab hosts accept it.\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".inventory-", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(header)
        yaml.safe_dump(document, handle, sort_keys=False, default_flow_style=False)
    os.replace(tmp, out)
    return out
