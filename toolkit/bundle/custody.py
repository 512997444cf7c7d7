"""The custody log: ``custody.jsonl``, one JSON entry per line, each holding the previous entry's hash.

An entry's ``sha256`` is the SHA-256 of its canonical JSON (sorted keys, no spaces) without the
``sha256`` key; ``prev_sha256`` is the previous entry's ``sha256`` (64 zeros for the first). Editing,
removing or reordering any entry but the last breaks the chain at a named entry. Entries are only ever
appended (the file is opened in append mode); nothing here rewrites it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.rundir import utc_now
from toolkit.secrets import redact

CUSTODY_FILE = "custody.jsonl"
GENESIS = "0" * 64


def entry_hash(entry: dict[str, Any]) -> str:
    body = {key: value for key, value in entry.items() if key != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")).hexdigest()


def controller_identity() -> dict[str, str]:
    """Who and where iisfleet runs: the controller's host name and the operating-system account."""
    try:
        operator = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without passwd entry)
        operator = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"controller": socket.gethostname(), "operator": operator}


def read_entries(text: str) -> list[Any]:
    """Each line parsed, or the line's text when it is not a JSON object (verify names it)."""
    entries: list[Any] = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = line
        entries.append(value if isinstance(value, dict) else line)
    return entries


def _last_hash(path: Path) -> tuple[int, str]:
    if not path.is_file():
        return 0, GENESIS
    entries = read_entries(path.read_text(encoding="utf-8", errors="replace"))
    if not entries:
        return 0, GENESIS
    last = entries[-1]
    # a damaged last line is chained to as it stands, so the damage stays visible to verify
    digest = last.get("sha256") if isinstance(last, dict) else None
    return len(entries), digest if isinstance(digest, str) else hashlib.sha256(str(last).encode()).hexdigest()


def append_entry(run_dir: Path, action: str, **details: Any) -> dict[str, Any]:
    """Append one entry (``action``: collection, verification, export, access) to RUN_DIR's log."""
    path = Path(run_dir) / CUSTODY_FILE
    count, previous = _last_hash(path)
    entry: dict[str, Any] = {"seq": count + 1, "time_utc": utc_now(), "action": action,
                             "tool": f"iisfleet {__version__}", **controller_identity(),
                             "details": {k: redact(v) if isinstance(v, str) else v for k, v in details.items()},
                             "prev_sha256": previous}
    entry["sha256"] = entry_hash(entry)
    # owner-only like every file of a run directory (toolkit.rundir)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def record_access(run_dir: Path, command: str) -> None:
    """Note that ``command`` read a sealed run directory; a run without a custody log is left alone.
    Best effort: a read-only copy of a bundle can still be reported on."""
    if not (Path(run_dir) / CUSTODY_FILE).is_file():
        return
    try:
        append_entry(run_dir, "access", command=command)
    except OSError:
        pass
