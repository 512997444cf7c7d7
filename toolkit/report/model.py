"""The report model: one deterministic dictionary every renderer reads.

Schema ``iisfleet.report/1`` (documented in docs/report.md). It is built from the run's metadata and the
diagnosis (``toolkit.diagnose``), holds no wall-clock time of its own, and is sorted everywhere, so the
same run directory always renders byte-identical reports (the golden tests depend on this).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REPORT_SCHEMA = "iisfleet.report/1"

#: Severities from most to least serious; ``--fail-on`` compares against this order.
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")

_HOST_STATUS_ORDER = {"failed": 0, "partial": 1, "skipped": 2, "ok": 3}


def severity_rank(severity: str) -> int:
    """0 for critical … 4 for info; unknown severities sort last."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return len(SEVERITIES)


def _finding_sort_key(finding: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        severity_rank(str(finding.get("severity", ""))),
        -int(finding.get("terminal_401") or 0),
        str(finding.get("cause", "")),
        str(finding.get("site", "")),
        str(finding.get("scope", "")),
        ",".join(finding.get("hosts") or ()),
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    return [value]


def _matrix_cells(diagnosis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Normalise the diagnosis matrix into sorted cells ``{server, site, requests, terminal_401, rate, leading_cause}``."""
    matrix = diagnosis.get("matrix") or []
    if isinstance(matrix, Mapping):
        matrix = matrix.get("cells") or []
    cells = []
    for cell in matrix:
        requests = int(cell.get("requests") or 0)
        terminal = int(cell.get("terminal_401") or 0)
        rate = cell.get("rate")
        if rate is None:
            rate = (terminal / requests) if requests else 0.0
        cells.append({
            "server": str(cell.get("server") or cell.get("host") or ""),
            "site": str(cell.get("site") or ""),
            "requests": requests,
            "terminal_401": terminal,
            "rate": round(float(rate), 6),
            "leading_cause": cell.get("leading_cause") or None,
        })
    cells.sort(key=lambda c: (c["server"], c["site"]))
    return cells


def _timeline(diagnosis: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Terminal 401 per server per hour: ``{server: {"YYYY-MM-DDTHH": n}}``, keys sorted."""
    raw = diagnosis.get("timeline") or {}
    if not raw:
        # Fall back to per-host log summaries when the diagnosis carries them there.
        raw = {
            str(h.get("name") or h.get("host")): (h.get("terminal_by_hour") or h.get("by_hour") or {})
            for h in _as_list(diagnosis.get("hosts"))
            if isinstance(h, Mapping)
        }
    return {
        server: {hour: int(count) for hour, count in sorted(hours.items())}
        for server, hours in sorted(raw.items())
        if hours
    }


def _error(value: Any) -> dict[str, Any] | None:
    """A host error as ``{category, message, explanation}``; a bare message keeps an empty category."""
    if not value:
        return None
    if isinstance(value, Mapping):
        return {"category": str(value.get("category") or ""), "message": str(value.get("message") or ""),
                "explanation": str(value.get("explanation") or "")}
    return {"category": "", "message": str(value), "explanation": ""}


def _hosts(run_meta: Mapping[str, Any], diagnosis: Mapping[str, Any],
           run_hosts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for host in _as_list(diagnosis.get("hosts")):
        if not isinstance(host, Mapping):
            continue
        name = str(host.get("name") or host.get("host") or "")
        collected = run_hosts.get(name, {})
        row = {
            "name": name,
            "address": str(collected.get("address") or host.get("address") or ""),
            "status": str(host.get("status") or "ok"),
            # The run directory keeps the error's category and explanation; prefer it to the diagnosis' text.
            "error": _error(collected.get("error") or host.get("error")),
            "requests": int(host.get("requests") or 0),
            "terminal_401": int(host.get("terminal_401") or 0),
            "handshake_401": int(host.get("handshake_401") or 0),
            "missing_evidence": sorted(str(m) for m in _as_list(host.get("missing_evidence"))),
        }
        if host.get("shared_configuration") is not None:  # only then, like the diagnosis
            row["shared_configuration"] = str(host["shared_configuration"])
        rows.append(row)
    known = {row["name"] for row in rows}
    for name in _as_list(run_meta.get("hosts")):
        if name not in known:
            rows.append({"name": str(name), "address": "", "status": "skipped", "error": None,
                         "requests": 0, "terminal_401": 0, "handshake_401": 0, "missing_evidence": []})
    rows.sort(key=lambda r: (_HOST_STATUS_ORDER.get(r["status"], 9), r["name"]))
    return rows


def _findings(diagnosis: Mapping[str, Any]) -> list[dict[str, Any]]:
    findings = []
    for raw in _as_list(diagnosis.get("findings")):
        finding = dict(raw)
        finding["hosts"] = sorted(str(h) for h in _as_list(finding.get("hosts")))
        finding["evidence"] = _as_list(finding.get("evidence"))
        finding["missing_evidence"] = _as_list(finding.get("missing_evidence"))
        confidence = finding.get("confidence")
        if not isinstance(confidence, Mapping):
            finding["confidence"] = {"level": str(confidence or "unknown"), "reason": ""}
        fix = finding.get("fix")
        if isinstance(fix, str):
            finding["fix"] = {"command": fix, "shell": "powershell", "notes": ""}
        findings.append(finding)
    findings.sort(key=_finding_sort_key)
    return findings


def build_report(run_meta: Mapping[str, Any], diagnosis: Mapping[str, Any],
                 run_hosts: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Combine a run's ``run.json`` and its diagnosis into the report model.

    ``run_hosts`` maps host name to what the run directory recorded (``address``, ``error`` with its
    category and explanation); without it the diagnosis' own host summary is used.
    """
    findings = _findings(diagnosis)
    hosts = _hosts(run_meta, diagnosis, run_hosts or {})
    cells = _matrix_cells(diagnosis)
    by_severity = {sev: 0 for sev in SEVERITIES}
    for finding in findings:
        sev = str(finding.get("severity", ""))
        if sev in by_severity:
            by_severity[sev] += 1
    summary = {
        "hosts_total": len(hosts),
        "hosts_ok": sum(1 for h in hosts if h["status"] == "ok"),
        "hosts_partial": sum(1 for h in hosts if h["status"] == "partial"),
        "hosts_failed": sum(1 for h in hosts if h["status"] == "failed"),
        "hosts_skipped": sum(1 for h in hosts if h["status"] == "skipped"),
        "requests": sum(h["requests"] for h in hosts) or sum(c["requests"] for c in cells),
        "terminal_401": sum(h["terminal_401"] for h in hosts) or sum(c["terminal_401"] for c in cells),
        "handshake_401": sum(h["handshake_401"] for h in hosts),
        "findings": len(findings),
        "findings_by_severity": by_severity,
    }
    drift = sorted(
        (dict(d) for d in _as_list(diagnosis.get("drift"))),
        key=lambda d: (str(d.get("site", "")), -float(d.get("score") or 0), str(d.get("attribute", ""))),
    )
    return {
        "schema": REPORT_SCHEMA,
        "simulated": bool(run_meta.get("simulated")),
        "run": {
            "playbook": run_meta.get("playbook"),
            "started_utc": run_meta.get("started_utc"),
            "finished_utc": run_meta.get("finished_utc"),
            "status": run_meta.get("status"),
            "parameters": run_meta.get("parameters") or {},
        },
        "summary": summary,
        "hosts": hosts,
        "matrix": cells,
        "timeline": _timeline(diagnosis),
        "drift": drift,
        "spn_duplicates": _as_list(diagnosis.get("spn_duplicates")),
        "spn_mismatches": _as_list(diagnosis.get("spn_mismatches")),
        "clock_outliers": _as_list(diagnosis.get("clock_outliers")),
        "findings": findings,
        # where the domain facts came from, or which causes were judged without them (only when there is
        # something to say, so reports of fleets the directory does not concern are unchanged)
        **({"evidence_notes": [str(n) for n in _as_list(diagnosis.get("evidence_notes"))]}
           if diagnosis.get("evidence_notes") else {}),
    }


def worst_severity(findings: Iterable[Mapping[str, Any]]) -> str | None:
    ranked = sorted((severity_rank(str(f.get("severity", ""))), str(f.get("severity"))) for f in findings)
    return ranked[0][1] if ranked else None


def exit_code(report: Mapping[str, Any], fail_on: str = "low") -> int:
    """0 no findings at/above ``fail_on``; 1 findings at/above it; 3 hosts unreachable, or a run that stopped
    early, and nothing else applies."""
    threshold = severity_rank(fail_on)
    if any(severity_rank(str(f.get("severity", ""))) <= threshold for f in report.get("findings", [])):
        return 1
    if report.get("summary", {}).get("hosts_failed"):
        return 3
    if str(report.get("run", {}).get("status") or "complete") != "complete":
        return 3  # the run stopped early: some hosts were never reached, so "nothing found" is not an answer
    return 0
