"""The run-history database: SQLite in WAL mode, one transaction per indexed run.

Crash safety: each run is written inside one ``BEGIN IMMEDIATE … COMMIT``; SQLite's write-ahead log makes a
process killed mid-write leave the database as it was before that transaction (the next opener rolls the
torn tail of the log back). ``synchronous=FULL`` also keeps committed runs across a power cut. Several
processes may index at once (a cron sweep and an admin's manual run): writers wait up to ``BUSY_TIMEOUT_MS``.

Re-indexing the same run directory replaces its rows, so indexing is idempotent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import InputError, UsageError
from toolkit.history.record import DriftRow, FindingRow, HostRow, RunRecord
from toolkit.rundir import utc_now

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    playbook TEXT NOT NULL,
    status TEXT NOT NULL,
    started_utc TEXT NOT NULL,
    finished_utc TEXT,
    inventory TEXT,
    simulated INTEGER NOT NULL DEFAULT 0,
    hosts_total INTEGER NOT NULL,
    hosts_ok INTEGER NOT NULL,
    hosts_partial INTEGER NOT NULL,
    hosts_failed INTEGER NOT NULL,
    hosts_skipped INTEGER NOT NULL,
    findings INTEGER NOT NULL,
    indexed_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_utc);
CREATE INDEX IF NOT EXISTS runs_playbook ON runs (playbook, started_utc);
CREATE TABLE IF NOT EXISTS hosts (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    error_category TEXT NOT NULL,
    error_message TEXT NOT NULL,
    requests INTEGER NOT NULL,
    terminal_401 INTEGER NOT NULL,
    PRIMARY KEY (run_id, host)
);
CREATE INDEX IF NOT EXISTS hosts_host ON hosts (host);
CREATE TABLE IF NOT EXISTS findings (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    cause TEXT NOT NULL,
    site TEXT NOT NULL,
    scope TEXT NOT NULL,
    substatus TEXT NOT NULL,
    severity TEXT NOT NULL,
    confidence TEXT NOT NULL,
    finding_id TEXT NOT NULL,
    title TEXT NOT NULL,
    terminal_401 INTEGER NOT NULL,
    site_terminal_401 INTEGER NOT NULL,
    PRIMARY KEY (run_id, host, cause, site, scope, substatus)
);
CREATE INDEX IF NOT EXISTS findings_cause ON findings (cause, host);
CREATE TABLE IF NOT EXISTS drift (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    site TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    others_value TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (run_id, host, site, attribute)
);
"""

_RUN_COLUMNS = "id, path, name, playbook, status, started_utc, finished_utc, inventory, simulated"


@dataclass(frozen=True)
class RunSummaryRow:
    """One line of ``iisfleet runs list``."""

    id: int
    path: str
    name: str
    playbook: str
    status: str
    started_utc: str
    finished_utc: str | None
    hosts_total: int
    hosts_ok: int
    hosts_partial: int
    hosts_failed: int
    hosts_skipped: int
    findings: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class HistoryStore:
    """An open history database. Use as a context manager, or call ``close()``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            if self.path.exists() and self.path.is_dir():
                raise UsageError(f"{self.path}: the history database path is a folder; name a file")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE … COMMIT) below.
            self._db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot use the run-history database: {exc}", path=str(path),
                             explanation="the file is not an iisfleet history database, or it is damaged; "
                                         "move it aside and re-index the runs with `iisfleet runs index`") from None

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"written by a newer iisfleet (schema {version}, this one knows "
                                        f"{SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ writing
    def save(self, record: RunRecord) -> int:
        """Store (or replace) one run; returns its id. All of it or nothing is written."""
        with self._transaction() as db:
            values = (record.name, record.playbook, record.status, record.started_utc, record.finished_utc,
                      record.inventory, int(record.simulated), len(record.hosts), record.count("ok"),
                      record.count("partial"), record.count("failed"), record.count("skipped"),
                      len({f.finding_id or "|".join(f.key) for f in record.findings}), utc_now())
            existing = db.execute("SELECT id FROM runs WHERE path = ?", (record.path,)).fetchone()
            if existing is None:
                cursor = db.execute(
                    "INSERT INTO runs (name, playbook, status, started_utc, finished_utc, inventory, simulated, "
                    "hosts_total, hosts_ok, hosts_partial, hosts_failed, hosts_skipped, findings, indexed_utc, path) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*values, record.path))
                run_id = int(cursor.lastrowid or 0)
            else:  # re-indexed: keep the id admins already quote
                run_id = int(existing[0])
                db.execute("UPDATE runs SET name = ?, playbook = ?, status = ?, started_utc = ?, finished_utc = ?, "
                           "inventory = ?, simulated = ?, hosts_total = ?, hosts_ok = ?, hosts_partial = ?, "
                           "hosts_failed = ?, hosts_skipped = ?, findings = ?, indexed_utc = ? WHERE id = ?",
                           (*values, run_id))
                for table in ("hosts", "findings", "drift"):
                    db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.executemany("INSERT INTO hosts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(run_id, h.host, h.address, h.status, h.error_category, h.error_message, h.requests,
                             h.terminal_401) for h in record.hosts])
            db.executemany("INSERT OR REPLACE INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(run_id, f.host, f.cause, f.site, f.scope, f.substatus, f.severity, f.confidence,
                             f.finding_id, f.title, f.terminal_401, f.site_terminal_401) for f in record.findings])
            db.executemany("INSERT OR REPLACE INTO drift VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(run_id, d.host, d.site, d.attribute, d.value, d.others_value, d.score)
                            for d in record.drift])
        record.id = run_id
        return run_id

    # ------------------------------------------------------------------ reading
    def list_runs(self, *, playbook: str | None = None, host: str | None = None, cause: str | None = None,
                  since: str | None = None, until: str | None = None, limit: int | None = None) -> list[RunSummaryRow]:
        """Runs, newest first. ``since``/``until`` are ISO 8601 UTC strings compared with the start time."""
        where, args = self._filters(playbook=playbook, host=host, cause=cause, since=since, until=until)
        sql = ("SELECT id, path, name, playbook, status, started_utc, finished_utc, hosts_total, hosts_ok, "
               "hosts_partial, hosts_failed, hosts_skipped, findings FROM runs"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY started_utc DESC, id DESC")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [RunSummaryRow(*row) for row in self._db.execute(sql, args)]

    @staticmethod
    def _filters(*, playbook: str | None, host: str | None, cause: str | None, since: str | None,
                 until: str | None) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if playbook:
            where.append("playbook = ?")
            args.append(playbook)
        if host:
            where.append("id IN (SELECT run_id FROM hosts WHERE host = ? COLLATE NOCASE)")
            args.append(host)
        if cause:
            where.append("id IN (SELECT run_id FROM findings WHERE cause = ?)")
            args.append(cause)
        if since:
            where.append("started_utc >= ?")
            args.append(since)
        if until:
            where.append("started_utc <= ?")
            args.append(until)
        return where, args

    def run_id_for_path(self, path: Path) -> int | None:
        row = self._db.execute("SELECT id FROM runs WHERE path = ?", (str(Path(path).resolve()),)).fetchone()
        return None if row is None else int(row[0])

    def run_ids_named(self, name: str) -> list[int]:
        return [int(r[0]) for r in self._db.execute("SELECT id FROM runs WHERE name = ? ORDER BY id", (name,))]

    def load(self, run_id: int) -> RunRecord:
        row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(f"run #{run_id} is not in the history database")
        record = RunRecord(id=row[0], path=row[1], name=row[2], playbook=row[3], status=row[4], started_utc=row[5],
                           finished_utc=row[6], inventory=row[7], simulated=bool(row[8]))
        record.hosts = [HostRow(*r) for r in self._db.execute(
            "SELECT host, status, address, error_category, error_message, requests, terminal_401 FROM hosts "
            "WHERE run_id = ? ORDER BY host", (run_id,))]
        record.findings = [FindingRow(*r) for r in self._db.execute(
            "SELECT host, cause, site, scope, substatus, severity, confidence, finding_id, title, terminal_401, "
            "site_terminal_401 FROM findings WHERE run_id = ? ORDER BY host, cause, site, scope, substatus",
            (run_id,))]
        record.drift = [DriftRow(*r) for r in self._db.execute(
            "SELECT host, site, attribute, value, others_value, score FROM drift WHERE run_id = ? "
            "ORDER BY host, site, attribute", (run_id,))]
        return record

    def trend(self, cause: str, *, playbook: str | None = None, host: str | None = None, since: str | None = None,
              until: str | None = None, last: int = 10) -> dict[str, Any]:
        """Per server over the ``last`` runs (oldest first): whether ``cause`` was found, its severity and the
        terminal 401s at the sites it was found on. Hosts that never had the cause are left out."""
        runs = list(reversed(self.list_runs(playbook=playbook, since=since, until=until, limit=last)))
        run_ids = [r.id for r in runs]
        if not run_ids:
            return {"cause": cause, "runs": [], "hosts": {}}
        marks = ",".join("?" * len(run_ids))
        found: dict[str, dict[int, dict[str, Any]]] = {}
        host_clause = " AND host = ? COLLATE NOCASE" if host else ""
        for run_id, name, severity, terminal in self._db.execute(
                f"SELECT run_id, host, severity, SUM(site_terminal_401) FROM findings WHERE cause = ? AND run_id IN "
                f"({marks}){host_clause} GROUP BY run_id, host, severity ORDER BY host",
                [cause, *run_ids, *([host] if host else [])]):
            found.setdefault(name, {})[run_id] = {"severity": severity, "terminal_401": int(terminal or 0)}
        statuses: dict[tuple[int, str], str] = {}
        if found:
            names = sorted(found)
            for run_id, name, status in self._db.execute(
                    f"SELECT run_id, host, status FROM hosts WHERE run_id IN ({marks}) AND host IN "
                    f"({','.join('?' * len(names))})", [*run_ids, *names]):
                statuses[(run_id, name)] = status
        hosts: dict[str, list[dict[str, Any]]] = {}
        for name in sorted(found):
            series = []
            for run in runs:
                status = statuses.get((run.id, name))
                if run.id in found[name]:
                    series.append({"run": run.id, "state": "found", **found[name][run.id]})
                elif status in ("ok", "partial"):
                    series.append({"run": run.id, "state": "clear"})
                elif status is None:
                    series.append({"run": run.id, "state": "absent"})  # not in that run's selection
                else:
                    series.append({"run": run.id, "state": "unchecked", "host_status": status})
            hosts[name] = series
        return {"cause": cause,
                "runs": [{"id": r.id, "name": r.name, "playbook": r.playbook, "started_utc": r.started_utc,
                          "status": r.status} for r in runs],
                "hosts": hosts}

    def latest_ids(self, *, playbook: str | None = None, count: int = 2) -> Sequence[int]:
        return [r.id for r in self.list_runs(playbook=playbook, limit=count)]

    def pragma(self, name: str) -> Any:
        """A PRAGMA's value (tests and `runs list --verbose` read ``journal_mode``)."""
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]
