"""What changed between two runs: a pure function of two ``RunRecord``s, and its renderings.

- **new** findings: on a host in run B, not on that host in run A (including hosts new in B);
- **resolved**: in A, and B checked the host (status ok or partial) without finding it again;
- **unverified**: in A, but B could not tell (the host failed, was skipped or left the selection): never
  called resolved;
- **changed**: in both, with another severity or confidence, or with the host's terminal 401s at that site
  at least doubled or halved (and by at least ``MIN_COUNT_CHANGE`` requests: day-to-day noise is not news);
- hosts that **appeared** or **vanished**, and hosts whose **status** changed (ok → failed, …);
- **drift started** / **stopped**: a server that holds (or stops holding) a site's minority value.

``exit_code`` is 1 when something new — a new finding, or a changed one whose severity rose — is at or above
``fail_on``; else 0.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from toolkit.history.record import FindingRow, RunRecord
from toolkit.report.model import severity_rank
# Host names and messages are host output: the report's own escaping applies (one line, no control
# characters, no raw HTML in Markdown).
from toolkit.report.render import _md_cell, clean

DIFF_SCHEMA = "iisfleet.diff/1"
#: A change in terminal 401s smaller than this many requests is never reported as "changed".
MIN_COUNT_CHANGE = 10
_CHECKED = ("ok", "partial")


def _finding(row: FindingRow) -> dict[str, Any]:
    return {"host": row.host, "cause": row.cause, "site": row.site, "scope": row.scope, "substatus": row.substatus,
            "severity": row.severity, "confidence": row.confidence, "title": row.title,
            "terminal_401": row.site_terminal_401}


def _count_changed(before: int, after: int) -> bool:
    if abs(after - before) < MIN_COUNT_CHANGE:
        return False
    return after >= 2 * before or after * 2 <= before


def _run(record: RunRecord) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "path": record.path, "playbook": record.playbook,
            "status": record.status, "started_utc": record.started_utc, "finished_utc": record.finished_utc,
            "hosts": len(record.hosts)}


def diff_runs(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """The changes from run ``a`` (before) to run ``b`` (after), as a sorted, deterministic document."""
    hosts_a = {h.host: h for h in a.hosts}
    hosts_b = {h.host: h for h in b.hosts}
    found_a = {f.key: f for f in a.findings}
    found_b = {f.key: f for f in b.findings}

    new = [_finding(found_b[k]) for k in sorted(found_b.keys() - found_a.keys())]
    resolved, unverified = [], []
    for key in sorted(found_a.keys() - found_b.keys()):
        row = found_a[key]
        after = hosts_b.get(row.host)
        entry = _finding(row)
        if after is not None and after.status in _CHECKED:
            resolved.append(entry)
        else:
            entry["host_status"] = after.status if after is not None else "not in run"
            unverified.append(entry)
    changed = []
    for key in sorted(found_a.keys() & found_b.keys()):
        before, after = found_a[key], found_b[key]
        what = []
        if before.severity != after.severity:
            what.append("severity")
        if before.confidence != after.confidence:
            what.append("confidence")
        if _count_changed(before.site_terminal_401, after.site_terminal_401):
            what.append("terminal_401")
        if what:
            changed.append({**_finding(after), "changed": what, "before": {
                "severity": before.severity, "confidence": before.confidence,
                "terminal_401": before.site_terminal_401}})

    status_changed = [{"host": name, "before": hosts_a[name].status, "after": hosts_b[name].status,
                       "error_category": hosts_b[name].error_category, "error_message": hosts_b[name].error_message}
                      for name in sorted(hosts_a.keys() & hosts_b.keys())
                      if hosts_a[name].status != hosts_b[name].status]
    drift_a = {d.key: d for d in a.drift}
    drift_b = {d.key: d for d in b.drift}
    drift_started = [asdict(drift_b[k]) for k in sorted(drift_b.keys() - drift_a.keys())]
    drift_stopped = []
    for key in sorted(drift_a.keys() - drift_b.keys()):
        after = hosts_b.get(key[0])
        entry = asdict(drift_a[key])
        if after is None or after.status not in _CHECKED:
            entry["host_status"] = after.status if after is not None else "not in run"  # unknown, not stopped
        drift_stopped.append(entry)
    return {
        "schema": DIFF_SCHEMA,
        "before": _run(a),
        "after": _run(b),
        "findings": {"new": new, "resolved": resolved, "changed": changed, "unverified": unverified},
        "hosts": {"appeared": [{"host": n, "status": hosts_b[n].status} for n in sorted(hosts_b.keys() - hosts_a.keys())],
                  "vanished": [{"host": n, "status": hosts_a[n].status} for n in sorted(hosts_a.keys() - hosts_b.keys())],
                  "status_changed": status_changed},
        "drift": {"started": drift_started, "stopped": drift_stopped},
    }


def is_empty(diff: Mapping[str, Any]) -> bool:
    return not any(items for section in ("findings", "hosts", "drift") for items in diff[section].values())


def exit_code(diff: Mapping[str, Any], fail_on: str = "low") -> int:
    """1 when a new finding, or a changed one whose severity rose, is at or above ``fail_on``; else 0."""
    threshold = severity_rank(fail_on)
    if any(severity_rank(f["severity"]) <= threshold for f in diff["findings"]["new"]):
        return 1
    for f in diff["findings"]["changed"]:
        rose = severity_rank(f["severity"]) < severity_rank(f["before"]["severity"])
        if rose and severity_rank(f["severity"]) <= threshold:
            return 1
    return 0


# ---------------------------------------------------------------------- rendering
def _where(f: Mapping[str, Any]) -> str:
    scope = f.get("scope") or "/"
    return f"{f['site']}{'' if scope == '/' else ' ' + scope}"


def _finding_line(f: Mapping[str, Any]) -> str:
    return f"{f['host']}: {f['cause']} ({f['substatus']}, {f['severity']}) at {_where(f)}, {f['terminal_401']} terminal 401s"


def _change_line(f: Mapping[str, Any]) -> str:
    before = f["before"]
    parts = []
    if "severity" in f["changed"]:
        parts.append(f"severity {before['severity']} → {f['severity']}")
    if "confidence" in f["changed"]:
        parts.append(f"confidence {before['confidence']} → {f['confidence']}")
    if "terminal_401" in f["changed"]:
        parts.append(f"terminal 401s {before['terminal_401']} → {f['terminal_401']}")
    return f"{f['host']}: {f['cause']} at {_where(f)}: {', '.join(parts)}"


def _drift_line(d: Mapping[str, Any]) -> str:
    line = f"{d['host']}: {d['site']} {d['attribute']} = {d['value']!r} (others {d['others_value']!r})"
    if d.get("host_status"):
        line += f" [host {d['host_status']} in the later run: unknown, not stopped]"
    return line


def _sections(diff: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    findings, hosts, drift = diff["findings"], diff["hosts"], diff["drift"]
    return [
        ("New findings", [_finding_line(f) for f in findings["new"]]),
        ("Resolved findings", [_finding_line(f) for f in findings["resolved"]]),
        ("Changed findings", [_change_line(f) for f in findings["changed"]]),
        ("Not verified (the host was not checked in the later run)",
         [f"{_finding_line(f)} [host {f['host_status']}]" for f in findings["unverified"]]),
        ("Hosts that appeared", [f"{h['host']} ({h['status']})" for h in hosts["appeared"]]),
        ("Hosts that vanished", [f"{h['host']} (was {h['status']})" for h in hosts["vanished"]]),
        ("Host status changed", [f"{h['host']}: {h['before']} → {h['after']}"
                                 + (f" [{h['error_category']}] {h['error_message']}" if h["error_category"] else "")
                                 for h in hosts["status_changed"]]),
        ("Drift started", [_drift_line(d) for d in drift["started"]]),
        ("Drift stopped", [_drift_line(d) for d in drift["stopped"]]),
    ]


def _heading(diff: Mapping[str, Any]) -> tuple[str, str]:
    before, after = diff["before"], diff["after"]

    def label(run: Mapping[str, Any]) -> str:
        prefix = f"#{run['id']} " if run.get("id") is not None else ""
        return f"{prefix}{run['name']} ({run['playbook']}, started {run['started_utc']}, {run['status']})"

    return label(before), label(after)


def _counts(diff: Mapping[str, Any]) -> str:
    f = diff["findings"]
    return (f"{len(f['new'])} new, {len(f['resolved'])} resolved, {len(f['changed'])} changed, "
            f"{len(f['unverified'])} not verified")


def render_text(diff: Mapping[str, Any]) -> str:
    before, after = _heading(diff)
    lines = [f"before: {before}", f"after:  {after}", f"findings: {_counts(diff)}"]
    if is_empty(diff):
        lines.append("no changes")
    for title, items in _sections(diff):
        if items:
            lines.append("")
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {clean(item)}" for item in items)
    return "\n".join(lines) + "\n"


def render_markdown(diff: Mapping[str, Any]) -> str:
    before, after = _heading(diff)
    lines = ["# iisfleet: changes between two runs", "", f"- before: {_md_cell(before)}", f"- after: {_md_cell(after)}",
             f"- findings: {_counts(diff)}", ""]
    if is_empty(diff):
        lines += ["No changes.", ""]
    for title, items in _sections(diff):
        if items:
            lines += [f"## {title} ({len(items)})", ""]
            lines += [f"- {_md_cell(item)}" for item in items]
            lines.append("")
    return "\n".join(lines)


def render_html(diff: Mapping[str, Any]) -> str:
    before, after = _heading(diff)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>iisfleet: changes between two runs</title>",
           "<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto}"
           "h2{font-size:1.1em;margin-top:1.5em}li{font-family:ui-monospace,monospace;font-size:.9em}</style>",
           "</head><body>", "<h1>Changes between two runs</h1>",
           f"<p>before: {html.escape(before)}<br>after: {html.escape(after)}<br>findings: {html.escape(_counts(diff))}</p>"]
    if is_empty(diff):
        out.append("<p>No changes.</p>")
    for title, items in _sections(diff):
        if items:
            out.append(f"<h2>{html.escape(title)} ({len(items)})</h2><ul>")
            out += [f"<li>{html.escape(clean(item))}</li>" for item in items]
            out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_json(diff: Mapping[str, Any]) -> str:
    return json.dumps(diff, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


RENDERERS = {"text": render_text, "md": render_markdown, "html": render_html, "json": render_json}

__all__ = ["DIFF_SCHEMA", "RENDERERS", "diff_runs", "exit_code", "is_empty"]
