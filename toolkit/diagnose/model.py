"""The records the diagnosis produces (docs/contracts.md §4, schema ``iisfleet.diagnosis/1``).

Everything here is a frozen dataclass with a ``to_dict()`` that is deterministic: lists are sorted
by content, never by discovery order, and no wall-clock time is ever added.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Severity = Literal["critical", "high", "medium", "low", "info"]
Level = Literal["high", "medium", "low"]
EvidenceKind = Literal["log", "config", "event", "right", "acl", "spn", "directory", "freb", "certificate", "host",
                       "drift"]

#: Most severe first; the report's ``--fail-on`` compares against this order.
SEVERITY_ORDER: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
LEVEL_ORDER: tuple[str, ...] = ("high", "medium", "low")
#: Evidence is listed in this order: what happened, then why.
KIND_ORDER: tuple[str, ...] = ("log", "freb", "event", "config", "right", "acl", "spn", "directory", "certificate",
                                "host", "drift")


def severity_rank(severity: str) -> int:
    """0 for critical ... 4 for info (unknown values sort last)."""
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def lower_level(level: str, steps: int = 1) -> Level:
    """The confidence level ``steps`` notches below ``level`` (never below low)."""
    index = min(LEVEL_ORDER.index(level) + steps, len(LEVEL_ORDER) - 1)
    return LEVEL_ORDER[index]  # type: ignore[return-value]


@dataclass(frozen=True)
class EvidenceSource:
    """Where an evidence item can be checked: a file (and line or config element) or an event record."""

    file: str | None = None
    line: int | None = None
    element: str | None = None
    record_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("file", self.file), ("line", self.line), ("element", self.element),
                                  ("record_id", self.record_id)) if v is not None}


@dataclass(frozen=True)
class EvidenceItem:
    kind: EvidenceKind
    host: str
    summary: str
    source: EvidenceSource | None = None
    #: order among items of the same host and kind: 0 summary line, 1 cited rows/records, 2 "and more"
    rank: int = field(default=1, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "host": self.host, "summary": self.summary}
        if self.source is not None and self.source.to_dict():
            out["source"] = self.source.to_dict()
        return out

    def sort_key(self) -> tuple[Any, ...]:
        src = self.source or EvidenceSource()
        kind = KIND_ORDER.index(self.kind) if self.kind in KIND_ORDER else len(KIND_ORDER)
        return (self.host, kind, self.rank, src.file or "", src.line or 0, src.record_id or 0, self.summary)


@dataclass(frozen=True)
class Confidence:
    level: Level
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "reason": self.reason}


@dataclass(frozen=True)
class Fix:
    """A command for the admin. iisfleet never runs it."""

    command: str
    shell: str = "powershell"
    notes: str = "iisfleet never runs this; review it before use."

    def to_dict(self) -> dict[str, str]:
        return {"command": self.command, "shell": self.shell, "notes": self.notes}


@dataclass(frozen=True)
class Finding:
    cause: str
    title: str
    substatus: str  # "401.1", "401.503", ...
    severity: Severity
    confidence: Confidence
    hosts: tuple[str, ...]
    site: str
    scope: str
    terminal_401: int
    evidence: tuple[EvidenceItem, ...]
    explanation: str
    fix: Fix | None
    missing_evidence: tuple[str, ...] = ()
    #: (substatus int, win32) pairs of log groups this finding accounts for; internal, not serialised
    explains: frozenset[tuple[int, int]] = field(default=frozenset(), compare=False)

    @property
    def id(self) -> str:
        """Stable id: the same cause at the same place on the same hosts always gets the same id."""
        key = "|".join((self.cause, self.site, self.scope, self.substatus, ",".join(sorted(self.hosts))))
        return hashlib.sha1(key.encode("utf-8")).hexdigest()[:8]

    def with_hosts(self, hosts: tuple[str, ...]) -> Finding:
        return replace(self, hosts=tuple(sorted(hosts)))

    def sort_key(self) -> tuple[Any, ...]:
        return (severity_rank(self.severity), self.cause, self.site, self.scope, self.substatus,
                tuple(self.hosts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cause": self.cause,
            "title": self.title,
            "substatus": self.substatus,
            "severity": self.severity,
            "confidence": self.confidence.to_dict(),
            "hosts": sorted(self.hosts),
            "site": self.site,
            "scope": self.scope,
            "terminal_401": self.terminal_401,
            "evidence": [e.to_dict() for e in sorted(self.evidence, key=EvidenceItem.sort_key)],
            "missing_evidence": sorted(set(self.missing_evidence)),
            "explanation": self.explanation,
            "fix": self.fix.to_dict() if self.fix else None,
        }


@dataclass(frozen=True)
class DriftItem:
    """One attribute of a site whose value on some servers differs from the rest.

    ``score`` is how well the attribute separates the servers with terminal 401s from those without:
    1.0 means the odd servers are exactly the failing ones.
    """

    site: str
    attribute: str
    hosts: tuple[str, ...]  # the servers with the minority value
    value: str
    others_value: str
    others: tuple[str, ...]
    score: float
    summary: str
    #: what makes the compared servers one farm: a host-header binding (``https://shop.contoso.com:443``)
    #: or, without one, bindings and content (``http:80 d:\\sites\\www``)
    farm: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "farm": self.farm, "attribute": self.attribute, "hosts": sorted(self.hosts),
                "value": self.value, "others_value": self.others_value, "others": sorted(self.others),
                "score": round(self.score, 3), "summary": self.summary}


@dataclass(frozen=True)
class SpnDuplicate:
    spn: str
    accounts: tuple[str, ...]
    hosts: tuple[str, ...]  # hosts whose queries reported it

    def to_dict(self) -> dict[str, Any]:
        return {"spn": self.spn, "accounts": sorted(self.accounts), "hosts": sorted(self.hosts)}


@dataclass(frozen=True)
class SpnMismatch:
    """A host/site whose Kerberos setup cannot work: e.g. SPN on the pool account with kernel mode on."""

    host: str
    site: str
    spn: str
    account: str
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "site": self.site, "spn": self.spn, "account": self.account,
                "problem": self.problem}


@dataclass(frozen=True)
class ClockOutlier:
    host: str
    utc_now: str
    offset_s: float  # host clock minus the reference; positive = host ahead
    reference: str  # "collection time" or "fleet median"

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "utc_now": self.utc_now, "offset_s": round(self.offset_s, 1),
                "reference": self.reference}


@dataclass(frozen=True)
class MatrixCell:
    host: str
    site: str
    requests: int
    terminal_401: int
    leading_cause: str | None

    @property
    def rate(self) -> float | None:
        return (self.terminal_401 / self.requests) if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {"host": self.host, "site": self.site, "requests": self.requests,
                "terminal_401": self.terminal_401, "rate": None if rate is None else round(rate, 6),
                "leading_cause": self.leading_cause}


@dataclass(frozen=True)
class HostStatus:
    host: str
    status: str  # ok | partial | failed | skipped | unknown
    error: str | None
    requests: int
    terminal_401: int
    handshake_401: int
    missing_evidence: tuple[str, ...]
    #: "YYYY-MM-DDTHH" → terminal 401s in that hour, as the log analysis counted them (for time charts)
    terminal_by_hour: tuple[tuple[str, int], ...] = ()
    #: shared configuration is on: where IIS reads its configuration from (present only when on)
    shared_configuration: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result = {"host": self.host, "status": self.status, "error": self.error, "requests": self.requests,
                  "terminal_401": self.terminal_401, "handshake_401": self.handshake_401,
                  "missing_evidence": sorted(set(self.missing_evidence)),
                  "terminal_by_hour": dict(sorted(self.terminal_by_hour))}
        if self.shared_configuration is not None:
            result["shared_configuration"] = self.shared_configuration
        return result


SCHEMA = "iisfleet.diagnosis/1"


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    drift: tuple[DriftItem, ...]
    matrix: tuple[MatrixCell, ...]
    clock_outliers: tuple[ClockOutlier, ...]
    spn_duplicates: tuple[SpnDuplicate, ...]
    spn_mismatches: tuple[SpnMismatch, ...]
    hosts: tuple[HostStatus, ...]
    #: where causes were judged on weaker evidence (no directory), or what the directory could not answer
    evidence_notes: tuple[str, ...] = ()

    def findings_for(self, host: str) -> list[Finding]:
        return [f for f in self.findings if host in f.hosts]

    def to_dict(self) -> dict[str, Any]:
        """The versioned, deterministic document (see docs/diagnosis.md)."""
        findings = sorted(self.findings, key=Finding.sort_key)
        return {
            "schema": SCHEMA,
            "summary": {
                "hosts": len(self.hosts),
                "findings": len(findings),
                "by_severity": {s: sum(1 for f in findings if f.severity == s) for s in SEVERITY_ORDER},
                "terminal_401": sum(h.terminal_401 for h in self.hosts),
                "requests": sum(h.requests for h in self.hosts),
            },
            "hosts": [h.to_dict() for h in sorted(self.hosts, key=lambda h: h.host)],
            "findings": [f.to_dict() for f in findings],
            "drift": [d.to_dict() for d in sorted(self.drift, key=lambda d: (-d.score, d.site, d.attribute))],
            "matrix": [c.to_dict() for c in sorted(self.matrix, key=lambda c: (c.host, c.site))],
            "clock_outliers": [c.to_dict() for c in sorted(self.clock_outliers, key=lambda c: c.host)],
            "spn_duplicates": [d.to_dict() for d in sorted(self.spn_duplicates, key=lambda d: d.spn)],
            "spn_mismatches": [m.to_dict() for m in sorted(self.spn_mismatches,
                                                           key=lambda m: (m.host, m.site, m.spn))],
            **({"evidence_notes": list(self.evidence_notes)} if self.evidence_notes else {}),
        }
