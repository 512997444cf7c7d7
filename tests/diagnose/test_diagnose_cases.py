"""Data-driven cause cases: tests/fixtures/diagnose/cases/*.yml (one per cause id, plus near misses).

Each case lists hosts (see diag_builders.host_from_spec), the causes that must be reported per host
(``expect``), the ones that must not (``reject``), and optional checks on level, severity, title,
evidence text, missing-evidence text, what the domain controllers answered (``directory``: an
iisfleet.directory/1 document as a run's directory.json holds it), drift items (``drift_contains``/``drift_absent``), SPN duplicates and clock outliers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from diag_builders import causes_by_host, host_from_spec
from toolkit.diagnose import diagnose
from toolkit.diagnose.rules import CAUSES
from toolkit.directory.facts import facts_from_document

CASES = sorted((Path(__file__).parents[1] / "fixtures" / "diagnose" / "cases").glob("*.yml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    hosts = {name: host_from_spec(name, spec) for name, spec in case["hosts"].items()}
    directory = facts_from_document(case["directory"], path.name) if "directory" in case else None
    result = diagnose(hosts, collected_utc=case.get("collected_utc"), directory=directory)
    found = causes_by_host(result.findings)
    for host, causes in (case.get("expect") or {}).items():
        for cause in causes:
            assert cause in found.get(host, set()), f"{path.name}: {cause} not reported on {host}: {found}"
    for host, causes in (case.get("reject") or {}).items():
        for cause in causes:
            assert cause not in found.get(host, set()), f"{path.name}: {cause} wrongly reported on {host}"
    if case.get("no_findings"):
        assert result.findings == ()
    by_cause = {f.cause: f for f in result.findings}
    for cause, level in (case.get("level") or {}).items():
        assert by_cause[cause].confidence.level == level, by_cause[cause].confidence
    for cause, severity in (case.get("severity") or {}).items():
        assert by_cause[cause].severity == severity
    for cause, text in (case.get("evidence_contains") or {}).items():
        summaries = " | ".join(e.summary for e in by_cause[cause].evidence)
        assert text in summaries, summaries
    for cause, text in (case.get("title_contains") or {}).items():
        assert text in by_cause[cause].title, by_cause[cause].title
    for cause, text in (case.get("missing_contains") or {}).items():
        assert any(text in m for m in by_cause[cause].missing_evidence), by_cause[cause].missing_evidence
    drift = {(d.site, d.farm, d.attribute, d.hosts) for d in result.drift}
    for want in case.get("drift_contains") or []:
        assert any(site == want["site"] and attr == want["attribute"] and list(hosts) == want["hosts"]
                   and want.get("farm", farm) == farm for site, farm, attr, hosts in drift), (want, drift)
    for unwanted in case.get("drift_absent") or []:
        assert not any(attr == unwanted["attribute"] and (not unwanted.get("site") or site == unwanted["site"])
                       for site, _farm, attr, _hosts in drift), (unwanted, drift)
    if "spn_duplicates" in case:
        assert [d.spn for d in result.spn_duplicates] == case["spn_duplicates"]
    if "spn_mismatches" in case:
        assert [(m.host, m.site, m.spn) for m in result.spn_mismatches] == \
            [tuple(m) for m in case["spn_mismatches"]], result.spn_mismatches
    for cause, text in (case.get("fix_contains") or {}).items():
        assert text in by_cause[cause].fix.command, by_cause[cause].fix.command
    for cause, text in (case.get("fix_lacks") or {}).items():
        assert text not in by_cause[cause].fix.command, by_cause[cause].fix.command
    if "clock_outliers" in case:
        assert [c.host for c in result.clock_outliers] == case["clock_outliers"]
    for f in result.findings:
        assert f.explanation and f.confidence.reason
        if f.cause != "unexplained":
            assert f.fix is not None and f.fix.command
        if f.cause != "unexplained" and f.substatus.startswith("401"):  # host health findings cite no log row
            assert any(e.kind == "log" and e.source and e.source.line for e in f.evidence), f.cause


def test_every_cause_id_has_a_case() -> None:
    covered = set()
    for path in CASES:
        for causes in (load(path).get("expect") or {}).values():
            covered |= set(causes)
    assert set(CAUSES) - {"application-denied"} <= covered, set(CAUSES) - covered
