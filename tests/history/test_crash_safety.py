"""The history database survives a writer killed mid-write (SIGKILL, no chance to clean up).

A real writer process indexes large runs in a loop, saying when each transaction starts and commits; the
test kills it halfway through a transaction (timed from the writer's own previous transactions), several
times over the same database. Afterwards: SQLite's integrity check passes, the database is still in WAL
mode, every run it holds is complete (all hosts and findings), no committed run is lost, and the next
writer carries on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from toolkit.history import HistoryStore

HOSTS = 4000

WRITER = f"""
import sys
from toolkit.history import HistoryStore
from toolkit.history.record import FindingRow, HostRow, RunRecord

store = HistoryStore(sys.argv[1])
start = int(sys.argv[2])
hosts = [HostRow(host=f"web{{i:05d}}", status="ok", address="10.0.0.1") for i in range({HOSTS})]
findings = [FindingRow(host=h.host, cause="logon-right-denied", site="Default Web Site", scope="/",
                       substatus="401.1", severity="high", site_terminal_401=7) for h in hosts]
for n in range(start, start + 10_000):
    record = RunRecord(path=f"/runs/{{n}}", name=str(n), playbook="triage-401", status="complete",
                       started_utc=f"2026-12-01T00:00:{{n % 60:02d}}Z", finished_utc=None, hosts=hosts,
                       findings=findings)
    print("begin", n, flush=True)
    store.save(record)
    print("commit", n, flush=True)
"""


def _kill_mid_transaction(db: Path, start: int) -> int:
    """Start a writer, kill it inside a transaction; returns the last run it reported committed."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(start)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    committed, durations, began = start - 1, [], 0.0
    try:
        for line in writer.stdout:
            word, number = line.split()
            if word == "begin":
                began = time.perf_counter()
                if len(durations) >= 3:
                    time.sleep(sum(durations) / len(durations) / 2)  # halfway through this transaction
                    writer.send_signal(signal.SIGKILL)
                    break
            else:
                durations.append(time.perf_counter() - began)
                committed = int(number)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    return committed


def test_a_killed_writer_leaves_a_sound_database(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    start, written, in_flight = 0, set(), set()
    for _ in range(3):
        committed = _kill_mid_transaction(db, start)
        assert committed >= start + 2
        written |= set(range(start, committed + 1))
        in_flight.add(committed + 1)  # killed inside its transaction, or just after COMMIT under heavy load
        with HistoryStore(db) as store:
            assert store.pragma("integrity_check") == "ok"
            assert store.pragma("journal_mode") == "wal"
            runs = store.list_runs()
            names = {int(r.name) for r in runs}
            assert written <= names, "a committed run was lost"
            assert names <= written | in_flight, "a run appeared that was never written"
            for row in runs:
                assert row.hosts_total == HOSTS
            for run_id in (runs[0].id, runs[-1].id):  # the newest may be the one that was being written
                record = store.load(run_id)
                assert len(record.hosts) == HOSTS and len(record.findings) == HOSTS
        start = committed + 2
    assert os.path.getsize(db) > 0
