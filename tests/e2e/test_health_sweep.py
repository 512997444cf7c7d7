"""Acceptance: a health sweep (no logs read) over the simulated fleet reports host health problems.

The seed-catalog fleet has a server whose Security log is full under CrashOnAuditFail and one whose
clock is 11 minutes ahead. Over real WinRM, health-sweep must report both as findings with a severity,
in every report format, instead of "findings: 0".
"""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.lab.demo import run_demo


def test_health_sweep_reports_host_health_findings(tmp_path: Path) -> None:
    result = run_demo(tmp_path, scenario="seed-catalog", hosts=12, playbook_name="health-sweep")
    planted = {(c["cause"], host) for host, causes in result.expected["hosts"].items() for c in causes}
    audit_hosts = {host for cause, host in planted if cause == "security-log-full"}
    skewed_hosts = {host for cause, host in planted if cause == "clock-skew"}
    assert audit_hosts and skewed_hosts, "the scenario plants both problems"
    findings = result.report["findings"]
    by_cause: dict[str, set[str]] = {}
    for f in findings:
        by_cause.setdefault(f["cause"], set()).update(f["hosts"])
        assert f["substatus"] == "host" and f["severity"] and f["evidence"], f  # no logs: health findings only
    assert by_cause.get("audit-fail-crash-risk") == audit_hosts
    assert skewed_hosts <= by_cause.get("host-clock-skew", set())
    assert result.report["summary"]["findings"] == len(findings) > 0
    for fmt, path in result.reports.items():
        text = path.read_text(encoding="utf-8")
        assert "audit-fail-crash-risk" in text and "host-clock-skew" in text, fmt
        assert "findings: 0" not in text.lower(), fmt
    severities = {f["cause"]: f["severity"] for f in json.loads(result.reports["json"].read_text())["findings"]}
    assert severities["audit-fail-crash-risk"] == "critical" and severities["host-clock-skew"] == "high"
