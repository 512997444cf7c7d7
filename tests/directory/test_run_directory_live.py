"""A run directory gets its directory evidence and the report says where the domain facts came from.

The host's envelopes are the collectors' own contract samples (ps_scripts/*.yml ``output.sample``); the
directory step runs against the real Samba AD DC (marker ``samba``), exactly as ``iisfleet run`` calls it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from toolkit.directory import collect_for_run
from toolkit.directory.config import DirectoryConfig
from toolkit.models import Credential
from toolkit.rundir import RunDirWriter, utc_now
from toolkit.secrets import Secret

pytestmark = pytest.mark.samba
PASSWORD = "Lab!Passw0rd-1"
SCRIPTS = Path(__file__).parents[2] / "ps_scripts"


def sample_run(path: Path) -> Path:
    writer = RunDirWriter(path)
    writer.write_meta({"playbook": "triage-401", "parameters": {}, "inventory": "inv.yml", "started_utc": utc_now(),
                       "finished_utc": utc_now(), "status": "complete", "hosts": ["web01"], "simulated": False})
    for sidecar in sorted(SCRIPTS.glob("*.yml")):
        contract = yaml.safe_load(sidecar.read_text())
        sample = (contract.get("output") or {}).get("sample")
        if isinstance(sample, dict):
            writer.write_envelope("web01", contract["name"], sample)
    writer.close()
    return path


def use_shared_configuration(run: Path, folder: str) -> None:
    """Make the run's host report that redirection.config points IIS at ``folder``."""
    envelope_path = run / "hosts" / "web01" / "Get-IisConfig.json"
    envelope = json.loads(envelope_path.read_text())
    envelope["data"]["shared_configuration"] = {"enabled": True, "path": folder}
    envelope_path.write_text(json.dumps(envelope))


def test_directory_evidence_in_the_run_and_the_report(lab_domain, tmp_path) -> None:
    from toolkit.report import write_reports

    run = sample_run(tmp_path / "run")
    config = DirectoryConfig(dcs=(lab_domain.ip,), auth="ntlm", ca_bundle=lab_domain.ca, tls_name=lab_domain.dc_fqdn)
    document = collect_for_run(run, config, Credential(name="t", username="CONTOSO\\alice", password=Secret(PASSWORD)))
    saved = json.loads((run / "directory.json").read_text())
    assert saved["schema"] == "iisfleet.directory/1" and saved["dc"] == document["dc"]
    asked = " ".join(q["filter"] for q in saved["queries"])
    assert "servicePrincipalName=HTTP/" in asked and "sAMAccountName=" in asked
    write_reports(run)
    text = (run / "report" / "report.txt").read_text() if (run / "report" / "report.txt").exists() \
        else next((run / "report").glob("*.txt")).read_text()
    assert f"Domain facts read over LDAP {lab_domain.ip}:636" in text
    for file in run.rglob("*"):
        if file.is_file():
            assert PASSWORD not in file.read_text(errors="replace"), file


def test_shared_configuration_read_on_the_file_server(lab_domain, tmp_path) -> None:
    """redirection.config points IIS at a share: the controller reads that applicationHost.config over SMB
    and the diagnosis works from it (no "shared configuration not read" warning, citations on the UNC)."""
    from toolkit.diagnose import diagnose_run
    from toolkit.diagnose.evidence import evidence_from_run
    from toolkit.directory.facts import load_directory, with_shared_configuration
    from toolkit.rundir import load_run

    run = sample_run(tmp_path / "run")
    folder = f"\\\\{lab_domain.ip}\\content\\iisconfig"
    use_shared_configuration(run, folder)
    before = diagnose_run(load_run(run))
    assert before.hosts[0].shared_configuration == folder  # the report warns: the config in force is unread

    config = DirectoryConfig(dcs=(lab_domain.ip,), auth="ntlm", ca_bundle=lab_domain.ca, tls_name=lab_domain.dc_fqdn)
    document = collect_for_run(run, config, Credential(name="t", username="CONTOSO\\alice", password=Secret(PASSWORD)))
    assert [(c["file"], c["hosts"]) for c in document["shared_configs"]] == [(folder + "\\applicationHost.config",
                                                                             ["web01"])]
    loaded = load_run(run)
    hosts = evidence_from_run(with_shared_configuration(loaded, load_directory(run)))
    assert [s.name for s in hosts["web01"].config.sites] == ["Farm"]
    assert "shared-config" not in hosts["web01"].missing
    after = diagnose_run(loaded)
    assert after.hosts[0].shared_configuration is None
    assert any("read from the shared" in n and folder in n for n in after.evidence_notes)
