"""`iisfleet analyze PATH...`: explain the 401s in IIS logs copied off a server, with no fleet at all.

Thin: parse options, feed the paths to :class:`toolkit.logs.LogAnalyzer`, print a Rich summary or the
``iisfleet.analyze/1`` JSON document (docs/analyze.md). Exit codes: 0 analysed; 2 unusable input (no such
path, not a log, nothing to analyse) or a bad option.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from toolkit.cli._common import EXIT_OK, console, fail, is_tty
from toolkit.errors import ToolkitError, UsageError
from toolkit.logs import LogAnalysis, LogAnalyzer, samples_dir
from toolkit.parsers.events import (
    EVENT_EXPORT_SUFFIXES,
    looks_like_event_export,
    read_event_export,
    summarize_event_exports,
)
from toolkit.textsafe import display_text

_RELATIVE = re.compile(r"^(\d+)([mhd])$")


def parse_when(text: str | None, option: str, now: datetime | None = None) -> datetime | None:
    """``2026-11-24``, ``2026-11-24T10:00[:00][Z]`` (UTC, like W3C logs), or ``90m``/``24h``/``7d`` ago."""
    if text is None:
        return None
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount),
                 "d": timedelta(days=amount)}[unit]
        return (now or datetime.now(timezone.utc)) - delta
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise UsageError(f"{option}: cannot read {text!r} as a UTC time "
                         "(use 2026-11-24T10:00:00Z or 24h)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_PATHS_HELP = ("Log files, .gz files or folders (searched recursively), and exported events (Event Viewer "
               "'Save as XML', wevtutil qe /f:xml, .evtx) next to them.")
_SERVER_HELP = ("Server name for logs without s-computername: once for every PATH, or once per PATH in order. "
                "Without it, a <server>/W3SVC<n>/ folder layout names the server.")
_WINDOW_HELP = ("Handshake window in seconds: a 401 followed by a success for the same client and URI within "
                "it is a handshake.")


def analyze_command(
    paths: Annotated[list[Path] | None,
                     typer.Argument(metavar="PATH", help=_PATHS_HELP, show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the iisfleet.analyze/1 JSON.")] = False,
    since: Annotated[str | None, typer.Option(help="Only lines at or after this UTC time, or 24h.")] = None,
    until: Annotated[str | None, typer.Option(help="Only lines at or before this UTC time.")] = None,
    window: Annotated[float, typer.Option(min=0, help=_WINDOW_HELP)] = 30.0,
    top: Annotated[int, typer.Option(min=1, max=1000, help="Rows in the top URI/user/client lists.")] = 10,
    server: Annotated[list[str] | None, typer.Option(help=_SERVER_HELP, show_default=False)] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Analyse the bundled sample logs.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes per large file (CPUs).")] = None,
    accept_unverified: Annotated[bool, typer.Option(
        "--accept-unverified", help="Analyse a bundle even when `bundle verify` fails (a warning names every "
                                    "problem); without it such a bundle is refused.")] = False,
) -> None:
    """Classify every 401 in IIS W3C (and HTTPERR) logs as handshake or terminal, and explain the codes.

    PATH may also be an evidence bundle (a sealed run directory or its `bundle export` zip): it is verified
    first, its logs and event exports are read with each host folder naming the server, and the read is
    recorded in the run directory's custody log."""
    from toolkit.bundle.inputs import is_bundle

    bundles = [p for p in (paths or []) if is_bundle(p)]
    if bundles:
        if len(paths or []) != 1 or server or sample:
            fail(UsageError("give a bundle alone: its host folders name the servers (no other PATH, --server "
                            "or --sample with it)"))
        _analyze_bundle(bundles[0], json_output, dict(window_s=window, since=parse_when(since, "--since"),
                                                      until=parse_when(until, "--until"), workers=workers),
                        top, accept_unverified)
    inputs = list(paths or [])
    servers = list(server or [])
    if len(servers) > 1 and len(servers) != len(inputs):
        fail(UsageError(f"--server was given {len(servers)} times for {len(inputs)} PATH(s): give it once for "
                        f"all of them, or once per PATH in the same order"))
    per_path = dict(zip(inputs, servers)) if len(servers) > 1 else {}
    if sample:
        inputs.append(samples_dir())
    if not inputs:
        fail("give at least one log file or folder, or --sample")
    try:
        log_inputs, event_files = split_event_exports(inputs)
        records = []
        for event_file in event_files:
            records.extend(read_event_export(str(event_file)))
        analyzer_args = dict(window_s=window, server=servers[0] if len(servers) == 1 else "",
                             since=parse_when(since, "--since"), until=parse_when(until, "--until"),
                             workers=workers)
        analysis = _run(log_inputs, per_path, analyzer_args, progress=is_tty() and not json_output)
    except ToolkitError as exc:
        fail(exc)
    events = summarize_event_exports(records, [str(p) for p in event_files]) if event_files else None
    if analysis.lines_total == 0 and not analysis.sources and events is None:
        fail("nothing to analyse: no IIS log files (u_ex*.log, ex*.log, httperr*.log, .gz) "
             "or event exports under the given paths")
    if (analysis.requests == 0 and analysis.httperr_total == 0 and analysis.lines_filtered == 0
            and events is None):
        fail(f"no usable log lines in {', '.join(str(p) for p in inputs)} "
             f"({analysis.lines_malformed} malformed of {analysis.lines_total})")
    document = analysis.to_dict()
    document["inputs"] = [str(p) for p in inputs]
    _emit(analysis, document, events, json_output, top)


def _emit(analysis: LogAnalysis, document: dict, events: dict | None, json_output: bool, top: int) -> None:
    """Print the iisfleet.analyze/1 JSON or the Rich summary, and exit 0."""
    if json_output:
        if events is not None:
            document["events"] = events
        typer.echo(json.dumps(document, indent=2, sort_keys=False))
    else:
        for warning in analysis.warnings:
            typer.echo(f"warning: {warning}", err=True)
        _render(analysis, top)
        if events is not None:
            _render_events(events)
    raise typer.Exit(EXIT_OK)


def _analyze_bundle(bundle: Path, json_output: bool, analyzer_args: dict, top: int, accept_unverified: bool) -> None:
    """Verify the bundle (toolkit.bundle), then analyse what it holds, host folder by host folder."""
    import tempfile

    from toolkit.bundle import opened_bundle, record_access, verify_bundle
    from toolkit.bundle.inputs import bundle_inputs

    try:
        verification = verify_bundle(bundle)
    except ToolkitError as exc:
        fail(exc)
    if not verification.ok:
        problems = "; ".join(str(p) for p in verification.problems[:10])
        more = len(verification.problems) - 10
        text = (f"{bundle}: the bundle does not verify ({len(verification.problems)} problem(s)): {problems}"
                + (f"; and {more} more (iisfleet bundle verify lists them)" if more > 0 else ""))
        if not accept_unverified:
            fail(UsageError(text + ". Its contents may not be what was collected; --accept-unverified analyses "
                                   "it anyway"))
        typer.echo(f"warning: {text}; analysed anyway (--accept-unverified)", err=True)
    try:
        with opened_bundle(bundle) as root, tempfile.TemporaryDirectory(prefix="iisfleet-analyze-") as scratch:
            found = bundle_inputs(root, Path(scratch) / "excerpts")
            records = []
            for event_file in found.event_files:
                records.extend(read_event_export(str(event_file)))
            analyzer = LogAnalyzer(**analyzer_args)
            for path, host in found.logs:
                analyzer.feed_path(path, server=host)
            analysis = analyzer.result()
            prefixes = (str(root) + "/", str(Path(scratch)) + "/")
            shown = [str(p).replace(prefixes[0], "").replace(prefixes[1], "") for p in found.event_files]
            events = summarize_event_exports(records, shown) if found.event_files else None
            document = analysis.to_dict()
            # paths relative to the bundle: the same bundle gives the same document from its folder or its zip
            text = json.dumps(document, indent=2, sort_keys=False)
            for prefix in prefixes:
                text = text.replace(json.dumps(prefix)[1:-1], "")
            document = json.loads(text)
    except ToolkitError as exc:
        fail(exc)
    if not bundle.is_file():
        record_access(bundle, "analyze")
    if not found.logs and events is None:
        fail(f"{bundle}: the bundle holds no IIS logs or event exports for analyze (hosts: "
             f"{', '.join(found.hosts) or 'none'})")
    document["inputs"] = [bundle.name]
    document["bundle"] = {"verified": verification.ok, "hosts": found.hosts,
                          "problems": [str(p) for p in verification.problems]}
    _emit(analysis, document, events, json_output, top)


def split_event_exports(inputs: list[Path]) -> tuple[list[Path], list[Path]]:
    """(log inputs, event export files): a named file is an event export by its suffix or its first bytes;
    folders are searched for ``*.xml``/``*.evtx`` whose first bytes are event exports (their logs are
    found by the log reader itself)."""
    logs: list[Path] = []
    events: list[Path] = []
    for path in inputs:
        if path.is_file():
            (events if _is_event_export(path, named=True) else logs).append(path)
            continue
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EVENT_EXPORT_SUFFIXES
                           and _is_event_export(p, named=False))
            events.extend(found)
            if not found or any(p.is_file() and p.suffix.lower() not in EVENT_EXPORT_SUFFIXES
                                for p in path.rglob("*")):
                logs.append(path)
            continue
        logs.append(path)  # the log reader reports the missing path
    return logs, events


def _is_event_export(path: Path, *, named: bool) -> bool:
    try:
        with path.open("rb") as stream:
            head = stream.read(4096)
    except OSError:
        return named and path.suffix.lower() in EVENT_EXPORT_SUFFIXES
    if looks_like_event_export(head):
        return True
    return named and path.suffix.lower() == ".evtx"


def _run(inputs: list[Path], per_path: dict[Path, str], analyzer_args: dict, *, progress: bool) -> LogAnalysis:
    if not progress:
        analyzer = LogAnalyzer(**analyzer_args)
        for path in inputs:
            analyzer.feed_path(path, server=per_path.get(path))
        return analyzer.result()
    columns = (TextColumn("[bold]reading logs"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("logs", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        analyzer = LogAnalyzer(**analyzer_args, progress=update)
        for path in inputs:
            analyzer.feed_path(path, server=per_path.get(path))
        return analyzer.result()


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f} %" if whole else "–"


def _shown(value: object) -> str:
    """Log text (server, site, URI, user, client) is the log writer's: shown as text, never as terminal
    controls or Rich markup."""
    return escape(display_text(value))


def _render(analysis: LogAnalysis, top: int) -> None:
    out = console
    span = f"{analysis.first_time} → {analysis.last_time}" if analysis.first_time else "no timestamps"
    out.print(f"[bold]iisfleet analyze[/]  {len(analysis.sources)} file(s), {span} (UTC), "
              f"handshake window {analysis.window_s:g} s")
    counts = (f"lines {analysis.lines_total:,}  requests {analysis.requests:,}  "
              f"malformed {analysis.lines_malformed:,}")
    if analysis.lines_inferred:
        counts += f"  headerless (default layout) {analysis.lines_inferred:,}"
    out.print(counts
              + (f"  outside --since/--until {analysis.lines_filtered:,}" if analysis.lines_filtered else ""))
    out.print(f"401 responses {analysis.status_401_total:,}: "
              f"[bold red]terminal {analysis.status_401_terminal:,}[/] (the user saw them), "
              f"handshake {analysis.status_401_handshake:,} (normal Negotiate/NTLM challenge)")

    sites = Table(title="Terminal 401 rate per server and site", title_justify="left")
    for name in ("server", "site", "requests", "401s", "terminal", "terminal rate"):
        sites.add_column(name, justify="right" if name not in ("server", "site") else "left")
    for row in analysis.sites():
        sites.add_row(_shown(row["server"] or "–"), _shown(row["site"] or "–"), f"{row['requests']:,}",
                      f"{row['status_401']:,}", f"{row['terminal']:,}",
                      _pct(row["terminal"], row["requests"]))
    out.print(sites)

    if analysis.groups:
        codes = Table(title="401 by substatus and sc-win32-status", title_justify="left")
        show_server = any(g.server for g in analysis.groups)
        columns = ["server"] if show_server else []
        columns += ["site", "status", "win32", "count", "terminal", "handshake"]
        for name in columns:
            codes.add_column(name, justify="right" if name in ("count", "terminal", "handshake") else "left",
                             overflow="fold")
        for g in analysis.groups:
            win32 = f"{g.win32_hex} {g.win32_name}".strip()
            cells = ([_shown(g.server or "–")] if show_server else []) + [
                _shown(g.site or "–"), f"401.{g.substatus}", win32, f"{g.count:,}",
                f"[red]{g.terminal:,}[/]" if g.terminal else "0", f"{g.handshake:,}"]
            codes.add_row(*cells)
        out.print(codes)
        legend: dict[str, str] = {}
        for g in analysis.groups:
            if g.substatus_meaning:
                legend.setdefault(f"401.{g.substatus}", g.substatus_meaning)
            if g.win32_meaning:
                legend.setdefault(f"{g.win32_hex} {g.win32_name}", g.win32_meaning)
        for code, meaning in legend.items():
            out.print(f"  [bold]{code}[/]: {meaning}", highlight=False)
        shown = 0
        for g in analysis.groups:
            for ref in g.samples[:1]:
                if shown == 0:
                    out.print("[bold]Examples of terminal 401s[/]")
                shown += 1
                out.print(f"  401.{_shown(g.substatus)} {g.win32_name or g.win32_hex} at {_shown(ref.source)}:"
                          f"{ref.line} {_shown(ref.time)} client {_shown(ref.c_ip)} user {_shown(ref.user or '-')} "
                          f"{_shown(ref.uri)}", highlight=False)

    if analysis.status_401_terminal:
        tops = Table(title=f"Top {top} for terminal 401s", title_justify="left")
        tops.add_column("URI stem", overflow="fold")
        tops.add_column("n", justify="right")
        tops.add_column("user", overflow="fold")
        tops.add_column("n", justify="right")
        tops.add_column("client", overflow="fold")
        tops.add_column("n", justify="right")
        lists = [analysis.top_uris, analysis.top_users, analysis.top_clients]
        for i in range(max(len(x) for x in lists)):
            cells: list[str] = []
            for values in lists:
                value, count = values[i] if i < len(values) else ("", 0)
                cells += [("(anonymous)" if value == "-" else _shown(value)), f"{count:,}" if count else ""]
            tops.add_row(*cells)
        out.print(tops)

    if analysis.httperr_total:
        by_reason = sorted(analysis.httperr_by_reason.items(), key=lambda kv: -kv[1])
        reasons = ", ".join(f"{_shown(k)} {v:,}" for k, v in by_reason)
        out.print(f"HTTPERR (http.sys) records {analysis.httperr_total:,}: {reasons}")
    if analysis.malformed:
        out.print(f"[yellow]{analysis.lines_malformed:,} malformed line(s)[/], first ones:")
        for source, line, reason in analysis.malformed[:5]:
            out.print(f"  {_shown(source)}:{line}: {_shown(reason)}", highlight=False)


def _render_events(events: dict) -> None:
    out = console
    ids = ", ".join(f"{event_id} x{n:,}" for event_id, n in events["by_id"].items())
    out.print(f"[bold]Events[/]  {events['records']:,} record(s) from {len(events['sources'])} file(s): {ids}")
    if events["security_log_full"]:
        out.print("  [bold red]1104: the Security log is full[/] (with CrashOnAuditFail, every non-admin "
                  "logon fails: 401.1)")
    if events["security_log_cleared"]:
        out.print("  1102: the Security log was cleared")
    for entry in events["logon_failures"]:
        accounts = ", ".join(f"{a['account']} x{a['count']:,}" for a in entry["accounts"][:3])
        types = ", ".join(f"type {t}" for t in entry["logon_types"])
        out.print(f"  4625 {entry['reason']} {entry['name']} x{entry['count']:,} ({types}): {accounts}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("analyze", no_args_is_help=False)(analyze_command)
