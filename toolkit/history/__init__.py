"""Run history: every run indexed into a SQLite database, diffs between runs, trends of a cause over time.

Where the database lives (first that applies): an explicit path (``--history``), the ``IISFLEET_HISTORY``
environment variable, else ``history.sqlite`` next to the runs (the run directory's parent folder; for
commands that name no run directory, ``./runs/history.sqlite``, beside the default run folders).
``IISFLEET_HISTORY=off`` stops ``iisfleet run`` from recording.

Docs: docs/history.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.errors import UsageError
from toolkit.history.diff import diff_runs, exit_code
from toolkit.history.record import RunRecord, record_from_run_dir
from toolkit.history.store import HistoryStore

DB_NAME = "history.sqlite"
ENV = "IISFLEET_HISTORY"
DEFAULT_RUNS_BASE = Path("runs")

__all__ = ["DB_NAME", "HistoryStore", "RunRecord", "database_path", "diff_runs", "exit_code", "index_run",
           "recording_enabled", "resolve_run"]


def recording_enabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("off", "0", "no", "false")


def database_path(explicit: Path | None = None, near_run: Path | None = None) -> Path:
    """The database to use: ``explicit``, else ``$IISFLEET_HISTORY``, else beside ``near_run`` (a run
    directory), else ``./runs/history.sqlite``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(ENV, "").strip()
    if env and recording_enabled():
        return Path(env)
    if near_run is not None:
        return Path(near_run).resolve().parent / DB_NAME
    return DEFAULT_RUNS_BASE / DB_NAME


def index_run(store: HistoryStore, run_dir: Path) -> int:
    """Index (or re-index) one run directory; returns its id."""
    return store.save(record_from_run_dir(run_dir))


def resolve_run(store: HistoryStore, ref: str, *, playbook: str | None = None) -> int:
    """A run named on the command line → its id. ``ref`` is a run directory (indexed now if it is not yet,
    re-indexed if it changed since), ``#12`` or ``12`` (an id), a run folder's name, ``latest`` or
    ``previous`` (the newest and second newest run, of ``playbook`` when given)."""
    path = Path(ref)
    if path.is_dir() and (path / "run.json").is_file():
        return index_run(store, path)
    text = ref.strip()
    if text in ("latest", "previous"):
        ids = store.latest_ids(playbook=playbook, count=2)
        wanted = 0 if text == "latest" else 1
        if len(ids) <= wanted:
            scope = f" of playbook {playbook!r}" if playbook else ""
            raise UsageError(f"there is no {text} run{scope} in the history database ({len(ids)} recorded)")
        return ids[wanted]
    digits = text.removeprefix("#")
    if digits.isdigit():
        store.load(int(digits))  # raises a clear error for an unknown id
        return int(digits)
    named = store.run_ids_named(path.name)
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise UsageError(f"{ref!r} names {len(named)} recorded runs (ids {', '.join(map(str, named))}); use an id")
    raise UsageError(f"{ref!r} is neither a run directory nor a run in the history database",
                     explanation="name a run directory, an id from `iisfleet runs list`, latest or previous")
