"""`hosts check` learns, before any run, what each host's session may do and what a missing right costs.

The lab hosts declare their endpoints in host.yml (docs/lab-fleet.md): an admin session, a UAC-filtered
one, ConstrainedLanguage, and a host reached only through the iisfleet JEA endpoint.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from toolkit.inventory import load_inventory
from toolkit.lab.model import load_fleet, write_inventory
from toolkit.lab.scenarios import generate
from toolkit.lab.server import LabServer
from toolkit.transports.check import check_hosts

JEA = {"name": "IisFleet", "language": "NoLanguage", "jea": True}
ENDPOINTS = {
    "web01": [{"name": "Microsoft.PowerShell"}, JEA],
    "web02": [{"name": "Microsoft.PowerShell", "elevated": False}],
    "web03": [{"name": "Microsoft.PowerShell", "language": "ConstrainedLanguage"}],
    "web04": [JEA],
    "web05": [{"name": "Microsoft.PowerShell", "elevated": False, "groups": ["Event Log Readers", "Remote Management Users"]}],
}


def test_session_rights_and_jea_endpoint_per_host(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    generate("healthy", 5, fleet_dir)
    for name, endpoints in ENDPOINTS.items():
        path = fleet_dir / "hosts" / name / "host.yml"
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        document["endpoints"] = endpoints
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, None, fleet_dir / "inventory.yml")
        hosts = load_inventory(fleet_dir / "inventory.yml").select(None)
        results = {r.host: {i.name: i for i in r.items} for r in check_hosts(hosts)}

    admin = results["web01"]
    assert admin["session"].status == "ok" and "5.1" in admin["session"].detail
    assert "FullLanguage" in admin["session"].detail and "elevated" in admin["session"].detail
    assert "Administrators" in admin["session"].detail
    assert admin["rights"].status == "ok"
    assert admin["jea"].status == "ok" and "registered" in admin["jea"].detail

    filtered = results["web02"]
    assert "NOT elevated" in filtered["session"].detail
    assert filtered["rights"].status == "warn" and filtered["rights"].category == "environment"
    assert "Get-IisConfig" in filtered["rights"].detail and "no cause can be diagnosed" in filtered["rights"].detail
    assert "account-locked-out" in filtered["rights"].detail  # the Security log's causes
    assert "LocalAccountTokenFilterPolicy" in filtered["rights"].explanation
    assert filtered["jea"].status == "skip" and "not registered" in filtered["jea"].detail

    locked = results["web03"]
    assert locked["command"].status == "fail" and locked["command"].category == "environment"
    assert locked["session"].status == "fail" and "ConstrainedLanguage" in locked["session"].detail
    assert "policy" in locked["session"].explanation

    reader = results["web05"]
    assert "Event Log Readers" in reader["session"].detail and "NOT elevated" in reader["session"].detail
    assert reader["rights"].status == "warn" and "account-locked-out" not in reader["rights"].detail

    jea_only = results["web04"]
    assert jea_only["command"].status == "ok"
    assert jea_only["session"].status == "ok" and "JEA endpoint IisFleet" in jea_only["session"].detail
    assert jea_only["jea"].status == "ok" and "in use" in jea_only["jea"].detail


def test_a_jea_host_whose_inventory_misses_jea_true_is_detected(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    generate("healthy", 1, fleet_dir)
    path = fleet_dir / "fleet.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["endpoints"] = [JEA]
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, None, fleet_dir / "inventory.yml")
        host = load_inventory(fleet_dir / "inventory.yml").select(None)[0]
        host = replace(host, winrm=replace(host.winrm, jea=False))
        (result,) = check_hosts([host])
    items = {i.name: i for i in result.items}
    assert items["command"].status == "ok"  # detected: the collector went as a function call
    assert "JEA endpoint" in items["session"].detail
