"""Plain renderers of the report model: text, Markdown, JSON and CSV.

Every renderer is a pure function of the report model (``toolkit.report.model``) and returns a string.
Host-supplied text is treated as untrusted: Markdown table cells are escaped, control characters are
dropped, and long values are capped so one hostile log line cannot swamp a report.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from toolkit.textsafe import display_text

MAX_CELL = 300


def clean(value: Any, limit: int = MAX_CELL) -> str:
    """One line of display text: control, C1, bidi and other invisible characters shown as visible
    escapes (``toolkit.textsafe``), capped at ``limit`` characters."""
    text = display_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _source(evidence: Mapping[str, Any]) -> str:
    src = evidence.get("source") or {}
    if not isinstance(src, Mapping) or not src.get("file"):
        return ""
    line = src.get("line")
    return f"{src['file']}:{line}" if line else str(src["file"])


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_csv(report: Mapping[str, Any]) -> str:
    """One row per finding and host, for spreadsheets and ticket imports."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["severity", "cause", "substatus", "host", "site", "scope", "terminal_401",
                     "confidence", "title", "fix"])
    for finding in report["findings"]:
        for host in finding["hosts"] or [""]:
            writer.writerow([
                finding.get("severity", ""), finding.get("cause", ""), finding.get("substatus", ""),
                clean(host), clean(finding.get("site", "")), clean(finding.get("scope", "")),
                finding.get("terminal_401", 0), finding["confidence"].get("level", ""),
                clean(finding.get("title", "")), clean((finding.get("fix") or {}).get("command", ""), 2000),
            ])
    return out.getvalue()


def _banner(report: Mapping[str, Any]) -> str:
    return "SIMULATED lab fleet: no real server was contacted." if report.get("simulated") else ""


def shared_configuration_warnings(report: Mapping[str, Any]) -> list[str]:
    """One loud sentence per host whose IIS reads a shared configuration iisfleet has not read."""
    return [f"SHARED CONFIGURATION on {h['name']}: IIS reads its settings from {h['shared_configuration'] or '(no path)'}"
            " (redirection.config enabled), not from the local applicationHost.config iisfleet collected; "
            "configuration-based findings for this host may be wrong until the shared file is read"
            for h in report["hosts"] if h.get("shared_configuration") is not None]


def render_text(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    lines: list[str] = []
    add = lines.append
    add("iisfleet 401 report")
    if report.get("simulated"):
        add(_banner(report))
    run = report["run"]
    add(f"playbook: {run.get('playbook') or '-'}   run status: {run.get('status') or '-'}")
    add("")
    add(f"hosts: {s['hosts_total']} ({s['hosts_ok']} ok, {s['hosts_partial']} partial, {s['hosts_failed']} failed, "
        f"{_skipped(report)} skipped)")
    rate = (s["terminal_401"] / s["requests"]) if s["requests"] else 0.0
    add(f"requests: {s['requests']}   terminal 401: {s['terminal_401']} ({_pct(rate)})   "
        f"handshake 401: {s['handshake_401']}")
    sev = ", ".join(f"{k} {v}" for k, v in s["findings_by_severity"].items() if v)
    add(f"findings: {s['findings']}" + (f" ({sev})" if sev else ""))
    add("")
    for warning in shared_configuration_warnings(report):
        add(f"WARNING: {clean(warning, 1000)}")
        add("")
    for index, f in enumerate(report["findings"], 1):
        add(f"[{index}] {f.get('severity', '').upper()} {f.get('substatus', '')} {f.get('cause', '')}: "
            f"{clean(f.get('title', ''))}")
        add(f"    hosts: {', '.join(clean(h) for h in f['hosts'])}")
        add(f"    site: {clean(f.get('site', ''))}   scope: {clean(f.get('scope', ''))}   "
            f"terminal 401: {f.get('terminal_401', 0)}")
        conf = f["confidence"]
        add(f"    confidence: {conf.get('level', '')}" + (f" ({clean(conf.get('reason'))})" if conf.get("reason") else ""))
        if f.get("explanation"):
            add(f"    why: {clean(f['explanation'], 2000)}")
        for ev in f["evidence"]:
            where = _source(ev)
            add(f"    - [{clean(ev.get('kind', ''))}] {clean(ev.get('host', ''))}: {clean(ev.get('summary', ''))}"
                + (f" ({clean(where)})" if where else ""))
        for missing in f["missing_evidence"]:
            add(f"    ! missing: {clean(missing)}")
        fix = f.get("fix") or {}
        if fix.get("command"):
            add(f"    fix (not run by iisfleet): {clean(fix['command'], 2000)}")
        add("")
    if report["drift"]:
        add("Drift between servers serving the same site:")
        for d in report["drift"]:
            add(f"  - {clean(d.get('summary') or d)}")
        add("")
    if report.get("evidence_notes"):
        add("Domain evidence:")
        for note in report["evidence_notes"]:
            add(f"  - {clean(note, 600)}")
        add("")
    for line in _clock_lines(report):
        add(line)
    failed = [h for h in report["hosts"] if h["status"] in ("failed", "partial", "skipped")]
    if failed:
        add("Hosts with collection problems:")
        for h in failed:
            err = h.get("error") or {}
            add(f"  - {clean(h['name'])}: {h['status']}"
                + (f" [{err.get('category', '')}] {clean(err.get('message', ''))}" if err else ""))
            if err.get("explanation"):
                add(f"      {clean(err['explanation'], 600)}")
        add("")
    return "\n".join(lines).rstrip() + "\n"


def _skipped(report: Mapping[str, Any]) -> int:
    """Hosts never (fully) started: the summary may predate the count, so it is taken from the rows."""
    summary = report["summary"]
    if "hosts_skipped" in summary:
        return int(summary["hosts_skipped"])
    return sum(1 for h in report["hosts"] if h.get("status") == "skipped")


def _clock_lines(report: Mapping[str, Any]) -> list[str]:
    """Hosts whose clock is far off: their log window was read on their own clock (see docs/run.md)."""
    lines = []
    for outlier in report.get("clock_outliers") or []:
        if not isinstance(outlier, Mapping):
            continue
        offset = outlier.get("offset_s")
        shown = f"{offset:+.0f} s" if isinstance(offset, (int, float)) else "unknown"
        lines.append(f"  - {clean(outlier.get('host', ''))}: clock {shown} from "
                     f"{clean(outlier.get('reference', 'the controller'))}; its log window followed its own clock")
    return (["Hosts with a clock far from the others:", *lines, ""]) if lines else []


def _md_cell(value: Any, limit: int = MAX_CELL) -> str:
    # Markdown renderers pass raw HTML through: "<" is what could open a tag, so it is the one escaped
    # (with "&", so an escape in host text cannot be mistaken for ours); "|" would split a table cell.
    return clean(value, limit).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")


def render_markdown(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    out: list[str] = ["# iisfleet 401 report", ""]
    if report.get("simulated"):
        out += [f"> **{_banner(report)}**", ""]
    rate = (s["terminal_401"] / s["requests"]) if s["requests"] else 0.0
    out += [
        "| hosts | ok | partial | failed | skipped | requests | terminal 401 | rate | handshake 401 | findings |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['hosts_total']} | {s['hosts_ok']} | {s['hosts_partial']} | {s['hosts_failed']} | {_skipped(report)} "
        f"| {s['requests']} "
        f"| {s['terminal_401']} | {_pct(rate)} | {s['handshake_401']} | {s['findings']} |",
        "",
    ]
    for warning in shared_configuration_warnings(report):
        out += [f"> **WARNING: {_md_cell(warning, 1000)}**", ""]
    out += ["## Findings", ""]
    if not report["findings"]:
        out += ["No terminal 401 needs attention.", ""]
    for index, f in enumerate(report["findings"], 1):
        out += [
            f"### {index}. {_md_cell(f.get('title', ''))}",
            "",
            f"- **cause:** `{f.get('cause', '')}` ({f.get('substatus', '')}), **severity:** {f.get('severity', '')}, "
            f"**confidence:** {f['confidence'].get('level', '')}",
            f"- **hosts:** {', '.join(_md_cell(h) for h in f['hosts'])}",
            f"- **site / scope:** {_md_cell(f.get('site', ''))} `{_md_cell(f.get('scope', ''))}`, "
            f"**terminal 401:** {f.get('terminal_401', 0)}",
        ]
        if f["confidence"].get("reason"):
            out.append(f"- **why this confidence:** {_md_cell(f['confidence']['reason'])}")
        if f.get("explanation"):
            out += ["", _md_cell(f["explanation"], 2000)]
        if f["evidence"]:
            out += ["", "| kind | host | evidence | source |", "|---|---|---|---|"]
            out += [f"| {_md_cell(ev.get('kind', ''))} | {_md_cell(ev.get('host', ''))} | "
                    f"{_md_cell(ev.get('summary', ''))} | {_md_cell(_source(ev))} |" for ev in f["evidence"]]
        if f["missing_evidence"]:
            out += ["", "Missing evidence: " + "; ".join(_md_cell(m) for m in f["missing_evidence"])]
        fix = f.get("fix") or {}
        if fix.get("command"):
            out += ["", "Suggested fix (iisfleet never runs it):", "", "```" + str(fix.get("shell") or ""),
                    clean(fix["command"], 4000).replace("```", "'''"), "```"]
        out.append("")
    if report["matrix"]:
        out += ["## Server × site", "", "| server | site | requests | terminal 401 | rate | leading cause |",
                "|---|---|---:|---:|---:|---|"]
        out += [f"| {_md_cell(c['server'])} | {_md_cell(c['site'])} | {c['requests']} | {c['terminal_401']} | "
                f"{_pct(c['rate'])} | {_md_cell(c['leading_cause'] or '')} |" for c in report["matrix"]]
        out.append("")
    clock = _clock_lines(report)
    if clock:
        out += ["## Clocks", ""] + [f"- {_md_cell(line.lstrip(' -'))}" for line in clock[1:-1]] + [""]
    if report["drift"]:
        out += ["## Drift", ""]
        out += [f"- {_md_cell(d.get('summary') or d)}" for d in report["drift"]]
        out.append("")
    if report.get("evidence_notes"):
        out += ["## Domain evidence", ""]
        out += [f"- {_md_cell(n, 600)}" for n in report["evidence_notes"]]
        out.append("")
    out += ["## Hosts", "", "| host | status | requests | terminal 401 | problem |", "|---|---|---:|---:|---|"]
    for h in report["hosts"]:
        err = h.get("error") or {}
        problem = f"[{err.get('category', '')}] {err.get('message', '')}" if err else ""
        if err.get("explanation"):
            problem += f" → {err['explanation']}"
        out.append(f"| {_md_cell(h['name'])} | {h['status']} | {h['requests']} | {h['terminal_401']} | {_md_cell(problem)} |")
    return "\n".join(out).rstrip() + "\n"
