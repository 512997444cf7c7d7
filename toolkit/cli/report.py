"""`iisfleet report RUN_DIR`: render a run's diagnosis. Never contacts a host."""

from __future__ import annotations

import json
import zipfile
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from toolkit.cli._common import EXIT_USAGE, console, err_console, fail
from toolkit.errors import ToolkitError


class Format(str, Enum):
    text = "text"
    html = "html"
    md = "md"
    json = "json"
    csv = "csv"


class Severity(str, Enum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `iisfleet run` (or `demo`), or its `bundle export` zip.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of standard output.")
    ] = None,
    write_all: Annotated[
        bool, typer.Option("--write-all", help="Also (re)write every format into RUN_DIR/report/.")
    ] = False,
    fail_on: Annotated[
        Severity, typer.Option("--fail-on", help="Exit 1 when a finding is at or above this severity.")
    ] = Severity.low,
) -> None:
    """Explain the terminal 401s of a collected run: findings, evidence, fixes, drift, server × site matrix.

    Exit codes: 0 no findings at or above --fail-on, 1 such findings, 2 usage/input errors,
    3 some hosts could not be reached or the run stopped early (when nothing else applies; a line on
    stderr says why the run is partial).
    """
    from toolkit import report as reports
    from toolkit.bundle import opened_bundle, record_access

    is_zip = run_dir.is_file() and zipfile.is_zipfile(run_dir)  # an exported bundle: read offline, never written
    if is_zip and write_all:
        fail(f"{run_dir}: --write-all writes into a run directory, not into a zip", EXIT_USAGE)
    if not is_zip:
        _check_run_dir(run_dir)
    try:
        with opened_bundle(run_dir) as unpacked:
            model = reports.report_for_run(unpacked)
            partial = partial_run_note(unpacked, model)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
    if partial:
        err_console.print(f"[yellow]note:[/] {escape(partial)}", highlight=False)
    if not is_zip:
        record_access(run_dir, "report")
    target = run_dir / "report"
    try:
        if write_all:
            reports.write_reports(run_dir, model)
        text = reports.render(model, fmt.value)
        if out is not None:
            target = out
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
    except OSError as error:  # --out names a folder, a path under a file, a read-only place
        fail(f"{error.filename or target}: cannot write the report: {error.strerror or error}", EXIT_USAGE)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)
    else:
        typer.echo(text, nl=False)
    raise typer.Exit(reports.exit_code(model, fail_on.value))


def partial_run_note(run_dir: Path, model: dict[str, Any]) -> str | None:
    """Why the run is partial, in one line, or None for a complete run (stderr, so stdout stays the report)."""
    status = str(model.get("run", {}).get("status") or "complete")
    if status == "complete":
        return None
    try:
        on_disk = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        on_disk = None
    reasons = {
        "interrupted": "it was interrupted (Ctrl-C or SIGTERM) before every host finished",
        "deadline": "--deadline stopped it before every host finished",
        "storage-error": "the run directory could not be written, so the run stopped",
    }
    reason = reasons.get(status, f"its status is {status}")
    if on_disk == "running":
        reason = ("run.json still says 'running': the run was killed (SIGKILL, reboot, lost session) "
                  "or is still going")
    hosts = model.get("hosts", [])
    finished = sum(1 for h in hosts if h.get("status") in ("ok", "failed"))
    return (f"this run is partial: {reason}; {finished} of {len(hosts)} hosts finished, so the findings "
            "cover only what was collected (exit code 3 unless a finding applies)")


def _check_run_dir(run_dir: Path) -> None:
    """Exit 2 with a line that says what RUN_DIR is instead, and where the run directory probably is."""
    if run_dir.is_file():
        fail(f"{run_dir}: is a file, not a run directory nor a bundle zip (give the folder that holds run.json)",
             EXIT_USAGE)
    if not run_dir.is_dir():
        fail(f"{run_dir}: no such run directory", EXIT_USAGE)
    if (run_dir / "run.json").is_file():
        return
    inner = sorted(p.parent for p in run_dir.glob("*/run.json"))
    if inner:  # `demo` keeps its run in DEMO_DIR/run next to the fleet
        fail(f"{run_dir}: not a run directory (no run.json); did you mean {inner[0]}?", EXIT_USAGE)
    fail(f"{run_dir}: not a run directory (run.json is missing)", EXIT_USAGE)


def register(app: typer.Typer) -> None:
    """Add `report` to the root app."""
    app.command("report")(report)
