"""What the history keeps of one run: a ``RunRecord`` built from a run directory (or read back from the database).

The record is the run's report model flattened into rows a database and a diff can use: one row per host,
one row per (host, finding) — a finding merged over several hosts becomes one row per host, so "web03
started failing with logon-right-denied" is a row appearing — and one row per (host, drift item).
Nothing here contacts a host; everything comes from ``run.json``, ``hosts/*/host.json`` and the diagnosis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import InputError


@dataclass(frozen=True)
class HostRow:
    host: str
    status: str
    address: str = ""
    error_category: str = ""
    error_message: str = ""
    requests: int = 0
    terminal_401: int = 0


@dataclass(frozen=True)
class FindingRow:
    """One finding on one host. ``terminal_401`` is the finding's total over all its hosts; ``site_terminal_401``
    the terminal 401s of this host at this site (from the server × site matrix)."""

    host: str
    cause: str
    site: str
    scope: str
    substatus: str
    severity: str
    confidence: str = ""
    finding_id: str = ""
    title: str = ""
    terminal_401: int = 0
    site_terminal_401: int = 0

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """Identity across runs: the same cause at the same place on the same host (sites and scopes are
        case-insensitive in IIS)."""
        return (self.host, self.cause, self.site.lower(), self.scope.lower(), self.substatus)


@dataclass(frozen=True)
class DriftRow:
    """One server holding the minority value of a site attribute."""

    host: str
    site: str
    attribute: str
    value: str = ""
    others_value: str = ""
    score: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host, self.site.lower(), self.attribute)


@dataclass
class RunRecord:
    path: str
    name: str
    playbook: str
    status: str
    started_utc: str
    finished_utc: str | None
    inventory: str | None = None
    simulated: bool = False
    hosts: list[HostRow] = field(default_factory=list)
    findings: list[FindingRow] = field(default_factory=list)
    drift: list[DriftRow] = field(default_factory=list)
    id: int | None = None  # the database's id, once stored

    def count(self, status: str) -> int:
        return sum(1 for h in self.hosts if h.status == status)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _report_model(run_dir: Path) -> dict[str, Any]:
    """The run's report model: ``report/report.json`` when the run wrote one for itself, else diagnosed now."""
    from toolkit.report import REPORT_SCHEMA, report_for_run

    saved = run_dir / "report" / "report.json"
    if saved.is_file():
        try:
            model = json.loads(saved.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            model = None
        if isinstance(model, dict) and model.get("schema") == REPORT_SCHEMA:
            return model
    return report_for_run(run_dir)


def record_from_run_dir(run_dir: Path) -> RunRecord:
    """Read a run directory (complete or not) into a ``RunRecord``. Raises ``InputError`` for a folder that is
    not a run directory."""
    from toolkit.rundir import load_run

    run_dir = Path(run_dir)
    run = load_run(run_dir)  # validates run.json, reads a killed run as interrupted
    model = _report_model(run_dir)
    return record_from_report(run_dir, run.meta, model, run.hosts)


def record_from_report(run_dir: Path, meta: Mapping[str, Any], model: Mapping[str, Any],
                       collected: Mapping[str, Any]) -> RunRecord:
    """Flatten a report model. ``collected`` is the run directory's host records (status and error as recorded)."""
    site_counts = {(str(c.get("server")), str(c.get("site", "")).lower()): int(c.get("terminal_401") or 0)
                   for c in model.get("matrix") or []}
    hosts: list[HostRow] = []
    reported = {str(h.get("name")): h for h in model.get("hosts") or [] if isinstance(h, Mapping)}
    for name in sorted(set(reported) | set(collected)):
        row = reported.get(name, {})
        record = collected.get(name)
        status = _text(getattr(record, "status", None) or row.get("status") or "skipped")
        error = getattr(record, "error", None) or row.get("error") or {}
        if not isinstance(error, Mapping):
            error = {"message": str(error)}
        hosts.append(HostRow(host=name, status=status, address=_text(getattr(record, "address", "") or row.get("address")),
                             error_category=_text(error.get("category")), error_message=_text(error.get("message"))[:500],
                             requests=int(row.get("requests") or 0), terminal_401=int(row.get("terminal_401") or 0)))
    findings = []
    for finding in model.get("findings") or []:
        confidence = finding.get("confidence")
        level = confidence.get("level") if isinstance(confidence, Mapping) else confidence
        for host in finding.get("hosts") or []:
            site = _text(finding.get("site"))
            findings.append(FindingRow(
                host=str(host), cause=_text(finding.get("cause")), site=site, scope=_text(finding.get("scope")),
                substatus=_text(finding.get("substatus")), severity=_text(finding.get("severity")),
                confidence=_text(level), finding_id=_text(finding.get("id")), title=_text(finding.get("title")),
                terminal_401=int(finding.get("terminal_401") or 0),
                site_terminal_401=site_counts.get((str(host), site.lower()), 0)))
    drift = [DriftRow(host=str(host), site=_text(item.get("site")), attribute=_text(item.get("attribute")),
                      value=_text(item.get("value")), others_value=_text(item.get("others_value")),
                      score=float(item.get("score") or 0.0))
             for item in model.get("drift") or [] for host in item.get("hosts") or []]
    run_dir = Path(run_dir)
    started = meta.get("started_utc")
    if not isinstance(started, str) or not started:
        raise InputError("run.json has no start time", path=str(run_dir / "run.json"), field="started_utc")
    return RunRecord(path=str(run_dir.resolve()), name=run_dir.name, playbook=_text(meta.get("playbook")),
                     status=_text(meta.get("status") or "interrupted"), started_utc=started,
                     finished_utc=meta.get("finished_utc") or None, inventory=meta.get("inventory") or None,
                     simulated=bool(meta.get("simulated")), hosts=hosts,
                     findings=sorted(set(findings), key=lambda f: f.key),
                     drift=sorted(set(drift), key=lambda d: d.key))
