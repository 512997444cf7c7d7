"""`iisfleet report RUN_DIR`: render a run's diagnosis. Never contacts a host."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._common import EXIT_USAGE, console, fail
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
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `iisfleet run` (or `demo`).")],
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
    3 some hosts could not be reached (when nothing else applies).
    """
    from toolkit import report as reports

    _check_run_dir(run_dir)
    try:
        model = reports.report_for_run(run_dir)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
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


def _check_run_dir(run_dir: Path) -> None:
    """Exit 2 with a line that says what RUN_DIR is instead, and where the run directory probably is."""
    if run_dir.is_file():
        fail(f"{run_dir}: is a file, not a run directory (give the folder that holds run.json)", EXIT_USAGE)
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
