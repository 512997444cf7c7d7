"""Acceptance: the whole product against the simulated fleet, compared with the lab's answer key.

The lab plants each cause on chosen hosts and writes ``expected.json``; the product has to find, over
real WinRM (NTLM + message encryption) or SSH, every planted cause on exactly those hosts, report
nothing on the healthy ones, and name the attribute that makes the odd server out in the drift scenario.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from acceptance_helpers import planted as planted_causes
from acceptance_helpers import reported as reported_causes

from toolkit.lab.demo import run_demo




@pytest.mark.parametrize("transport", ["winrm", "ssh"])
def test_seed_catalog_every_planted_cause_on_exactly_its_hosts(tmp_path: Path, transport: str) -> None:
    result = run_demo(tmp_path, scenario="seed-catalog", hosts=12, transport=transport)
    planted = planted_causes(result.expected)
    reported = reported_causes(result.report)
    assert {cause for causes in planted.values() for cause, _ in causes} >= {
        "logon-right-denied", "kerberos-spn-missing", "content-acl-denied", "ip-restriction"}
    for host, causes in sorted(planted.items()):
        assert reported.get(host, set()) == causes, f"{host}: planted {sorted(causes)}"
    assert set(reported) <= set(planted), "findings on a host the lab does not know"
    healthy = [host for host, causes in planted.items() if not causes]
    assert healthy, "the scenario must keep some healthy hosts"
    assert result.report["summary"]["hosts_ok"] == 12
    assert result.report["simulated"] is True
    for finding in result.report["findings"]:
        assert finding["evidence"], f"{finding['cause']} has no evidence"
        assert (finding.get("fix") or {}).get("command"), f"{finding['cause']} has no fix"
    html = result.reports["html"].read_text(encoding="utf-8")
    assert "SIMULATED" in html and 'data-cause="logon-right-denied"' in html


def test_drift_names_the_differing_attribute(tmp_path: Path) -> None:
    result = run_demo(tmp_path, scenario="drift", hosts=6)
    expected = result.expected["drift"]
    assert expected, "the drift scenario must declare its odd server out"
    drift = result.report["drift"]
    for item in expected:
        top = [d for d in drift if d["site"] == item["site"]]
        assert top, f"no drift reported for site {item['site']}"
        assert top[0]["attribute"] == item["attribute"]
        assert item["host"] in top[0]["hosts"]


def test_demo_command_line(tmp_path: Path) -> None:
    """The README's main command, as a user runs it."""
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "toolkit", "demo", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["schema"] == "iisfleet.report/1" and report["simulated"] is True
    assert report["findings"]
    for name in ("report.txt", "report.md", "report.html", "report.json", "findings.csv"):
        assert (out / "run" / "report" / name).is_file()
    assert (out / "run" / "run.json").is_file()
