"""Write and read a run directory (docs/contracts.md §2).

Every file is written as soon as it is known, through a temporary file and ``os.replace``, so a run
killed at any moment leaves only complete JSON files behind. ``log.jsonl`` is appended line by line
(a torn last line is skipped when reading). Nothing here ever sees a secret: the runner hands over
envelopes, host results and parameters that were already redacted.

A run still in progress has ``status: "running"`` in ``run.json``; ``load_run`` reports a run that
never reached its end (``finished_utc`` null) as ``"interrupted"``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from toolkit.errors import InputError, StorageError
from toolkit.models import HostResult, StepError, StepResult
from toolkit.secrets import redact

RUN_SCHEMA = "iisfleet.run/1"
HOST_SCHEMA = "iisfleet.host/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Characters a host folder name keeps as they are; every other one (``_`` included, so the mapping
#: can be undone) becomes ``_`` and two hex digits per UTF-8 byte.
_KEPT = re.compile(r"[A-Za-z0-9.-]")
_ENCODED = re.compile(r"_([0-9a-f]{2})")
#: Room kept free beside run.json so the run's end can be recorded on a full disk (see ``RunDirWriter``).
RESERVE_BYTES = 256 * 1024


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _legacy_dir_name(name: str) -> str:
    """The folder name of run directories written before names were made reversible (reading only)."""
    safe = _UNSAFE.sub("_", name)
    return safe if safe not in ("", ".", "..") else f"_{safe}"


def host_dir_name(host: str) -> str:
    """A file-system-safe folder name for a host, unique and reversible (``host_from_dir_name``):
    ``web:01`` is ``web_3a01`` and ``web_01`` is ``web_5f01``, so two hosts never share a folder. A
    leading dot is encoded too (no hidden folder, never ``.`` or ``..``)."""
    out = []
    for index, char in enumerate(host):
        if _KEPT.fullmatch(char) and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append("".join(f"_{byte:02x}" for byte in char.encode("utf-8", "surrogatepass")))
    return "".join(out) or "_"


def host_from_dir_name(folder: str) -> str:
    """The host name ``host_dir_name`` made ``folder`` from."""
    if folder == "_":
        return ""
    raw = _ENCODED.sub(lambda m: f"\0{m.group(1)}", folder)  # mark encoded bytes, then decode in one go
    data = bytearray()
    parts = raw.split("\0")
    data += parts[0].encode("utf-8")
    for part in parts[1:]:
        data.append(int(part[:2], 16))
        data += part[2:].encode("utf-8")
    return data.decode("utf-8", "surrogatepass")


def default_run_dir(playbook: str, base: Path = Path("runs")) -> Path:
    """``./runs/<UTC time>-<playbook>``, made unique if two runs start within the same second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = base / f"{stamp}-{_legacy_dir_name(playbook)}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = base / f"{stamp}-{_legacy_dir_name(playbook)}-{suffix}"
    return candidate


def write_json_atomic(path: Path, document: Any, *, compact: bool = False, durable: bool = True) -> None:
    """Write ``document`` to ``path`` so a reader only ever sees the old or the complete new file.

    ``compact`` drops the indentation: envelopes carry large base64 blobs and are read by programs.
    ``durable=False`` skips the fsync: the rename alone keeps the file whole for any reader and across a
    killed process (the data is in the page cache); only a power cut could lose it. For states that a
    later durable write replaces anyway.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if compact:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(document, ensure_ascii=False, indent=1)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # errors="replace": a lone surrogate that slipped past validation must not lose the whole file
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
            handle.write(text)
            handle.write("\n")
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def error_dict(error: StepError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"category": error.category, "message": redact(error.message),
            "explanation": redact(error.explanation) if error.explanation else None}


def step_dict(step: StepResult) -> dict[str, Any]:
    return {"collector": step.collector, "status": step.status, "duration_s": round(step.duration_s, 3),
            "error": error_dict(step.error), "skipped_reason": step.skipped_reason}


def host_document(result: HostResult, *, finished: bool) -> dict[str, Any]:
    return {
        "schema": HOST_SCHEMA,
        "host": result.host,
        "address": result.address,
        "transport": result.transport,
        "status": result.status,
        "finished": finished,
        "duration_s": round(result.duration_s, 3),
        "error": error_dict(result.error),
        "steps": [step_dict(s) for s in result.steps],
        "clock_offset_s": result.clock_offset_s,
    }


class RunDirWriter:
    """Thread-safe writer for one run directory; workers call it as results arrive.

    A write that fails (disk full, quota, read-only file system) is recorded in ``storage_error`` and
    the runner stops starting work. ``write_envelope`` raises :class:`StorageError` so the step is
    failed with that category; ``write_host`` and ``log`` only record it (what is already on disk
    stays readable). A small reserve file is kept beside ``run.json`` and given back before the final
    ``write_meta(final=True)``, so even a full disk ends with ``run.json`` saying how the run ended.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        # Owner only: evidence (configurations, ACLs, account names, log excerpts) is for the operator,
        # not for every account on the controller. Files inside are created 0600 (mkstemp).
        os.chmod(self.path, 0o700)
        (self.path / "hosts").mkdir(exist_ok=True)
        self.storage_error: StorageError | None = None
        self._log_lock = threading.Lock()
        self._reserve = self.path / ".reserve"
        with open(self._reserve, "wb") as handle:
            handle.write(b"\0" * RESERVE_BYTES)
        self._log = open(os.open(self.path / "log.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),  # noqa: SIM115
                         "a", encoding="utf-8")  # closed in close()

    def _failed(self, exc: OSError, path: Path) -> StorageError:
        error = StorageError(f"cannot write the run directory: {exc.strerror or exc} ({path})", path=str(path),
                             explanation="free space on the disk holding the run directory (or choose another "
                             "--out); hosts already collected are in the run directory and `iisfleet report` "
                             "reads them")
        with self._log_lock:
            if self.storage_error is None:
                self.storage_error = error
        return error

    def write_meta(self, meta: dict[str, Any], *, final: bool = False) -> None:
        target = self.path / "run.json"
        try:
            write_json_atomic(target, {"schema": RUN_SCHEMA, **meta})
        except OSError as exc:
            if not final:
                raise self._failed(exc, target) from None
            self._release_reserve()
            try:
                write_json_atomic(target, {"schema": RUN_SCHEMA, **meta})
            except OSError as again:
                raise self._failed(again, target) from None

    def host_path(self, host: str) -> Path:
        return self.path / "hosts" / host_dir_name(host)

    def write_envelope(self, host: str, collector_id: str, envelope: dict[str, Any]) -> None:
        target = self.host_path(host) / f"{host_dir_name(collector_id)}.json"
        try:
            write_json_atomic(target, envelope, compact=True)
        except OSError as exc:
            raise self._failed(exc, target) from None

    def write_host(self, result: HostResult, *, finished: bool) -> None:
        # A host's in-between states (after each step) are replaced by its final one: only that one is
        # fsynced, which halves the fsyncs per host; a killed run still finds every state on disk.
        target = self.host_path(result.host) / "host.json"
        try:
            write_json_atomic(target, host_document(result, finished=finished), durable=finished)
        except OSError as exc:
            self._failed(exc, target)

    def log(self, event: str, **fields: Any) -> None:
        """Append one event. String values are redacted; callers never pass secrets anyway."""
        record = {"time_utc": utc_now(), "event": event}
        for key, value in fields.items():
            record[key] = redact(value) if isinstance(value, str) else value
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._log_lock:
            if not self._log.closed and self.storage_error is None:
                try:
                    self._log.write(line + "\n")
                    self._log.flush()
                except OSError as exc:
                    failed = exc
                else:
                    return
            else:
                return
        self._failed(failed, self.path / "log.jsonl")

    def _release_reserve(self) -> None:
        try:
            self._reserve.unlink()
        except OSError:
            pass

    def close(self) -> None:
        with self._log_lock:
            try:
                self._log.close()
            except OSError:  # the last buffered line could not be written: the disk is full
                pass
        self._release_reserve()


# ---------------------------------------------------------------------- reading
@dataclass
class HostRecord:
    """One host as a run directory recorded it."""

    name: str
    status: str
    address: str = ""
    transport: str = ""
    error: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: bool = True


@dataclass
class RunData:
    """A run directory loaded into memory: ``meta`` is run.json, ``hosts`` by host name."""

    path: Path
    meta: dict[str, Any]
    hosts: dict[str, HostRecord]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.meta.get("status", "interrupted"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    except UnicodeDecodeError:
        raise InputError("not valid JSON: the file is not UTF-8 text", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    """``_read_json`` for files that must hold one JSON object (host.json, collector envelopes)."""
    document = _read_json(path)
    if not isinstance(document, dict):
        raise InputError(f"expected a JSON object ({what}), found {type(document).__name__}", path=str(path))
    return document


def load_run(path: Path) -> RunData:
    """Read a run directory, complete or not (a killed run reads as ``interrupted``)."""
    path = Path(path)
    meta_path = path / "run.json"
    if not meta_path.is_file():
        raise InputError("not a run directory (no run.json)", path=str(path))
    meta = _read_json(meta_path)
    if not isinstance(meta, dict) or meta.get("schema") != RUN_SCHEMA:
        raise InputError(f"run.json is not an {RUN_SCHEMA} document", path=str(meta_path), field="schema")
    if meta.get("status") == "running" or not meta.get("finished_utc"):
        meta["status"] = "interrupted"

    host_names = meta.get("hosts", [])
    if not isinstance(host_names, list) or not all(isinstance(name, str) for name in host_names):
        raise InputError("expected a list of host names", path=str(meta_path), field="hosts")
    hosts: dict[str, HostRecord] = {}
    by_dir = {_legacy_dir_name(name): name for name in host_names}
    by_dir.update({host_dir_name(name): name for name in host_names})
    hosts_root = path / "hosts"
    for name in host_names:
        # a host with no folder never started before the run ended
        hosts[name] = HostRecord(name=name, status="skipped", finished=False)
    if hosts_root.is_dir():
        for folder in sorted(p for p in hosts_root.iterdir() if p.is_dir()):
            name = by_dir.get(folder.name, folder.name)
            record = HostRecord(name=name, status="partial", finished=False)
            host_json = folder / "host.json"
            if host_json.is_file():
                doc = _read_json_object(host_json, HOST_SCHEMA)
                if not isinstance(doc.get("host", name), str):
                    raise InputError("expected the host name as a string", path=str(host_json), field="host")
                record = HostRecord(name=doc.get("host", name), status=doc.get("status", "partial"),
                                    address=doc.get("address", ""), transport=doc.get("transport", ""),
                                    error=doc.get("error"), steps=list(doc.get("steps", [])),
                                    finished=bool(doc.get("finished", True)))
            for envelope_path in sorted(folder.glob("*.json")):
                if envelope_path.name == "host.json":
                    continue
                envelope = _read_json_object(envelope_path, "a collector envelope")
                record.envelopes[envelope_path.stem] = envelope
            if not record.finished and record.status == "ok":
                record.status = "partial"  # steps were still to come when the run stopped
            if not host_json.is_file() and not record.envelopes:
                record.status = "skipped"  # the folder was made, nothing in it was ever written (full disk)
            hosts[record.name] = record

    events: list[dict[str, Any]] = []
    log_path = path / "log.jsonl"
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a killed run
    return RunData(path=path, meta=meta, hosts=hosts, events=events)
