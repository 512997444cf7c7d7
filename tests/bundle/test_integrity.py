"""On-arrival integrity: a file whose bytes differ from the SHA-256 the host computed is refused, named in the
envelope's errors, and recorded in the manifest and the custody log; the rest of the collection is kept."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.bundle.integrity import refuse_damaged_blobs
from toolkit.cli import app


def _other_digest(digest: str) -> str:
    return ("1" if digest[0] == "0" else "0") + digest[1:]


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory):
    """incident-collect over real WinRM against two simulated servers; Get-IisConfig's first blob digest is
    altered in transit on web01 (the transport's answer is the protocol boundary we damage)."""
    from toolkit.inventory import load_inventory
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.scenarios import generate
    from toolkit.lab.server import LabServer
    from toolkit.playbooks import load_playbook
    from toolkit.runner import run_playbook
    from toolkit.transports import create_transport

    class DamagingTransport:
        def __init__(self, host):
            self.inner, self.host = create_transport(host), host

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def run_script(self, script, parameters, timeout):
            return self._damaged(self.inner.run_script(script, parameters, timeout=timeout))

        def run_batch(self, calls, on_result):  # several steps in one pipeline: each answer is damaged alike
            return self.inner.run_batch(calls, lambda position, outcome: on_result(position, self._damaged(outcome)))

        def _damaged(self, output):
            stdout = getattr(output, "stdout", "")
            if self.host.name == "web01" and '"collector":"Get-IisConfig"' in stdout.replace(" ", ""):
                damaged = re.sub(r'("sha256"\s*:\s*")([0-9a-f]{64})',
                                 lambda m: m.group(1) + _other_digest(m.group(2)), stdout, count=1)
                output = replace(output, stdout=damaged)
            return output

    work = tmp_path_factory.mktemp("integrity")
    generate("healthy", 2, work / "fleet")
    fleet = load_fleet(work / "fleet", port_base=0)
    with LabServer(fleet.hosts, state_dir=work / "fleet" / ".lab", ssh=False) as server:
        inventory_path = work / "fleet" / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory_path)
        hosts = load_inventory(inventory_path).select(None)
        run_playbook(load_playbook("incident-collect"), hosts, out_dir=work / "run", params={}, simulated=True,
                     transport_factory=DamagingTransport)
    return work / "run"


def test_a_damaged_file_is_refused_on_arrival_and_recorded_in_the_custody_log(lab_run: Path) -> None:
    config = json.loads((lab_run / "hosts/web01/Get-IisConfig.json").read_text(encoding="utf-8"))
    intact = json.loads((lab_run / "hosts/web02/Get-IisConfig.json").read_text(encoding="utf-8"))
    assert config["data"]["application_host_config"] is None  # the first blob is applicationHost.config's
    assert intact["data"]["application_host_config"] is not None
    [error] = [e for e in config["errors"] if e["probe"] == "integrity"]
    assert error["target"].endswith("applicationHost.config") and "sha256" in error["message"]

    collection = json.loads((lab_run / "custody.jsonl").read_text(encoding="utf-8").splitlines()[0])
    [refused] = collection["details"]["refused"]
    assert refused["host"] == "web01" and refused["collector"] == "Get-IisConfig"
    assert refused["host_path"].endswith("applicationHost.config")
    host_manifest = json.loads((lab_run / "manifests/web01.json").read_text(encoding="utf-8"))
    assert host_manifest["refused"] == [refused]
    assert json.loads((lab_run / "manifests/web02.json").read_text(encoding="utf-8"))["refused"] == []
    # what was stored is exactly what was sealed: the bundle verifies
    result = CliRunner().invoke(app, ["bundle", "verify", str(lab_run), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout


def test_refusal_drops_only_the_damaged_list_entries(lab_run: Path) -> None:
    envelope = json.loads((lab_run / "hosts/web02/Get-IisConfig.json").read_text(encoding="utf-8"))
    web_configs = envelope["data"]["web_configs"]
    assert len(web_configs) >= 2, "the healthy fleet serves several web.config files"
    damaged = copy.deepcopy(envelope)
    victim = damaged["data"]["web_configs"][1]
    victim["content"]["sha256"] = _other_digest(victim["content"]["sha256"])
    refused = refuse_damaged_blobs(damaged)
    assert [r["host_path"] for r in refused] == [web_configs[1]["path"]]
    assert damaged["data"]["web_configs"] == web_configs[:1] + web_configs[2:]
    assert damaged["data"]["application_host_config"] == envelope["data"]["application_host_config"]
    assert damaged["errors"][-1]["target"] == web_configs[1]["path"]
    untouched = copy.deepcopy(envelope)
    assert refuse_damaged_blobs(untouched) == [] and untouched == envelope


def test_a_lying_size_stays_fatal_for_the_whole_envelope(lab_run: Path) -> None:
    """Only a digest mismatch is per file: a blob that lies about its size is a hostile answer, and the
    envelope is refused as a contract failure (the hostile-fleet rule)."""
    from toolkit.errors import ContractError

    envelope = json.loads((lab_run / "hosts/web02/Get-IisConfig.json").read_text(encoding="utf-8"))
    for lie in (1 << 40, envelope["data"]["web_configs"][0]["content"]["bytes"] + 1):
        damaged = copy.deepcopy(envelope)
        damaged["data"]["web_configs"][0]["content"]["bytes"] = lie
        with pytest.raises(ContractError, match="declares"):
            refuse_damaged_blobs(damaged)
