"""Reports: render a run's diagnosis as text, Markdown, HTML, JSON or CSV.

``build_report`` makes the deterministic report model; ``render`` turns it into one format;
``write_reports`` does the whole job for a run directory (load, diagnose, render every format into
``RUN_DIR/report/``). Nothing here contacts a host.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from toolkit.report.html import render_html
from toolkit.report.model import REPORT_SCHEMA, SEVERITIES, build_report, exit_code
from toolkit.report.render import render_csv, render_json, render_markdown, render_text

RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "text": render_text,
    "md": render_markdown,
    "html": render_html,
    "json": render_json,
    "csv": render_csv,
}

#: File names written into RUN_DIR/report/ for each format.
FILE_NAMES = {"text": "report.txt", "md": "report.md", "html": "report.html", "json": "report.json",
              "csv": "findings.csv"}

__all__ = ["FILE_NAMES", "REPORT_SCHEMA", "RENDERERS", "SEVERITIES", "build_report", "exit_code",
           "render", "report_for_run", "run_hosts_of", "write_reports"]


def render(report: Mapping[str, Any], fmt: str) -> str:
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(RENDERERS)}") from None
    return renderer(report)


def report_for_run(run_dir: Path) -> dict[str, Any]:
    """Load a run directory, diagnose it and return the report model."""
    from toolkit.diagnose import diagnose_run
    from toolkit.rundir import load_run

    run = load_run(run_dir)
    diagnosis = diagnose_run(run)
    return build_report(run.meta, diagnosis.to_dict(), run_hosts_of(run))


def run_hosts_of(run: Any) -> dict[str, dict[str, Any]]:
    """What the report needs from a loaded run directory's hosts: address and structured error."""
    return {name: {"address": getattr(record, "address", ""), "error": getattr(record, "error", None)}
            for name, record in run.hosts.items()}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(run_dir: Path, report: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write every format into ``run_dir/report/``; returns format → path."""
    model = report if report is not None else report_for_run(run_dir)
    written = {}
    for fmt, name in FILE_NAMES.items():
        path = Path(run_dir) / "report" / name
        _atomic_write(path, render(model, fmt))
        written[fmt] = path
    return written
