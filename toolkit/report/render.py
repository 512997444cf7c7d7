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


#: Servers drawn in the per-hour chart and listed in the text/Markdown timeline (most terminal 401 first).
TIMELINE_TOP_SERVERS = 12


def timeline_servers(report: Mapping[str, Any], top: int = TIMELINE_TOP_SERVERS) -> list[tuple[str, dict[str, int]]]:
    """The ``top`` servers with the most terminal 401 (ties by name), with their per-hour counts."""
    ranked = sorted(report["timeline"].items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return [(server, dict(hours)) for server, hours in ranked[:top]]


def _signed_seconds(value: Any) -> str:
    try:
        return f"{float(value):+.0f} s"
    except (TypeError, ValueError):
        return str(value)


def fleet_tables(report: Mapping[str, Any]) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """The fleet-wide sections every format shows, as ``(id, title, headers, rows)`` of display text:
    the server × site matrix, terminal 401 per hour, clock outliers, duplicate SPNs, SPN mismatches and
    the hosts table. Text and Markdown render them as tables; HTML renders the same rows (its matrix and
    chart are drawn, with these rows as their readable form)."""
    tables: list[tuple[str, str, list[str], list[list[str]]]] = []
    if report["matrix"]:
        tables.append(("matrix", "Server × site: terminal 401 rate and leading cause",
                       ["server", "site", "requests", "terminal 401", "rate", "leading cause"],
                       [[c["server"], c["site"], str(c["requests"]), str(c["terminal_401"]), _pct(c["rate"]),
                         c.get("leading_cause") or ("-" if not c["terminal_401"] else "unexplained")]
                        for c in report["matrix"]]))
    shown = timeline_servers(report)
    if shown:
        more = len(report["timeline"]) - len(shown)
        title = "Terminal 401 per hour (UTC)" + (f", top {len(shown)} of {len(report['timeline'])} servers"
                                                 if more > 0 else "")
        rows = []
        for server, hours in shown:
            peak_hour, peak = max(hours.items(), key=lambda kv: (kv[1], kv[0]))
            busy = ", ".join(f"{hour[5:].replace('T', ' ')}h {count}" for hour, count in sorted(hours.items()) if count)
            rows.append([server, str(sum(hours.values())), f"{peak_hour[5:].replace('T', ' ')}h {peak}", busy])
        tables.append(("timeline", title, ["server", "terminal 401", "peak hour", "per hour"], rows))
    if report["clock_outliers"]:
        tables.append(("clocks", "Clock outliers (Kerberos fails beyond 5 minutes of skew; each one's log window "
                       "followed its own clock)",
                       ["host", "offset", "compared with", "host clock (UTC)"],
                       [[str(o.get("host", "")), _signed_seconds(o.get("offset_s")), str(o.get("reference", "")),
                         str(o.get("utc_now", ""))] for o in report["clock_outliers"]]))
    if report["spn_duplicates"]:
        tables.append(("spn-duplicates", "Duplicate SPNs (Kerberos cannot choose an account)",
                       ["SPN", "accounts", "seen from"],
                       [[str(d.get("spn", "")), ", ".join(d.get("accounts") or ()), ", ".join(d.get("hosts") or ())]
                        for d in report["spn_duplicates"]]))
    if report["spn_mismatches"]:
        tables.append(("spn-mismatches", "SPN mismatches", ["host", "site", "SPN", "account", "problem"],
                       [[str(m.get("host", "")), str(m.get("site", "")), str(m.get("spn", "")),
                         str(m.get("account", "")), str(m.get("problem", ""))] for m in report["spn_mismatches"]]))
    host_rows = []
    for h in report["hosts"]:
        err = h.get("error") or {}
        problem = f"[{err.get('category', '')}] {err.get('message', '')}" if err else ""
        if err.get("explanation"):
            problem += f" → {err['explanation']}"
        missing = "; ".join(h.get("missing_evidence") or ())
        if missing:
            problem += ("; " if problem else "") + f"missing: {missing}"
        host_rows.append([h["name"], h.get("address") or "", h["status"], str(h["requests"]),
                          str(h["terminal_401"]), problem])
    tables.append(("hosts", "Hosts", ["host", "address", "status", "requests", "terminal 401", "problem"], host_rows))
    return tables


_NUMERIC_HEADERS = {"requests", "terminal 401", "rate", "offset"}


def _text_table(headers: list[str], rows: list[list[str]], limit: int = 600) -> list[str]:
    """Aligned columns, nothing cut but over-long host text (capped like every cell); the last column
    is not padded."""
    cells = [[clean(c, limit) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(widths[i]) if headers[i] in _NUMERIC_HEADERS else v.ljust(widths[i])
                 for i, v in enumerate(values)]
        return ("  " + "  ".join(parts)).rstrip()

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]


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
    for _, title, headers, rows in fleet_tables(report):
        add(f"{title}:")
        lines.extend(_text_table(headers, rows))
        add("")
    return "\n".join(lines).rstrip() + "\n"


def _skipped(report: Mapping[str, Any]) -> int:
    """Hosts never (fully) started: the summary may predate the count, so it is taken from the rows."""
    summary = report["summary"]
    if "hosts_skipped" in summary:
        return int(summary["hosts_skipped"])
    return sum(1 for h in report["hosts"] if h.get("status") == "skipped")


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
    if report["drift"]:
        out += ["## Drift", ""]
        out += [f"- {_md_cell(d.get('summary') or d)}" for d in report["drift"]]
        out.append("")
    if report.get("evidence_notes"):
        out += ["## Domain evidence", ""]
        out += [f"- {_md_cell(n, 600)}" for n in report["evidence_notes"]]
        out.append("")
    for _, title, headers, rows in fleet_tables(report):
        out += [f"## {title}", "", "| " + " | ".join(headers) + " |",
                "|" + "|".join("---:" if h in _NUMERIC_HEADERS else "---" for h in headers) + "|"]
        out += ["| " + " | ".join(_md_cell(c, 600) for c in row) + " |" for row in rows]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
