"""`iisfleet run triage-401` over a generated lab fleet (LAB-MODEL's host models), over WinRM and SSH."""

from __future__ import annotations

import importlib
import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.rundir import load_run

model = importlib.import_module("toolkit.lab.model")
scenarios = importlib.import_module("toolkit.lab.scenarios")


@pytest.mark.parametrize("transport", ["winrm", "ssh"])
def test_triage_playbook_sweeps_a_generated_fleet(tmp_path, transport) -> None:
    from toolkit.lab.server import LabServer

    scenarios.generate("healthy", 2, tmp_path / "fleet")
    fleet = model.load_fleet(tmp_path / "fleet")
    specs = [(replace(spec, http_port=0, https_port=0, ssh_port=0), backend) for spec, backend in fleet.hosts]
    with LabServer(specs, state_dir=tmp_path / "lab", ssh=transport == "ssh") as lab:
        inventory = model.write_inventory(fleet, lab.endpoints(), lab.ca_cert_path, lab.known_hosts_path,
                                          tmp_path / "inventory.yml", transport=transport)
        result = CliRunner().invoke(app, ["run", "triage-401", "-i", str(inventory), "--out", str(tmp_path / "run"),
                                          "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"]["ok"] == len(specs)
    run = load_run(tmp_path / "run")
    assert run.meta["playbook"] == "triage-401" and run.meta["status"] == "complete"
    for record in run.hosts.values():
        assert record.transport == transport
        ran = {s["collector"] for s in record.steps if s["status"] == "ok"}
        assert ran == set(record.envelopes)
        assert {"Get-HostFact", "Get-IisConfig", "Get-IisW3CLog", "Get-LocalUserRight"} <= ran
