"""Host health problems are findings with a severity, in every report format (docs/diagnosis.md).

The fleets are data files (tests/fixtures/diagnose/health/*.yml, the case format of
tests/fixtures/diagnose/cases/): a health sweep reads no logs, so these hosts logged no 401, and the
report must still not say "findings: 0".
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from diag_builders import causes_by_host, host_from_spec
from toolkit.diagnose import diagnose
from toolkit.report import RENDERERS, build_report, render

FLEETS = sorted((Path(__file__).parents[1] / "fixtures" / "diagnose" / "health").glob("*.yml"))


def _diagnose(path: Path):
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    hosts = {name: host_from_spec(name, spec) for name, spec in case["hosts"].items()}
    return case, diagnose(hosts, collected_utc=case.get("collected_utc"))


@pytest.mark.parametrize("path", FLEETS, ids=[p.stem for p in FLEETS])
def test_health_problems_are_findings(path: Path) -> None:
    case, result = _diagnose(path)
    found = causes_by_host(result.findings)
    for host, causes in case["expect"].items():
        assert found.get(host, set()) == set(causes), (host, found.get(host))
    by_cause = {f.cause: f for f in result.findings}
    for cause, severity in (case.get("severity") or {}).items():
        assert by_cause[cause].severity == severity
    for f in result.findings:
        assert f.substatus == "host" and f.terminal_401 == 0
        assert f.evidence and f.fix is not None and f.fix.command and f.explanation


@pytest.mark.parametrize("path", FLEETS, ids=[p.stem for p in FLEETS])
def test_every_report_format_shows_them(path: Path) -> None:
    case, result = _diagnose(path)
    meta = {"schema": "iisfleet.run/1", "playbook": "health-sweep", "hosts": sorted(case["hosts"]),
            "status": "complete", "started_utc": "2026-11-24T12:00:00Z", "finished_utc": "2026-11-24T12:01:00Z"}
    report = build_report(meta, result.to_dict(), {name: {"address": name, "error": None} for name in case["hosts"]})
    expected = sorted({c for causes in case["expect"].values() for c in causes})
    assert report["summary"]["findings"] == len(expected) > 0
    for fmt in RENDERERS:
        text = render(report, fmt)
        assert "findings: 0" not in text.lower()
        for cause in expected:
            assert cause in text, (fmt, cause)
    document = json.loads(render(report, "json"))
    assert sorted(f["cause"] for f in document["findings"]) == expected
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert sorted(r["cause"] for r in rows) == expected and all(r["severity"] for r in rows)


def test_a_401_finding_for_the_same_problem_is_not_repeated() -> None:
    """security-log-full (from the host's 401.1s) already says what audit-fail-crash-risk would."""
    spec = {"sites": [{"name": "Shop"}], "crash_on_audit_fail": 2,
            "log": [{"site": "Shop", "sub": 1, "win32": 1326, "terminal": 20}]}
    causes = {f.cause for f in diagnose({"web01": host_from_spec("web01", spec)}).findings}
    assert "security-log-full" in causes and "audit-fail-crash-risk" not in causes
