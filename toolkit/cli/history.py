"""`iisfleet runs list|index`, `iisfleet diff RUN_A RUN_B`, `iisfleet trend --cause X`: the run history.

Thin: resolve the database path, call ``toolkit.history``, print. Never contacts a host.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from toolkit.cli._common import EXIT_OK, EXIT_USAGE, console, err_console, fail
from toolkit.cli.report import Severity
from toolkit.errors import ToolkitError

runs_app = typer.Typer(name="runs", help="The run history: list recorded runs, index run directories.",
                       no_args_is_help=True)

HistoryOption = Annotated[Path | None, typer.Option(
    "--history", help="History database (default: $IISFLEET_HISTORY, else history.sqlite beside the runs, "
                      "./runs/history.sqlite).", dir_okay=False)]
PlaybookFilter = Annotated[str | None, typer.Option("--playbook", help="Only runs of this playbook.")]
SinceOption = Annotated[str | None, typer.Option(
    "--since", help="Only runs started since: a duration back from now (7d, 48h) or an ISO date/time (UTC).")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Only runs started until (same forms as --since).")]


class DiffFormat(str, Enum):
    text = "text"
    md = "md"
    html = "html"
    json = "json"


def _when(value: str | None, option: str) -> str | None:
    """``7d`` / ``48h`` back from now, or an ISO date or time, as the ISO 8601 UTC text runs are stored with."""
    if value is None:
        return None
    from toolkit.playbooks import parse_duration

    text = value.strip()
    try:
        moment = datetime.now(timezone.utc) - timedelta(seconds=parse_duration(text))
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise typer.BadParameter(f"{value!r}: expected a duration (7d, 48h) or an ISO date/time",
                                     param_hint=option) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _open(history: Path | None, near_run: Path | None = None):  # -> HistoryStore
    from toolkit.history import HistoryStore, database_path

    path = database_path(history, near_run)
    try:
        return HistoryStore(path)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
    except OSError as error:
        fail(f"{error.filename or path}: cannot open the history database: {error.strerror or error}", EXIT_USAGE)


@runs_app.command("list")
def list_command(
    history: HistoryOption = None,
    playbook: PlaybookFilter = None,
    host: Annotated[str | None, typer.Option("--host", help="Only runs that included this host.")] = None,
    cause: Annotated[str | None, typer.Option("--cause", help="Only runs that found this cause id.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    last: Annotated[int, typer.Option("--last", min=1, help="At most this many runs (newest first).")] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """List recorded runs, newest first: id, start, playbook, status, host counts, findings.

    Every `iisfleet run` records itself; `iisfleet runs index DIR...` adds older or killed runs.
    """
    with _open(history) as store:
        rows = store.list_runs(playbook=playbook, host=host, cause=cause, since=_when(since, "--since"),
                               until=_when(until, "--until"), limit=last)
    if json_output:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        raise typer.Exit(EXIT_OK)
    if not rows:
        console.print("no recorded runs match", highlight=False)
        raise typer.Exit(EXIT_OK)
    table = Table(title="recorded runs")
    for column in ("id", "started (UTC)", "playbook", "status", "ok", "partial", "failed", "skipped", "findings",
                   "run directory"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r.id), r.started_utc, escape(r.playbook), r.status, str(r.hosts_ok), str(r.hosts_partial),
                      str(r.hosts_failed), str(r.hosts_skipped), str(r.findings), escape(r.path))
    console.print(table)


@runs_app.command("index")
def index_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to (re)index.")],
    history: HistoryOption = None,
) -> None:
    """Record run directories in the history (runs from before the history existed, or killed runs).

    Re-indexing a run replaces what was recorded for it and keeps its id. Exit 2 if any folder is not a run.
    """
    from toolkit.history import index_run

    code = EXIT_OK
    with _open(history, run_dirs[0]) as store:
        for run_dir in run_dirs:
            try:
                run_id = index_run(store, run_dir)
            except ToolkitError as error:
                console.print(f"{escape(str(run_dir))}: [red]not indexed[/]: {escape(str(error))}", highlight=False)
                code = EXIT_USAGE
                continue
            console.print(f"#{run_id} {escape(str(run_dir))}", highlight=False)
    raise typer.Exit(code)


def diff_command(
    run_a: Annotated[str, typer.Argument(help="The earlier run: a run directory, an id, a run name, or previous.")],
    run_b: Annotated[str, typer.Argument(help="The later run: same forms, or latest.")],
    history: HistoryOption = None,
    playbook: Annotated[str | None, typer.Option(
        "--playbook", help="What latest/previous mean: the newest runs of this playbook.")] = None,
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = DiffFormat.text,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    fail_on: Annotated[Severity, typer.Option(
        "--fail-on", help="Exit 1 when a new finding (or one whose severity rose) is at or above this.")] = Severity.low,
) -> None:
    """What changed between two runs: new, resolved and changed findings; hosts that appeared, vanished or
    changed status; drift that started or stopped.

    A finding on a host the later run could not check is listed as "not verified", never as resolved.
    Exit codes: 0 nothing new at or above --fail-on, 1 something new is, 2 usage/input errors.
    """
    from toolkit.history import diff_runs, exit_code, resolve_run
    from toolkit.history.diff import RENDERERS

    near = next((Path(r) for r in (run_a, run_b) if Path(r).is_dir()), None)
    with _open(history, near) as store:
        try:
            before = store.load(resolve_run(store, run_a, playbook=playbook))
            after = store.load(resolve_run(store, run_b, playbook=playbook))
        except ToolkitError as error:
            fail(error, EXIT_USAGE)
    diff = diff_runs(before, after)
    text = RENDERERS[fmt.value](diff)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        except OSError as error:
            fail(f"{error.filename or out}: cannot write the diff: {error.strerror or error}", EXIT_USAGE)
        console.print(f"wrote {escape(str(out))}", highlight=False)
    else:
        typer.echo(text, nl=False)
    raise typer.Exit(exit_code(diff, fail_on.value))


_MARKS = {"found": "●", "clear": "·", "unchecked": "?", "absent": " "}


def trend_command(
    cause: Annotated[str, typer.Option("--cause", help="The cause id to follow (e.g. logon-right-denied).")],
    history: HistoryOption = None,
    playbook: PlaybookFilter = None,
    host: Annotated[str | None, typer.Option("--host", help="Only this host.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    last: Annotated[int, typer.Option("--last", min=1, max=500, help="The newest this many runs.")] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """One cause per server over time: a row per server that ever had it, a column per run (oldest first).

    ● found (with the terminal 401s at its sites), · checked and not found, ? host not checked (failed or
    skipped), blank: the host was not in that run.
    """
    with _open(history) as store:
        trend = store.trend(cause, playbook=playbook, host=host, since=_when(since, "--since"),
                            until=_when(until, "--until"), last=last)
    if json_output:
        typer.echo(json.dumps(trend, indent=2))
        raise typer.Exit(EXIT_OK)
    if not trend["hosts"]:
        console.print(f"{escape(cause)}: not found in the {len(trend['runs'])} matching recorded runs",
                      highlight=False)
        raise typer.Exit(EXIT_OK)
    table = Table(title=f"{escape(cause)} per server ({len(trend['runs'])} runs, oldest first)")
    table.add_column("server")
    for run in trend["runs"]:
        table.add_column(f"#{run['id']}\n{run['started_utc'][5:16].replace('T', ' ')}", justify="center")
    for name, series in trend["hosts"].items():
        cells = [f"{_MARKS['found']} {p['terminal_401']}" if p["state"] == "found" else _MARKS[p["state"]]
                 for p in series]
        table.add_row(escape(name), *cells)
    console.print(table)


def record_run(run_dir: Path, history: Path | None) -> None:
    """Index a finished (or stopped) run for `iisfleet run`. The run directory is the record: a history that
    cannot be written is a warning, never a different exit code."""
    from toolkit.history import HistoryStore, database_path, index_run, recording_enabled

    if history is None and not recording_enabled():
        return
    path = database_path(history, run_dir)
    try:
        with HistoryStore(path) as store:
            index_run(store, run_dir)
    except (ToolkitError, OSError) as error:
        err_console.print(f"[yellow]warning:[/] the run was not recorded in the history {escape(str(path))}: "
                          f"{escape(str(error))} (index it later: iisfleet runs index {escape(str(run_dir))})",
                          highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``runs``, ``diff`` and ``trend`` to the root app."""
    app.add_typer(runs_app, name="runs")
    app.command("diff", help="What changed between two runs (findings, hosts, drift); exit 1 on news at or "
                "above --fail-on.")(diff_command)
    app.command("trend", help="Follow one cause per server across recorded runs.")(trend_command)
