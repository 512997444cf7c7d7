"""The inventory `iisfleet lab serve` writes (LAB-MODEL's write_inventory) loads as a simulated one."""

from __future__ import annotations

import importlib

from pathlib import Path


from toolkit.inventory import load_inventory
from toolkit.secrets import Secret


def test_lab_written_inventory_loads(tmp_path: Path) -> None:
    lab = importlib.import_module("toolkit.lab.model")
    scenarios = importlib.import_module("toolkit.lab.scenarios")
    scenarios.generate("healthy", 2, tmp_path / "fleet", seed=0)
    fleet = lab.load_fleet(tmp_path / "fleet")
    endpoints = {
        "web01": {"address": "127.0.0.1", "http_port": 15985, "https_port": 15986, "ssh_port": 12222}
    }
    out = lab.write_inventory(
        fleet, endpoints, tmp_path / "ca.pem", tmp_path / "known_hosts", tmp_path / "inv.yml"
    )
    inventory = load_inventory(out)
    assert inventory.simulated is True and inventory.format == "iisfleet"
    web01 = inventory.select("web01")[0]
    assert (web01.address, web01.winrm.effective_port, web01.ssh.port) == ("127.0.0.1", 15985, 12222)
    assert web01.winrm.ca_bundle == str(tmp_path / "ca.pem")
    assert web01.ssh.known_hosts == str(tmp_path / "known_hosts")
    assert web01.credential is not None and isinstance(web01.credential.password, Secret)
    password = web01.credential.password.reveal()
    assert password and password not in repr(web01) and password not in repr(inventory.hosts)
