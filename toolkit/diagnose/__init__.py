"""Diagnosis: typed evidence in, findings out (pure functions; nothing here touches a host or prints).

Entry points:

- :func:`diagnose` ``(hosts: Mapping[str, HostEvidence], *, collected_utc=None) -> Diagnosis``
- :func:`diagnose_run` ``(run) -> Diagnosis`` for RUNNER's ``RunData`` (duck-typed: ``.meta`` and
  ``.hosts[name].envelopes/.status/.error``)
- :func:`toolkit.diagnose.evidence.build_host_evidence` to assemble one host's evidence from envelopes.

How it works, per host and site: the terminal 401s (handshake rows never count) are grouped by
substatus; each substatus has an ordered list of rules (``toolkit.diagnose.rules.RULES_BY_SUBSTATUS``),
one per cause id; each rule explains some groups and returns findings; groups nobody explains become
an explicit ``unexplained`` finding with low confidence that names the missing evidence. Findings for
the same cause, site, scope and substatus on several hosts are merged. Then the fleet views: drift,
SPN duplicates and mismatches, clock outliers, and the server × site matrix.

``Diagnosis.to_dict()`` is the versioned document ``iisfleet.diagnosis/1`` (docs/diagnosis.md):
sorted, no wall-clock time, the same input always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import replace
from collections.abc import Mapping
from typing import Any

from toolkit.diagnose.evidence import (
    HANDSHAKE_WIN32,
    HostEvidence,
    LogGroup,
    build_host_evidence,
    evidence_from_run,
    terminal_groups,
)
from toolkit.diagnose.fleet import (
    attach_drift,
    clock_offsets,
    clock_outliers,
    directory_notes,
    directory_spn_owners,
    drift,
    matrix,
    merge_findings,
    parse_time,
    spn_duplicates,
    spn_mismatches,
    spn_owners,
)
from toolkit.diagnose.environment import environment_findings
from toolkit.diagnose.health import health_findings
from toolkit.diagnose.model import SCHEMA, Confidence, Diagnosis, DriftItem, Finding, HostStatus, lower_level
from toolkit.diagnose.rules import RULES_BY_SUBSTATUS, RuleContext, unexplained
from toolkit.diagnose.rules.base import EVIDENCE_NAMES, FleetContext

__all__ = ["SCHEMA", "Diagnosis", "DriftItem", "Finding", "HostEvidence", "build_host_evidence", "diagnose",
           "diagnose_host", "diagnose_run"]


def diagnose_host(host: HostEvidence, fleet: FleetContext) -> list[Finding]:
    """Findings for one host, before merging across hosts."""
    by_site_sub: dict[tuple[str, int], list[LogGroup]] = defaultdict(list)
    for g in terminal_groups(host):
        by_site_sub[(g.site, g.substatus)].append(g)
    findings: list[Finding] = []
    for (site, substatus), groups in sorted(by_site_sub.items()):
        groups.sort(key=lambda g: (-g.terminal, g.win32))
        explained: set[tuple[int, int]] = set()
        failed_rules: list[str] = []
        for rule in RULES_BY_SUBSTATUS.get(substatus, ()):
            remaining = [g for g in groups if (g.substatus, g.win32) not in explained]
            ctx = RuleContext(host=host, site=site, substatus=substatus, groups=remaining, all_groups=groups,
                              fleet=fleet)
            try:
                produced = rule(ctx)
            except Exception as exc:  # noqa: BLE001 - odd host data must not stop the fleet's diagnosis
                failed_rules.append(f"rule {rule.__name__} could not evaluate this host's evidence: "
                                    f"{type(exc).__name__}: {exc}"[:300])
                continue
            for finding in produced:
                findings.append(_legs_only_lowered(finding))
                explained |= set(finding.explains)
        left = [g for g in groups if (g.substatus, g.win32) not in explained]
        if left:
            findings.append(unexplained(RuleContext(host=host, site=site, substatus=substatus, groups=left,
                                                    all_groups=groups, fleet=fleet), notes=failed_rules))
    return findings


def _legs_only_lowered(finding: Finding) -> Finding:
    """A finding that rests only on terminal SEC_E_NO_CREDENTIALS legs is less sure: the same row is left
    by a client that gave up after the challenge, whatever the cause."""
    if not finding.explains or any(win32 != HANDSHAKE_WIN32 for _sub, win32 in finding.explains):
        return finding
    level = lower_level(finding.confidence.level, 1)
    reason = (f"{finding.confidence.reason}; lowered because only 401.1 SEC_E_NO_CREDENTIALS legs failed, "
              f"which a client that gave up after the challenge also leaves")
    return replace(finding, confidence=Confidence(level, reason))


def diagnose(hosts: Mapping[str, HostEvidence], *, collected_utc: str | dt.datetime | None = None,
             directory: Any = None, as_of_utc: str | dt.datetime | None = None) -> Diagnosis:
    """Diagnose a fleet. ``collected_utc`` is the controller's collection time (the clock reference for
    fleets of fewer than three hosts; larger fleets use their median clock). ``as_of_utc`` is the run's
    reference time, the "now" its log window was computed from (run.json ``reference_utc``): dates such
    as certificate expiry are judged as of it, so a run resumed later, or repeated with
    ``--reference-time``, judges them the same; without it, the collection time. ``directory`` is what the
    domain controllers answered (``toolkit.directory.facts.DirectoryFacts``): SPN holders, account state
    and nested domain groups from LDAP then take precedence over what the web servers reported."""
    from toolkit.directory.facts import with_directory

    hosts = {name: with_directory(h, directory) for name, h in hosts.items()}
    owners, seen_by = spn_owners(hosts)
    owners, seen_by = directory_spn_owners(hosts, owners, seen_by, directory)
    offsets, label = clock_offsets(hosts, collected_utc)
    fleet = FleetContext(spn_owners=owners, clock_offsets=offsets, clock_reference=label, directory=directory)
    per_host = {name: diagnose_host(hosts[name], fleet) for name in sorted(hosts)}
    failing: dict[tuple[str, str], int] = defaultdict(int)
    for name, host in hosts.items():
        for g in terminal_groups(host):
            failing[(name, g.site)] += g.terminal
    drift_items = drift(hosts, failing)
    findings = merge_findings(f for name in sorted(per_host) for f in per_host[name])
    findings = attach_drift(findings, drift_items)
    duplicates, mismatches = spn_duplicates(owners, seen_by), spn_mismatches(hosts, owners)
    as_of = as_of_utc or collected_utc
    as_of = as_of if isinstance(as_of, dt.datetime) else parse_time(as_of)
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.timezone.utc)
    findings += health_findings(hosts, offsets, label, duplicates, mismatches, findings, as_of)
    findings += environment_findings(hosts)
    statuses = tuple(
        HostStatus(host=name, status=h.status, error=h.error, requests=h.log.requests,
                   terminal_401=sum(g.terminal for g in terminal_groups(h)),
                   handshake_401=h.log.handshake_401,
                   missing_evidence=tuple(f"{EVIDENCE_NAMES.get(k, k)}: {v}" for k, v in sorted(h.missing.items())
                                          if k not in h.not_needed),
                   terminal_by_hour=tuple(sorted((str(k), int(v)) for k, v in h.log.by_hour.items())),
                   shared_configuration=h.shared_config)
        for name, h in sorted(hosts.items()))
    return Diagnosis(
        findings=tuple(sorted(findings, key=Finding.sort_key)), drift=tuple(drift_items),
        matrix=tuple(matrix(hosts, per_host)), clock_outliers=tuple(clock_outliers(hosts, offsets, label)),
        spn_duplicates=tuple(duplicates), spn_mismatches=tuple(mismatches),
        hosts=statuses, evidence_notes=tuple(directory_notes(findings, directory, hosts)))


def diagnose_run(run: Any) -> Diagnosis:
    """Diagnose a loaded run directory (RUNNER's ``RunData``, duck-typed)."""
    from toolkit.directory.facts import load_directory, with_shared_configuration

    meta = getattr(run, "meta", {}) or {}
    collected = meta.get("finished_utc") or meta.get("started_utc")
    path = getattr(run, "path", None)
    directory = load_directory(path) if path is not None else None
    run = with_shared_configuration(run, directory)
    return diagnose(evidence_from_run(run), collected_utc=collected, directory=directory,
                    as_of_utc=meta.get("reference_utc"))
