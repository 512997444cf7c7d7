"""Host environment findings: lab hosts whose sessions cannot do everything (PowerShell 4.0, a NoLanguage
endpoint without iisfleet's functions, ConstrainedLanguage, a UAC-filtered token) are findings about the host
in the run's diagnosis and in every report format, and `hosts check` names the same findings for the same
hosts (both decide through toolkit.jea.rights).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from toolkit.diagnose import diagnose_run
from toolkit.inventory import load_inventory
from toolkit.lab.model import load_fleet, write_inventory
from toolkit.lab.scenarios import generate
from toolkit.lab.server import LabServer
from toolkit.playbooks import load_playbook
from toolkit.report import RENDERERS, build_report, render, run_hosts_of
from toolkit.rundir import load_run
from toolkit.runner import run_playbook
from toolkit.transports.check import check_hosts

#: host → (what its host.yml gets, the host findings both views must report)
HOSTS = {
    "web01": ({"powershell_version": "4.0.-1.-1"}, {"host-powershell-no-jea"}),
    "web02": ({"endpoints": [{"name": "Microsoft.PowerShell", "elevated": False}]},
              {"host-session-not-elevated", "host-security-log-unreadable"}),
    "web03": ({"endpoints": [{"name": "Microsoft.PowerShell", "language": "ConstrainedLanguage"}]},
              {"host-constrained-language"}),
    "web04": ({"endpoints": [{"name": "Microsoft.PowerShell", "language": "NoLanguage"}]},
              {"host-no-language-endpoint"}),
    "web05": ({}, set()),
}


def test_environment_findings_in_run_and_hosts_check_agree(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    generate("healthy", len(HOSTS), fleet_dir)
    for name, (values, _expected) in HOSTS.items():
        path = fleet_dir / "hosts" / name / "host.yml"
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        document.update(values)
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, None, fleet_dir / "inventory.yml")
        targets = load_inventory(fleet_dir / "inventory.yml").select(None)
        checked = {r.host: {f for i in r.items for f in i.findings} for r in check_hosts(targets)}
        run_playbook(load_playbook("triage-401"), targets, out_dir=tmp_path / "run", params={}, concurrency=5,
                     simulated=True)
    run = load_run(tmp_path / "run")
    diagnosis = diagnose_run(run)
    found: dict[str, set[str]] = {name: set() for name in HOSTS}
    for f in diagnosis.findings:
        if f.substatus == "host" and f.cause.startswith("host-") and f.cause != "host-clock-skew":
            for h in f.hosts:
                found[h].add(f.cause)
    for name, (_values, expected) in HOSTS.items():
        assert found[name] == expected, (name, found[name])
        assert checked[name] == expected, (name, checked[name])
    by_cause = {f.cause: f for f in diagnosis.findings}
    clm = by_cause["host-constrained-language"]
    assert clm.severity == "critical" and "no cause can be judged" in clm.explanation
    unelevated = by_cause["host-session-not-elevated"]
    assert "Get-IisConfig" in unelevated.explanation and "LocalAccountTokenFilterPolicy" in unelevated.fix.notes
    log = by_cause["host-security-log-unreadable"]
    assert "account-locked-out" in log.explanation and log.severity == "medium"
    assert by_cause["host-powershell-no-jea"].severity == "low"

    report = build_report(run.meta, diagnosis.to_dict(), run_hosts_of(run))
    for fmt in RENDERERS:  # every report format carries them
        text = render(report, fmt)
        for cause in ("host-constrained-language", "host-session-not-elevated", "host-no-language-endpoint"):
            assert cause in text, (fmt, cause)
    assert json.loads(render(report, "json"))
