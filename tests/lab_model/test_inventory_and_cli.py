"""The inventory a served lab writes, and the `iisfleet lab` commands."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.lab.model import DEMO_PASSWORD, DEMO_USERNAME, LabFleet, write_inventory


def test_written_inventory_is_simulated_and_loads(seed_fleet: LabFleet, tmp_path: Path) -> None:
    endpoints = {spec.name: {"address": spec.address, "http_port": 5985, "https_port": 5986, "ssh_port": 22}
                 for spec, _ in seed_fleet.hosts}
    endpoints["web02"] = {"address": "127.77.0.12", "http_port": 40001, "https_port": 40002, "ssh_port": 40003}
    path = write_inventory(seed_fleet, endpoints, tmp_path / "ca.pem", tmp_path / "known_hosts", tmp_path / "inventory.yml")
    document = yaml.safe_load(path.read_text())
    assert document["simulated"] is True
    assert document["defaults"]["winrm"]["scheme"] == "http" and document["defaults"]["winrm"]["auth"] == "negotiate"
    assert document["defaults"]["winrm"]["ca_bundle"] == str(tmp_path / "ca.pem")
    assert document["defaults"]["ssh"]["known_hosts"] == str(tmp_path / "known_hosts")
    assert document["credentials"]["lab"] == {"username": DEMO_USERNAME, "password": {"plaintext": DEMO_PASSWORD}}
    assert "winrm" not in document["hosts"]["web01"]  # default port: no override
    assert document["hosts"]["web02"]["winrm"] == {"port": 40001} and document["hosts"]["web02"]["ssh"] == {"port": 40003}
    inventory = importlib.import_module("toolkit.inventory")
    hosts = {h.name: h for h in inventory.load_inventory(path).select(None)}
    assert set(hosts) == {spec.name for spec, _ in seed_fleet.hosts}
    assert hosts["web02"].winrm.effective_port == 40001 and hosts["web02"].address == "127.77.0.12"
    assert hosts["web01"].credential.password.reveal() == DEMO_PASSWORD


def test_cli_generate_writes_a_fleet_and_reports_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["lab", "generate", str(tmp_path / "f"), "--scenario", "drift", "--hosts", "3",
                                 "--seed", "2", "--fault", "web01=latency"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f" / "expected.json").is_file() and "SIMULATED" in result.output
    bad = runner.invoke(app, ["lab", "generate", str(tmp_path / "g"), "--scenario", "nope"])
    assert bad.exit_code == 2 and "unknown scenario" in bad.output
    bad = runner.invoke(app, ["lab", "generate", str(tmp_path / "h"), "--fault", "web01"])
    assert bad.exit_code == 2 and "HOST=FAULT" in bad.output



def test_cli_generate_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("not a folder\n")
    for extra in ([], ["--force"]):  # --force replaces a folder's contents, never a file
        result = CliRunner().invoke(app, ["lab", "generate", str(target), *extra])
        assert result.exit_code == 2 and not isinstance(result.exception, OSError), result.output
        assert f"{target}isafile,notafolder" in "".join(result.output.split())  # rich folds long paths
    under = CliRunner().invoke(app, ["lab", "generate", str(target / "fleet")])  # a parent is a file
    assert under.exit_code == 2 and isinstance(under.exception, SystemExit), under.output
    assert f"{target / 'fleet'}:cannotwritethefleet" in "".join(under.output.split())
    assert target.read_text() == "not a folder\n"


def test_cli_serve_writes_the_inventory_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    importlib.import_module("toolkit.lab.server")
    runner = CliRunner()
    assert runner.invoke(app, ["lab", "generate", str(tmp_path), "--scenario", "healthy", "--hosts", "2"]).exit_code == 0
    process = subprocess.Popen([sys.executable, "-m", "toolkit", "lab", "serve", str(tmp_path), "--no-ssh",
                                "--port-base", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 20
        lines = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        assert any("Inventory:" in line for line in lines), lines
        document = yaml.safe_load((tmp_path / "inventory.yml").read_text())
        assert document["simulated"] and set(document["hosts"]) == {"web01", "web02"}
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=15)
        assert process.returncode == 0 and "lab stopped" in rest
    finally:
        if process.poll() is None:
            process.kill()
