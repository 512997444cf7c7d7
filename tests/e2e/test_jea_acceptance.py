"""Acceptance for least privilege: the product over JEA-only, ConstrainedLanguage and unelevated lab hosts.

Each host's endpoints are declared in its host.yml / fleet.yml (docs/lab-fleet.md) exactly as an admin
would write them; the lab's JEA endpoint runs only the functions of the role capability `iisfleet jea
export` writes, answers a script with Windows' ScriptsNotAllowed error and any other command with
CommandNotFoundException. The product's real code path runs end to end (inventory, WinRM transport,
runner, diagnosis, report).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from acceptance_helpers import planted as planted_causes
from acceptance_helpers import reported as reported_causes
import yaml

from toolkit.diagnose import diagnose_run
from toolkit.inventory import load_inventory
from toolkit.jea.export import ExportOptions, build_export, visible_functions
from toolkit.lab.model import load_fleet, write_inventory
from toolkit.lab.scenarios import generate
from toolkit.lab.server import LabServer
from toolkit.playbooks import load_playbook
from toolkit.report import build_report, run_hosts_of
from toolkit.rundir import load_run
from toolkit.runner import run_playbook

JEA_ENDPOINT = {"name": "IisFleet", "language": "NoLanguage", "jea": True}




def _edit_yaml(path: Path, **values: object) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    document.update(values)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _triage(fleet_dir: Path, run_dir: Path) -> tuple[dict, object, dict[str, object]]:
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        inventory_path = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory_path)
        targets = load_inventory(inventory_path).select(None)
        summary = run_playbook(load_playbook("triage-401"), targets, out_dir=run_dir, params={}, concurrency=6,
                               simulated=True)
        hosts = {name: host for name, host in server.winrm_hosts().items()}
    run = load_run(run_dir)
    report = build_report(run.meta, diagnose_run(run).to_dict(), run_hosts_of(run))
    return report, summary, hosts


def test_jea_only_fleet_finds_every_planted_cause(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    expected = generate("seed-catalog", 12, fleet_dir)
    _edit_yaml(fleet_dir / "fleet.yml", endpoints=[JEA_ENDPOINT])  # no Microsoft.PowerShell anywhere
    report, summary, lab_hosts = _triage(fleet_dir, tmp_path / "run")
    inventory_hosts = yaml.safe_load((fleet_dir / "inventory.yml").read_text(encoding="utf-8"))["hosts"]
    assert all(h["winrm"]["configuration_name"] == "IisFleet" and h["winrm"]["jea"] for h in inventory_hosts.values())

    planted, reported = planted_causes(expected), reported_causes(report)
    for host, causes in sorted(planted.items()):
        assert reported.get(host, set()) == causes, f"{host}: planted {sorted(causes)}"
    assert {h.status for h in summary.hosts} == {"ok"}

    # what the endpoints were asked to run: only functions of the exported role capability, never a script
    visible = set(visible_functions(build_export(ExportOptions(group="CONTOSO\\x"))))
    called = [call for host in lab_hosts.values() for session in host.endpoint_sessions for call in session.calls]
    assert called, "the JEA endpoints saw no call at all"
    assert "<script>" not in called
    assert set(called) <= visible | {"Get-Command"}
    assert {"Get-IisW3CLog", "Get-IisConfig", "Get-AuthEventLog"} <= set(called)


def test_constrained_language_and_unelevated_hosts_fail_clearly_while_the_rest_complete(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    expected = generate("seed-catalog", 12, fleet_dir)
    hosts = sorted(expected["hosts"])
    # two hosts without planted causes: a cause planted elsewhere may rest on their evidence too (a duplicate SPN
    # is found across hosts), and what they cannot deliver is exactly what this test is about
    clm, unelevated = [h for h in hosts if not expected["hosts"][h]][-2:]
    _edit_yaml(fleet_dir / "hosts" / clm / "host.yml",
               endpoints=[{"name": "Microsoft.PowerShell", "language": "ConstrainedLanguage"}])
    _edit_yaml(fleet_dir / "hosts" / unelevated / "host.yml",
               endpoints=[{"name": "Microsoft.PowerShell", "elevated": False}])
    report, summary, _ = _triage(fleet_dir, tmp_path / "run")
    by_host = {h.host: h for h in summary.hosts}

    clm_result = by_host[clm]
    assert clm_result.status == "failed" and clm_result.error.category == "environment"
    assert "ConstrainedLanguage" in clm_result.error.message
    assert "JEA endpoint" in clm_result.error.explanation and "policy" in clm_result.error.explanation

    low = by_host[unelevated]
    assert low.error is not None and low.error.category == "environment"
    assert "not-elevated" in low.error.message
    assert "Administrators" in low.error.explanation and "LocalAccountTokenFilterPolicy" in low.error.explanation
    assert low.status == "partial"  # what the session could read still arrived
    ok_steps = {s.collector for s in low.steps if s.status == "ok"}
    assert {"Get-HostFact", "Get-IisSpn"} <= ok_steps

    planted, reported = planted_causes(expected), reported_causes(report)
    for host in (h for h in hosts if h not in (clm, unelevated)):
        assert by_host[host].status == "ok", host
        assert reported.get(host, set()) == planted[host], host
    # the run directory keeps the categorised error for `iisfleet report`
    record = json.loads((tmp_path / "run" / "hosts" / clm / "host.json").read_text(encoding="utf-8"))
    assert record["error"]["category"] == "environment"


@pytest.mark.parametrize("jea_option", [True, None])
def test_no_script_is_ever_sent_to_a_jea_endpoint(tmp_path: Path, monkeypatch, jea_option) -> None:
    """With `jea: true`, and with the endpoint detected from a custom configuration_name, pypsrp's add_script
    is never called; the lab endpoint, which would answer ScriptsNotAllowed, confirms it saw none."""
    from dataclasses import replace

    from pypsrp.powershell import PowerShell

    from toolkit.collectors import load_catalog
    from toolkit.transports import create_transport

    fleet_dir = tmp_path / "fleet"
    generate("healthy", 1, fleet_dir)
    _edit_yaml(fleet_dir / "fleet.yml", endpoints=[JEA_ENDPOINT])
    sent_scripts: list[str] = []
    real_add_script = PowerShell.add_script
    monkeypatch.setattr(PowerShell, "add_script",
                        lambda self, script, *a, **k: sent_scripts.append(script) or real_add_script(self, script, *a, **k))
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, None, fleet_dir / "inventory.yml")
        host = load_inventory(fleet_dir / "inventory.yml").select(None)[0]
        if jea_option is None:
            host = replace(host, winrm=replace(host.winrm, jea=False))
        transport = create_transport(host)
        transport.open()
        try:
            catalog = load_catalog()
            fact = transport.run_script(catalog["Get-HostFact"].script, {}, timeout=30)
            logs = transport.run_script(catalog["Get-IisW3CLog"].script, {"MaxFiles": 3}, timeout=60)
        finally:
            transport.close()
        session_calls = [c for h in server.winrm_hosts().values() for s in h.endpoint_sessions for c in s.calls]
    assert transport.jea is True
    assert sent_scripts == []
    assert json.loads(fact.stdout)["collector"] == "Get-HostFact" and not fact.errors
    # Get-IisW3CLog streams: one envelope part per line (docs/contracts.md 1.4).
    assert {json.loads(part)["collector"] for part in logs.stdout.splitlines()} == {"Get-IisW3CLog"}
    assert "<script>" not in session_calls and "Get-IisW3CLog" in session_calls


def test_a_script_sent_to_a_nolanguage_endpoint_is_a_categorised_error(tmp_path: Path) -> None:
    """An inventory that names a JEA endpoint but is wrongly marked `jea: false` and not detected (the
    detection is skipped here) gets Windows' ScriptsNotAllowed, reported as an environment error with the fix."""
    from dataclasses import replace

    from toolkit.collectors import load_catalog
    from toolkit.errors import HostError
    from toolkit.transports.winrm import WinRMTransport

    fleet_dir = tmp_path / "fleet"
    generate("healthy", 1, fleet_dir)
    _edit_yaml(fleet_dir / "fleet.yml", endpoints=[JEA_ENDPOINT])
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, None, fleet_dir / "inventory.yml")
        host = load_inventory(fleet_dir / "inventory.yml").select(None)[0]
        transport = WinRMTransport(replace(host, winrm=replace(host.winrm, jea=False)))
        transport._endpoint_has_iisfleet_functions = lambda: False  # type: ignore[method-assign]
        transport.open()
        try:
            with pytest.raises(HostError) as caught:
                transport.run_script(load_catalog()["Get-HostFact"].script, {}, timeout=30)
        finally:
            transport.close()
    assert caught.value.category == "environment"
    assert "ScriptsNotAllowed" in caught.value.message and "jea: true" in (caught.value.explanation or "")
