"""The HTML report: one self-contained file (inline CSS and SVG, no script, no external request).

Every piece of host-supplied text goes through ``html.escape``; a Content-Security-Policy forbids scripts
and remote loads, so even a hostile log line renders as text. Charts are drawn as inline SVG:
terminal 401 per hour per server, and the server × site matrix of terminal 401 rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from toolkit.report.render import _source, clean, shared_configuration_warnings

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
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
svg text{font:11px system-ui,sans-serif}
"""


def _e(value: Any, limit: int = 300) -> str:
    return escape(clean(value, limit), quote=True)


def _timeline_svg(timeline: Mapping[str, Mapping[str, int]]) -> str:
    hours = sorted({hour for per_host in timeline.values() for hour in per_host})
    if not hours:
        return '<p class="muted">No terminal 401 with a timestamp.</p>'
    width, height, left, bottom, top = 900, 260, 48, 40, 12
    plot_w, plot_h = width - left - 160, height - bottom - top
    peak = max(max(per_host.values(), default=0) for per_host in timeline.values()) or 1
    step = plot_w / max(len(hours) - 1, 1)
    parts = [f'<svg role="img" aria-label="Terminal 401 per hour per server" viewBox="0 0 {width} {height}" '
             f'width="100%" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>']
    label_every = max(1, len(hours) // 8)
    for i, hour in enumerate(hours):
        if i % label_every == 0:
            x = left + i * step
            parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_e(hour[5:])}h</text>')
    for index, (server, per_host) in enumerate(sorted(timeline.items())):
        colour = PALETTE[index % len(PALETTE)]
        points = " ".join(
            f"{left + i * step:.1f},{top + plot_h - per_host.get(hour, 0) / peak * plot_h:.1f}"
            for i, hour in enumerate(hours)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                     f'<title>{_e(server)}</title></polyline>')
        ly = top + 14 * index + 10
        parts.append(f'<rect x="{left + plot_w + 16}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + plot_w + 32}" y="{ly + 1}">{_e(server, 24)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _matrix_svg(cells: Sequence[Mapping[str, Any]]) -> str:
    if not cells:
        return '<p class="muted">No per-site request counts were collected.</p>'
    servers = sorted({c["server"] for c in cells})
    sites = sorted({c["site"] for c in cells})
    by_key = {(c["server"], c["site"]): c for c in cells}
    cw, ch, left, top = 120, 28, 140, 60
    width, height = left + cw * len(sites) + 10, top + ch * len(servers) + 10
    peak = max((c["rate"] for c in cells), default=0) or 1
    parts = [f'<svg role="img" aria-label="Terminal 401 rate per server and site" viewBox="0 0 {width} {height}" '
             f'width="{min(width, 1100)}" xmlns="http://www.w3.org/2000/svg">']
    for j, site in enumerate(sites):
        parts.append(f'<text x="{left + j * cw + cw / 2}" y="{top - 10}" text-anchor="middle">{_e(site, 18)}</text>')
    for i, server in enumerate(servers):
        y = top + i * ch
        parts.append(f'<text x="{left - 8}" y="{y + ch / 2 + 4}" text-anchor="end">{_e(server, 20)}</text>')
        for j, site in enumerate(sites):
            x = left + j * cw
            cell = by_key.get((server, site))
            if cell is None:
                parts.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#f0f0f0"/>')
                continue
            intensity = cell["rate"] / peak if cell["terminal_401"] else 0.0
            red = 255
            green = int(255 - 180 * intensity)
            blue = int(255 - 200 * intensity)
            fill = f"#{red:02x}{green:02x}{blue:02x}" if cell["terminal_401"] else "#e8f5e9"
            tip = (f"{server} / {site}: {cell['terminal_401']} terminal 401 of {cell['requests']} requests"
                   + (f"; leading cause {cell['leading_cause']}" if cell.get("leading_cause") else ""))
            parts.append(f'<g><title>{_e(tip, 400)}</title><rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                         f'fill="{fill}" stroke="#ccc"/><text x="{x + cw / 2}" y="{y + ch / 2 + 4}" '
                         f'text-anchor="middle">{cell["rate"] * 100:.1f}%</text></g>')
    parts.append("</svg>")
    return "".join(parts)


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
        f'<code>{_e(f.get("cause", ""))}</code>: {_e(f.get("title", ""))} '
        f'<span class="muted">({len(f["hosts"])} host(s), {int(f.get("terminal_401") or 0)} terminal 401)</span></summary>',
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


def render_html(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    rate = (s["terminal_401"] / s["requests"]) if s["requests"] else 0.0
    kpis = [("hosts", s["hosts_total"]), ("failed hosts", s["hosts_failed"]), ("requests", s["requests"]),
            ("terminal 401", s["terminal_401"]), ("terminal rate", f"{rate * 100:.2f}%"),
            ("handshake 401", s["handshake_401"]), ("findings", s["findings"])]
    host_rows = "".join(
        f"<tr><td>{_e(h['name'])}</td><td>{_e(h['status'])}</td><td class=\"num\">{h['requests']}</td>"
        f"<td class=\"num\">{h['terminal_401']}</td><td>{_host_problem(h.get('error'))}</td></tr>"
        for h in report["hosts"]
    )
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
        f"<section id=\"timeline\"><h2>Terminal 401 per hour and server</h2>{_timeline_svg(report['timeline'])}</section>",
        f"<section id=\"matrix\"><h2>Server × site: terminal 401 rate</h2>{_matrix_svg(report['matrix'])}</section>",
        f"<section id=\"drift\"><h2>Drift</h2><ul>{drift}</ul></section>" if drift else "",
        f"<section id=\"domain\"><h2>Domain evidence</h2><ul>{notes}</ul></section>" if notes else "",
        "<section id=\"hosts\"><h2>Hosts</h2><table><tr><th>host</th><th>status</th><th class=\"num\">requests</th>"
        f"<th class=\"num\">terminal 401</th><th>problem</th></tr>{host_rows}</table></section>",
        "</main></body></html>\n",
    ])
