"""End to end without network: generate a lab fleet, answer every bundled collector through each host's
backend directly (the same answer the lab's WinRM/SSH servers would send), validate the envelopes,
diagnose, and compare with the fleet's answer key (expected.json, docs/contracts.md §5).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.collectors import load_catalog
from toolkit.contract import validate_envelope
from toolkit.diagnose import Diagnosis, diagnose
from toolkit.diagnose.evidence import HostEvidence, build_host_evidence
from toolkit.lab.model import load_fleet
from toolkit.lab.scenarios import generate


def collect(fleet_dir: Path) -> dict[str, HostEvidence]:
    fleet = load_fleet(fleet_dir)
    catalog = load_catalog()
    hosts = {}
    for spec, backend in fleet.hosts:
        envelopes = {}
        for cid, collector in sorted(catalog.items()):
            answer = backend.answer(collector.script, collector.bind({}))
            assert answer.error is None, f"{spec.name} {cid}: {answer.error}"
            envelopes[cid] = validate_envelope("\n".join(answer.output), collector=collector, host=spec.name)
        hosts[spec.name] = build_host_evidence(spec.name, envelopes)
    return hosts


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[tuple[str, int], tuple[dict, Diagnosis]] = {}

    def run(scenario: str, seed: int = 0) -> tuple[dict, Diagnosis]:
        if (scenario, seed) not in cache:
            out = tmp_path_factory.mktemp(f"{scenario}-{seed}") / "fleet"
            expected = generate(scenario, None, out, seed=seed)
            cache[(scenario, seed)] = (expected, diagnose(collect(out)))
        return cache[(scenario, seed)]

    return run


def reported(diagnosis: Diagnosis) -> dict[str, set[tuple[str, str, str]]]:
    """The 401 causes and HTTPS certificate problems per host (the lab plants both; other host health findings
    are checked apart)."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for f in diagnosis.findings:
        if not f.substatus.startswith("401") and not f.cause.startswith("certificate-"):
            continue
        for host in f.hosts:
            out.setdefault(host, set()).add((f.cause, f.site, f.substatus))
    return out


# Seeds 1 and 3 once showed an auth-protocol-mismatch the answer key lacks (web09 Intranet, web04 Extranet):
# every seed's fleet must match its own key, not only seed 0's.
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_seed_catalog_every_planted_cause_on_exactly_its_hosts(lab, seed: int) -> None:
    expected, diagnosis = lab("seed-catalog", seed)
    found = reported(diagnosis)
    planted_causes = set()
    for host, entries in expected["hosts"].items():
        planted = {(e["cause"], e["site"], e["substatus"]) for e in entries}
        planted_causes |= {e["cause"] for e in entries}
        assert found.get(host, set()) == planted, f"{host}: planted {sorted(planted)}, reported {sorted(found.get(host, set()))}"
    # every cause id of the catalog was planted somewhere, and nothing is left unexplained
    assert len(planted_causes) == 23
    assert all(f.cause != "unexplained" for f in diagnosis.findings)


def test_seed_catalog_findings_carry_evidence_and_fix(lab) -> None:
    _, diagnosis = lab("seed-catalog")
    for f in diagnosis.findings:
        if not f.substatus.startswith("401"):
            continue  # host health findings: tests/diagnose/test_health_findings.py
        kinds = {e.kind for e in f.evidence}
        assert "log" in kinds, f.cause
        assert len(kinds) >= 2 or f.cause == "ip-restriction", (f.cause, kinds)
        assert f.fix is not None and f.fix.command
        assert f.confidence.level in ("high", "medium"), (f.cause, f.confidence)


def test_seed_catalog_fleet_views(lab) -> None:
    expected, diagnosis = lab("seed-catalog")
    for dup in expected["spn_duplicates"]:
        match = [d for d in diagnosis.spn_duplicates if d.spn.lower() == dup["spn"].lower()]
        assert match and len(match[0].accounts) == 2
    skewed = [h for h, entries in expected["hosts"].items() if any(e["cause"] == "clock-skew" for e in entries)]
    assert [c.host for c in diagnosis.clock_outliers] == skewed
    failing = {(c.host, c.site) for c in diagnosis.matrix if c.terminal_401}
    for host, entries in expected["hosts"].items():
        for e in entries:
            if e["substatus"] == "host":
                continue  # a certificate problem logs no 401
            assert (host, e["site"]) in failing
            cell = next(c for c in diagnosis.matrix if c.host == host and c.site == e["site"])
            assert cell.leading_cause is not None


def test_drift_scenario_names_the_differing_attribute(lab) -> None:
    expected, diagnosis = lab("drift")
    assert expected["drift"]
    for want in expected["drift"]:
        top = [d for d in diagnosis.drift if d.site == want["site"]][0]
        assert (top.attribute, top.hosts, top.score) == (want["attribute"], (want["host"],), 1.0)
        assert want["host"] in top.summary and want["attribute"] in top.summary
    found = reported(diagnosis)
    for host, entries in expected["hosts"].items():
        assert found.get(host, set()) == {(e["cause"], e["site"], e["substatus"]) for e in entries}


def test_healthy_fleet_has_no_findings(lab) -> None:
    _, diagnosis = lab("healthy")
    assert diagnosis.findings == ()
    assert all(c.terminal_401 == 0 for c in diagnosis.matrix)


def test_run_directory_round_trip_gives_the_same_diagnosis(tmp_path: Path) -> None:
    """Envelopes written as a run directory (docs/contracts.md §2) and read back with RUNNER's load_run
    diagnose exactly like the in-memory evidence."""
    from toolkit.diagnose import diagnose_run
    from toolkit.rundir import RunDirWriter, load_run, write_json_atomic

    fleet_dir = tmp_path / "fleet"
    generate("drift", 4, fleet_dir, seed=1)
    fleet = load_fleet(fleet_dir)
    catalog = load_catalog()
    writer = RunDirWriter(tmp_path / "run")
    names = [spec.name for spec, _ in fleet.hosts]
    evidence = {}
    for spec, backend in fleet.hosts:
        envelopes = {}
        for cid, collector in sorted(catalog.items()):
            answer = backend.answer(collector.script, collector.bind({}))
            envelopes[cid] = validate_envelope("\n".join(answer.output), collector=collector, host=spec.name)
            writer.write_envelope(spec.name, cid, envelopes[cid])
        write_json_atomic(writer.host_path(spec.name) / "host.json",
                          {"schema": "iisfleet.host/1", "host": spec.name, "address": spec.address,
                           "transport": "winrm", "status": "ok", "error": None, "steps": [], "finished": True})
        evidence[spec.name] = build_host_evidence(spec.name, envelopes)
    writer.write_meta({"playbook": "triage-401", "parameters": {}, "inventory": "lab", "hosts": names,
                       "started_utc": "2026-11-24T12:00:00Z", "finished_utc": "2026-11-24T12:01:00Z",
                       "status": "complete", "simulated": True})
    writer.close()
    from_run = diagnose_run(load_run(tmp_path / "run")).to_dict()
    assert from_run == diagnose(evidence).to_dict()
    assert from_run["drift"][0]["attribute"] == "anonymous.user_name"
    assert len(from_run["findings"]) == 1
