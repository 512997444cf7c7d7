"""The HTML report: one self-contained file (inline CSS and SVG, no script, no external request).

Every piece of host-supplied text goes through ``html.escape``; a Content-Security-Policy forbids scripts
and remote loads, so even a hostile log line renders as text. Charts are drawn as inline SVG:
small multiples of terminal 401 per hour for the top servers. The server × site matrix is an HTML table
whose cells name the rate and the leading cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from toolkit.report.render import _source, clean, fleet_tables, shared_configuration_warnings, timeline_servers

SEVERITY_COLOURS = {"critical": "#7f0000", "high": "#c62828", "medium": "#ef6c00", "low": "#2e7d32", "info": "#546e7a"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f23;background:#f6f8fa}
header{background:#0b3d91;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:20px}
.sim{background:#fff3cd;color:#5c4400;border:1px solid #e0c36b;padding:8px 24px;font-weight:600}
main{padding:16px 24px;max-width:1200px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;margin:0 0 16px}
h2{font-size:16px;margin:4px 0 12px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num,th.num{text-align:right}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:20px}
details.finding{border:1px solid #d0d7de;border-radius:6px;margin:8px 0;padding:6px 10px}
details.finding>summary{cursor:pointer;font-weight:600}
.sev{display:inline-block;color:#fff;border-radius:4px;padding:0 6px;font-size:12px;margin-right:6px}
code,pre{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:12px}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap}
.muted{color:#57606a}
.where{display:block;font-weight:400;color:#3b434b;margin:2px 0 0 0}
.scroll{overflow-x:auto}
table.matrix{width:auto;border-collapse:separate;border-spacing:2px}
table.matrix td{min-width:150px;border:1px solid #d0d7de;padding:4px 8px}
table.matrix td b,table.matrix td span{display:block}
table.matrix td.none{background:#f6f8fa;color:#8c959f}
table.matrix td.clean{background:#eaf5ea}
table.matrix td .muted{color:#3b434b}
table.matrix th[scope=row]{white-space:nowrap}
.cause{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:12px}
.multiples{display:flex;flex-wrap:wrap;gap:8px}
figure.panel{margin:0;border:1px solid #eaeef2;border-radius:4px;background:#fff}
svg text{font:11px system-ui,sans-serif;fill:#1b1f23}
svg text.t{font-weight:600;font-size:12px}
svg text.axis{fill:#57606a}
"""


def _e(value: Any, limit: int = 300) -> str:
    return escape(clean(value, limit), quote=True)


def _hour_label(hour: str) -> str:
    """``2026-11-24T09`` as ``11-24 09h``."""
    return f"{hour[5:].replace('T', ' ')}h"


def _timeline_html(report: Mapping[str, Any]) -> str:
    """Small multiples: one bar chart per server (the top servers by terminal 401), all on the same hour
    axis and the same vertical scale, each with labelled axes, so a spike on one server reads at a glance."""
    shown = timeline_servers(report)
    if not shown:
        return '<p class="muted">No terminal 401 with a timestamp.</p>'
    hours = sorted({hour for _, per_hour in shown for hour in per_hour})
    peak = max(max(per_hour.values(), default=0) for _, per_hour in shown) or 1
    width, height, left, right, top, bottom = 320, 150, 44, 10, 24, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(hours)
    panels = []
    for server, per_hour in shown:
        total = sum(per_hour.values())
        parts = [f'<svg role="img" aria-label="{_e(server)}: terminal 401 per hour" viewBox="0 0 {width} {height}" '
                 f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
                 f'<text class="t" x="{left}" y="14">{_e(server, 40)} ({total} terminal 401)</text>']
        for fraction in (0.0, 0.5, 1.0):  # y axis: 0, half and the shared peak
            y = top + plot_h - fraction * plot_h
            value = round(peak * fraction)
            parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e1e4e8"/>'
                         f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
        for i, hour in enumerate(hours):
            count = per_hour.get(hour, 0)
            if not count:
                continue
            bar = count / peak * plot_h
            parts.append(f'<rect x="{left + i * slot + 0.5:.1f}" y="{top + plot_h - bar:.1f}" '
                         f'width="{max(slot - 1, 1):.1f}" height="{bar:.1f}" fill="#c62828">'
                         f'<title>{_e(server)} {_e(_hour_label(hour))}: {count}</title></rect>')
        parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#57606a"/>')
        parts.append(f'<text x="{left}" y="{top + plot_h + 14}">{_e(_hour_label(hours[0]))}</text>')
        if len(hours) > 1:
            parts.append(f'<text x="{left + plot_w}" y="{top + plot_h + 14}" text-anchor="end">'
                         f'{_e(_hour_label(hours[-1]))}</text>')
        parts.append(f'<text class="axis" x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle">hour (UTC)</text>'
                     f'<text class="axis" x="10" y="{top + plot_h / 2}" text-anchor="middle" '
                     f'transform="rotate(-90 10 {top + plot_h / 2})">401 per hour</text>')
        parts.append("</svg>")
        panels.append(f'<figure class="panel">{"".join(parts)}</figure>')
    note = ""
    if len(report["timeline"]) > len(shown):
        note = (f'<p class="muted">The {len(shown)} servers with the most terminal 401 of '
                f'{len(report["timeline"])}; every server is in the hosts table.</p>')
    return f'{note}<div class="multiples">{"".join(panels)}</div>'


def _matrix_html(cells: Sequence[Mapping[str, Any]]) -> str:
    """The server × site matrix as a table: each cell names its terminal 401 rate, the leading cause and the
    counts, shaded by rate. Plain text at body size, so it reads at 100% zoom; wide fleets scroll sideways."""
    if not cells:
        return '<p class="muted">No per-site request counts were collected.</p>'
    servers = sorted({c["server"] for c in cells})
    sites = sorted({c["site"] for c in cells})
    by_key = {(c["server"], c["site"]): c for c in cells}
    peak = max((c["rate"] for c in cells), default=0) or 1
    head = "".join(f'<th scope="col">{_e(site, 60)}</th>' for site in sites)
    rows = []
    for server in servers:
        tds = []
        for site in sites:
            cell = by_key.get((server, site))
            if cell is None:
                tds.append('<td class="none">not served here</td>')
                continue
            if not cell["terminal_401"]:
                tds.append(f'<td class="clean"><b>0%</b><span class="muted">{cell["requests"]} requests</span></td>')
                continue
            intensity = cell["rate"] / peak
            fill = f"#ff{int(235 - 110 * intensity):02x}{int(235 - 130 * intensity):02x}"
            cause = cell.get("leading_cause") or "unexplained"
            rate = f"{cell['rate'] * 100:.1f}%" if cell["rate"] >= 0.0005 else "<0.1%"
            tds.append(f'<td style="background:{fill}"><b>{escape(rate)}</b>'
                       f'<span class="cause">{_e(cause, 60)}</span>'
                       f'<span class="muted">{cell["terminal_401"]} of {cell["requests"]}</span></td>')
        rows.append(f'<tr><th scope="row">{_e(server, 60)}</th>{"".join(tds)}</tr>')
    return ('<p class="muted">Each cell: terminal 401 rate, the leading cause, terminal 401 of requests.</p>'
            f'<div class="scroll"><table class="matrix"><tr><th>server \\ site</th>{head}</tr>'
            f'{"".join(rows)}</table></div>')


def _plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c, 600)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _names(values: Sequence[str], shown: int = 6) -> str:
    """``web01, web02`` or ``web01, ..., web06 and 13 more``."""
    names = ", ".join(values[:shown])
    return names + (f" and {len(values) - shown} more" if len(values) > shown else "")


def _finding_html(index: int, f: Mapping[str, Any]) -> str:
    sev = str(f.get("severity", ""))
    colour = SEVERITY_COLOURS.get(sev, "#546e7a")
    conf = f["confidence"]
    rows = "".join(
        f"<tr><td>{_e(ev.get('kind', ''))}</td><td>{_e(ev.get('host', ''))}</td><td>{_e(ev.get('summary', ''), 1000)}</td>"
        f"<td><code>{_e(_source(ev), 400)}</code></td></tr>"
        for ev in f["evidence"]
    )
    missing = "".join(f"<li>{_e(m)}</li>" for m in f["missing_evidence"])
    fix = f.get("fix") or {}
    body = [
        f'<details class="finding" id="finding-{index}" data-cause="{_e(f.get("cause", ""))}">',
        f'<summary><span class="sev" style="background:{colour}">{_e(sev)}</span>{_e(f.get("substatus", ""))} '
        f'<code>{_e(f.get("cause", ""))}</code>: {_e(f.get("title", ""))}'
        f'<span class="where">on {_e(_names(list(f["hosts"])), 600)}, site {_e(f.get("site") or "-")} '
        f'({int(f.get("terminal_401") or 0)} terminal 401)</span></summary>',
        f"<p><b>Hosts:</b> {_e(', '.join(f['hosts']), 2000)}<br><b>Site:</b> {_e(f.get('site', ''))} "
        f"<b>Scope:</b> <code>{_e(f.get('scope', ''))}</code><br><b>Confidence:</b> {_e(conf.get('level', ''))}"
        + (f" — {_e(conf.get('reason'), 600)}" if conf.get("reason") else "") + "</p>",
    ]
    if f.get("explanation"):
        body.append(f"<p>{_e(f['explanation'], 3000)}</p>")
    if rows:
        body.append("<table><tr><th>kind</th><th>host</th><th>evidence</th><th>source</th></tr>" + rows + "</table>")
    if missing:
        body.append(f"<p><b>Missing evidence</b></p><ul>{missing}</ul>")
    if fix.get("command"):
        body.append("<p><b>Suggested fix</b> <span class=\"muted\">(iisfleet never runs it)</span></p>"
                    f"<pre>{_e(fix['command'], 4000)}</pre>")
        if fix.get("notes"):
            body.append(f"<p class=\"muted\">{_e(fix['notes'], 1000)}</p>")
    body.append("</details>")
    return "".join(body)


def _host_problem(error: Mapping[str, Any] | None) -> str:
    if not error:
        return ""
    text = f"<b>{_e(error.get('category', ''))}</b> {_e(error.get('message', ''), 500)}"
    if error.get("explanation"):
        text += f"<br><span class=\"muted\">{_e(error['explanation'], 600)}</span>"
    return text


def _missing(host: Mapping[str, Any]) -> str:
    missing = host.get("missing_evidence") or []
    return "".join(f'<br><span class="muted">missing: {_e(m, 400)}</span>' for m in missing)


def render_html(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    rate = (s["terminal_401"] / s["requests"]) if s["requests"] else 0.0
    kpis = [("hosts", s["hosts_total"]), ("failed hosts", s["hosts_failed"]), ("requests", s["requests"]),
            ("terminal 401", s["terminal_401"]), ("terminal rate", f"{rate * 100:.2f}%"),
            ("handshake 401", s["handshake_401"]), ("findings", s["findings"])]
    host_rows = "".join(
        f"<tr><td>{_e(h['name'])}</td><td>{_e(h.get('address') or '')}</td><td>{_e(h['status'])}</td>"
        f"<td class=\"num\">{h['requests']}</td><td class=\"num\">{h['terminal_401']}</td>"
        f"<td>{_host_problem(h.get('error'))}{_missing(h)}</td></tr>"
        for h in report["hosts"]
    )
    extra = "".join(f'<section id="{ident}"><h2>{escape(title)}</h2>{_plain_table(headers, rows)}</section>'
                    for ident, title, headers, rows in fleet_tables(report)
                    if ident not in ("matrix", "timeline", "hosts"))
    drift = "".join(f"<li>{_e(d.get('summary') or d, 600)}</li>" for d in report["drift"])
    notes = "".join(f"<li>{_e(n, 600)}</li>" for n in report.get("evidence_notes") or ())
    findings = "".join(_finding_html(i, f) for i, f in enumerate(report["findings"], 1)) or \
        "<p>No terminal 401 needs attention.</p>"
    warnings = "".join(f'<div class="sim">WARNING: {_e(w, 1000)}</div>' for w in shared_configuration_warnings(report))
    title = "iisfleet 401 report" + (" (SIMULATED)" if report.get("simulated") else "")
    return "".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1><div>playbook {_e(report['run'].get('playbook') or '-')}, "
        f"run {_e(report['run'].get('status') or '-')}</div></header>",
        '<div class="sim">SIMULATED lab fleet: no real server was contacted.</div>' if report.get("simulated") else "",
        warnings,
        "<main>",
        "<section><h2>Summary</h2><div class=\"kpis\">",
        "".join(f'<div class="kpi"><b>{_e(v)}</b>{escape(k)}</div>' for k, v in kpis),
        "</div></section>",
        f"<section id=\"findings\"><h2>Findings ({len(report['findings'])})</h2>{findings}</section>",
        f"<section id=\"matrix\"><h2>Server × site: terminal 401 rate and leading cause</h2>"
        f"{_matrix_html(report['matrix'])}</section>",
        f"<section id=\"timeline\"><h2>Terminal 401 per hour (UTC), per server</h2>{_timeline_html(report)}</section>",
        f"<section id=\"drift\"><h2>Drift</h2><ul>{drift}</ul></section>" if drift else "",
        f"<section id=\"domain\"><h2>Domain evidence</h2><ul>{notes}</ul></section>" if notes else "",
        extra,
        "<section id=\"hosts\"><h2>Hosts</h2><table><tr><th>host</th><th>address</th><th>status</th>"
        "<th class=\"num\">requests</th><th class=\"num\">terminal 401</th><th>problem</th></tr>"
        f"{host_rows}</table></section>",
        "</main></body></html>\n",
    ])
