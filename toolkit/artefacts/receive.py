"""Receive the chunked raw-artefact stream of one step (docs/bundle.md, "Raw artefacts").

The collector writes a stream of envelope parts: file headers (``data.artefacts``), then each file's
chunks one part at a time (``data.chunks``, offset order, files never interleaved), then a final part with
the totals. ``ArtefactReceiver.feed`` takes one part (one WinRM output object, one SSH line) at a time:

* a chunk is decoded, its length and SHA-256 checked, and written straight into
  ``<artefacts>/<kind>/<name>.partial`` at its offset; a small sidecar ``<name>.partial.json`` then records
  the header and how many bytes arrived, so an interrupted transfer resumes from there (``have_from_disk``);
* the whole file is hashed while it arrives; at its last byte the hash is compared with the host's header
  and the file is renamed into place, or refused (``<name>.refused``, an ``integrity`` error naming it);
* the part itself is kept without the chunk's content, so the step's evidence (``hosts/<host>/
  Get-IisRawArtefact.json``) holds the headers and the summary only.

Only the part being handled is in memory: one chunk (at most 16 MiB raw, its encoded text and decoded
bytes), whatever the size of the file. ``index.json`` beside the files lists every artefact with the
host's and the controller's SHA-256, its times and owner; sealing copies it into the host manifest.
Host output is untrusted: header fields are checked, names are made safe (every path component encoded
as ``toolkit.rundir.host_dir_name`` encodes a host folder, so nothing can climb out of the folder), a
file holding a credential the run knows is deleted, never kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from toolkit.bundle.integrity import integrity_error
from toolkit.errors import ContractError, StorageError, ToolkitError
from toolkit.rundir import host_dir_name, write_json_atomic
from toolkit.secrets import StreamSecretScanner

log = logging.getLogger(__name__)

RAW_ARTEFACT_COLLECTOR = "Get-IisRawArtefact"
#: The folder, inside ``hosts/<host>/``, that receives the files.
ARTEFACT_DIR = "artefacts"
INDEX_FILE = "index.json"
INDEX_SCHEMA = "iisfleet.artefacts/1"
PARTIAL_SUFFIX = ".partial"
STATE_SUFFIX = ".partial.json"
REFUSED_SUFFIX = ".refused"
KINDS = frozenset({"w3c", "httperr", "config", "webconfig", "freb", "evtx", "secedit"})
#: The protocol clamps chunks to 16 MiB; a chunk declaring more is refused before it is decoded.
MAX_CHUNK_BYTES = 16 * 1024 * 1024
#: One part's text: a 16 MiB chunk as gzip+base64 (incompressible: 4/3 of it, plus gzip's few bytes) and
#: its JSON frame. A larger part is refused unread.
MAX_PART_CHARS = MAX_CHUNK_BYTES * 4 // 3 + 1024 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_READ_PIECE = 1 << 20


def streams_artefacts(collector_id: str) -> bool:
    """Whether a collector's output is the chunked raw-artefact stream (received by ``ArtefactReceiver``)."""
    return collector_id == RAW_ARTEFACT_COLLECTOR


def local_name(kind: str, host_path: str) -> str:
    """Where a host file goes, relative to the artefacts folder: ``<kind>/<component>/...``, every
    component encoded like a host folder name (reversible; no ``..``, no hidden file, no drive colon)."""
    components = [part for part in re.split(r"[\\/]+", host_path) if part]
    return "/".join([kind if kind in KINDS else "other"] + [host_dir_name(part) for part in components or ["_"]])


def read_index(artefact_dir: Path) -> dict[str, dict[str, Any]]:
    """``index.json`` of an artefacts folder: local path (relative to it) → record. Empty when absent
    or unreadable (a killed run's torn index is rebuilt from what the host sends next)."""
    try:
        document = json.loads((artefact_dir / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, list):
        return {}
    return {item["path"]: item for item in files if isinstance(item, dict) and isinstance(item.get("path"), str)}


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(state, dict) and isinstance(state.get("header"), dict)
            and isinstance(state.get("received"), int)):
        return None
    return state


def have_from_disk(artefact_dir: Path) -> list[dict[str, Any]]:
    """The collector's ``Have`` parameter: every file already complete, and every partial file with the
    bytes that are really on disk (never more than its sidecar says)."""
    have: list[dict[str, Any]] = []
    if not artefact_dir.is_dir():
        return have
    for record in read_index(artefact_dir).values():
        if record.get("status") == "complete" and (artefact_dir / record["path"]).is_file():
            have.append({"path": record["host_path"], "size": record["size"], "sha256": record["sha256"],
                         "received": record["size"]})
    for state_path in sorted(artefact_dir.rglob("*" + STATE_SUFFIX)):
        state = _read_state(state_path)
        data = state_path.with_name(state_path.name[:-len(".json")])
        if state is None or not data.is_file():
            continue
        header = state["header"]
        received = min(state["received"], data.stat().st_size)
        have.append({"path": header["host_path"], "size": header["size"], "sha256": header["sha256"],
                     "received": received})
    return have


def have_lines(have: list[dict[str, Any]]) -> list[str]:
    """``Have`` as the collector takes it: one ``<sha256>TAB<size>TAB<received>TAB<host path>`` per file
    (a plain string array travels alike over WinRM, SSH and a JEA function; docs/raw-artefacts.md)."""
    return [f"{item['sha256']}\t{item['size']}\t{item['received']}\t{item['path']}" for item in have]


def _check_header(header: Any) -> str | None:
    """What is wrong with a file header, or None."""
    if not isinstance(header, dict):
        return "a file header is not an object"
    for key in ("file_id", "host_path", "kind", "status"):
        if not isinstance(header.get(key), str) or not header[key]:
            return f"file header without {key}"
    for key in ("size", "start_offset", "chunk_bytes"):
        value = header.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"file header {header['file_id']}: {key} must be a non-negative integer"
    if header["status"] in ("send", "changed", "already-collected") and not (
            isinstance(header.get("sha256"), str) and _SHA256_HEX.fullmatch(header["sha256"])):
        return f"file header {header['file_id']}: sha256 must be 64 lower-case hex digits"
    if header.get("start_offset", 0) > header.get("size", 0):
        return f"file header {header['file_id']}: start_offset is past the end of the file"
    return None


class _Incoming:
    """The one file being written."""

    def __init__(self, header: dict[str, Any], final: Path) -> None:
        self.header = header
        self.final = final
        self.partial = final.with_name(final.name + PARTIAL_SUFFIX)
        self.state = final.with_name(final.name + STATE_SUFFIX)
        self.digest = hashlib.sha256()
        self.scanner = StreamSecretScanner()
        self.received = 0
        self.handle: Any = None
        self.holds_secret = False

    def open(self, start: int) -> None:
        """Open the partial file at ``start``: the bytes before it (an earlier attempt's) are hashed again."""
        self.final.parent.mkdir(parents=True, exist_ok=True)
        if start == 0:
            self.handle = open(self.partial, "wb")  # noqa: SIM115 - closed in close()
        else:
            self.handle = open(self.partial, "r+b")  # noqa: SIM115
            self.handle.truncate(start)
            while self.handle.tell() < start:
                piece = self.handle.read(min(_READ_PIECE, start - self.handle.tell()))
                if not piece:
                    break
                self.digest.update(piece)
                self.holds_secret = self.holds_secret or self.scanner.feed(piece)
            self.handle.seek(start)
        self.received = start
        self.save_state()

    def write(self, raw: bytes) -> None:
        self.handle.write(raw)
        self.handle.flush()
        self.digest.update(raw)
        self.holds_secret = self.holds_secret or self.scanner.feed(raw)
        self.received += len(raw)
        self.save_state()

    def save_state(self) -> None:
        # not fsynced: it survives a killed process (page cache); a power cut costs a resend, never a wrong byte,
        # because a resume re-hashes what is on disk against the host's hash of the same prefix
        write_json_atomic(self.state, {"header": self.header, "received": self.received}, durable=False)

    def close(self, *, durable: bool = False) -> None:
        if self.handle is not None:
            if durable:
                os.fsync(self.handle.fileno())
            self.handle.close()
            self.handle = None


class ArtefactReceiver:
    """One step's chunked stream, received into ``artefact_dir`` (``hosts/<host>/artefacts``)."""

    def __init__(self, artefact_dir: Path, *, host: str, collector: str = RAW_ARTEFACT_COLLECTOR) -> None:
        self.dir = Path(artefact_dir)
        self.host = host
        self.collector = collector
        self.index = read_index(self.dir)
        #: integrity refusals of this step, as ``{field, host_path, reason}`` (toolkit.bundle.integrity)
        self.refused: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.bytes_written = 0
        self._lines: list[str] = []
        self._headers: dict[str, dict[str, Any]] = {}
        self._local: dict[str, str] = {}  # file_id -> local path (relative to dir)
        self._current: _Incoming | None = None
        self._done: set[str] = set()  # file ids finished or refused in this attempt
        self._seen: set[str] = set()  # the data keys the parts of this attempt carried

    # ------------------------------------------------------------------ the stream
    def feed(self, text: str) -> None:
        """One output object. Never raises for host faults (they become errors); ``StorageError`` when the
        run directory cannot be written."""
        if len(text) > MAX_PART_CHARS:
            self._error("other", "", f"an output part of {len(text):,} characters is over the "
                        f"{MAX_PART_CHARS:,} cap for one chunk; it was dropped")
            return
        try:
            part = json.loads(text)
        except ValueError:
            part = None
        data = part.get("data") if isinstance(part, dict) and isinstance(part.get("part"), dict) else None
        if not isinstance(data, dict):
            self._lines.append(text)  # not a part: the contract check says what it is
            return
        self._seen.update(data)
        if isinstance(data.get("artefacts"), list):
            for header in data["artefacts"]:
                self._header(header)
        if isinstance(data.get("chunks"), list):
            for chunk in data["chunks"]:
                self._chunk(chunk)
            part["data"] = dict(data, chunks=[])
            self._lines.append(json.dumps(part, ensure_ascii=False, separators=(",", ":")))
            return
        self._lines.append(text)

    def restart(self) -> None:
        """The stream broke (a dropped connection): the file being written keeps its partial state, and the
        next attempt starts a new stream (part 0 again) with ``have_from_disk``."""
        if self._current is not None:
            self._current.close()
            self._current = None
        self._lines.clear()
        self._seen.clear()
        self._headers.clear()
        self._local.clear()
        self._done.clear()

    def finish(self) -> str:
        """Close the stream; return the parts as they are kept (chunk contents removed), one a line."""
        if self._current is not None:
            self._current.close()  # the stream ended inside this file: it stays partial, resumable
            self._current = None
        self._write_index(durable=True)
        self._complete_the_shape()
        return "\n".join(self._lines)

    def _complete_the_shape(self) -> None:
        """Every part holds one key of ``data``; a stream with no chunk (every file already collected) or no
        header still merges into the collector's full shape: the missing lists are added, empty, to part 0."""
        if not self._lines:
            return
        try:
            first = json.loads(self._lines[0])
        except ValueError:
            return
        if not (isinstance(first, dict) and isinstance(first.get("data"), dict)):
            return
        missing = {key: [] for key in ("artefacts", "chunks") if key not in self._seen}
        if missing:
            first["data"] = {**first["data"], **missing}
            self._lines[0] = json.dumps(first, ensure_ascii=False, separators=(",", ":"))

    def annotate(self, envelope: dict[str, Any]) -> None:
        """Add this step's integrity and transfer errors to the validated envelope."""
        envelope.setdefault("errors", []).extend(self.errors)

    # ------------------------------------------------------------------ headers
    def _header(self, header: Any) -> None:
        problem = _check_header(header)
        if problem:
            self._error("other", "", f"{problem}; the file was not received")
            return
        file_id, status = header["file_id"], header["status"]
        local = local_name(header["kind"], header["host_path"])
        claimed = {path for fid, path in self._local.items() if fid != file_id}
        if local in claimed:
            local = f"{local}~{host_dir_name(file_id)}"
        self._headers[file_id] = header
        self._local[file_id] = local
        known = self.index.get(local, {})
        record = self._record(header, local)
        self.index[local] = record
        if status == "error":
            record.update(status="error", reason=str(header.get("note") or "the host could not read it")[:500])
        elif status == "already-collected":
            final = self.dir / local
            if final.is_file() and final.stat().st_size == header["size"] and known.get("sha256") == header["sha256"]:
                record.update(status="complete", controller_sha256=known.get("controller_sha256"))
            else:
                record.update(status="missing", reason="the host reported it collected earlier, but the controller "
                              "holds no such complete file; a later --resume sends it again")
                self._error("other", header["host_path"], record["reason"])
            self._done.add(file_id)
        else:
            record.update(status="partial")
            if header["size"] == 0:  # nothing to send: no chunk will come
                if self._current is not None:
                    self._current.close()
                    self._current = None
                if self._begin(file_id, 0) is not None:
                    self._complete()
        self._write_index()

    def _record(self, header: dict[str, Any], local: str) -> dict[str, Any]:
        keep = ("kind", "host_path", "size", "sha256", "created_utc", "modified_utc", "accessed_utc", "owner", "note")
        record = {key: header.get(key) for key in keep}
        record.update(path=local, controller_sha256=None, status=None, reason=None)
        return record

    # ------------------------------------------------------------------ chunks
    def _begin(self, file_id: str, offset: int) -> _Incoming | None:
        header = self._headers[file_id]
        incoming = _Incoming(header, self.dir / self._local[file_id])
        start = header["start_offset"]
        if offset != start:
            self._refuse(incoming, f"its first chunk starts at byte {offset:,}, the header said {start:,}")
            return None
        if start > 0:
            state = _read_state(incoming.state)
            if (state is None or not incoming.partial.is_file() or state["received"] < start
                    or incoming.partial.stat().st_size < start
                    or state["header"].get("sha256") != header["sha256"] or state["header"].get("size") != header["size"]):
                self._refuse(incoming, f"the host resumed at byte {start:,} but the controller does not hold "
                             "those bytes of this file")
                return None
        try:
            incoming.open(start)
        except OSError as exc:
            raise self._storage(exc, incoming.partial) from None
        self._current = incoming
        return incoming

    def _chunk(self, chunk: Any) -> None:
        from toolkit.contract import iter_blob

        if not isinstance(chunk, dict) or not isinstance(chunk.get("file_id"), str):
            self._error("other", "", "a chunk without file_id was dropped")
            return
        file_id = chunk["file_id"]
        if file_id not in self._headers:
            self._error("other", "", f"a chunk of file {file_id[:40]!r}, which had no header, was dropped")
            return
        if file_id in self._done:
            return  # the rest of a file already refused
        current = self._current
        if current is None or current.header["file_id"] != file_id:
            if current is not None:  # the host moved on: the file before stays partial (resumable)
                current.close()
                self._current = None
            current = self._begin(file_id, chunk.get("offset") if isinstance(chunk.get("offset"), int) else -1)
            if current is None:
                return
        offset, length, digest = chunk.get("offset"), chunk.get("length"), chunk.get("sha256")
        if offset != current.received:
            self._refuse(current, f"a chunk arrived for byte {offset!r}, expected {current.received:,} (a chunk was lost)")
            return
        if (isinstance(length, bool) or not isinstance(length, int) or not 0 < length <= MAX_CHUNK_BYTES
                or current.received + length > current.header["size"]):
            self._refuse(current, f"a chunk at byte {offset:,} declares {length!r} bytes, beyond the file or the "
                         f"{MAX_CHUNK_BYTES:,}-byte chunk cap")
            return
        try:
            raw = b"".join(iter_blob(chunk.get("content") or {}, max_bytes=MAX_CHUNK_BYTES, host=self.host,
                                     collector=self.collector, field=f"chunk {file_id}@{offset}"))
        except ContractError as exc:
            self._refuse(current, f"the chunk at byte {offset:,} is damaged: {exc.message.rsplit(': ', 1)[-1]}")
            return
        if len(raw) != length or hashlib.sha256(raw).hexdigest() != digest:
            self._refuse(current, f"the chunk at byte {offset:,} does not match its sha256; it was damaged on the way")
            return
        try:
            current.write(raw)
        except OSError as exc:
            raise self._storage(exc, current.partial) from None
        self.bytes_written += len(raw)
        if current.holds_secret:
            self._refuse(current, "it holds a credential value this run knows; it was deleted, not stored",
                         keep=False)
            return
        if current.received == current.header["size"]:
            self._complete()

    def _complete(self) -> None:
        current = self._current
        assert current is not None
        header = current.header
        controller = current.digest.hexdigest()
        if controller != header["sha256"]:
            self._refuse(current, f"the file's sha256 on arrival ({controller}) differs from the host's "
                         f"({header['sha256']})")
            return
        try:
            current.close(durable=True)
            os.replace(current.partial, current.final)
            current.state.unlink(missing_ok=True)
            current.final.with_name(current.final.name + REFUSED_SUFFIX).unlink(missing_ok=True)
        except OSError as exc:
            raise self._storage(exc, current.final) from None
        self._current = None
        self._done.add(header["file_id"])
        record = self.index[self._local[header["file_id"]]]
        record.update(status="complete", controller_sha256=controller, reason=None)
        self._write_index()

    def _refuse(self, incoming: _Incoming, reason: str, *, keep: bool = True) -> None:
        """The file is refused: set aside as ``*.refused`` (or deleted), named in an integrity error."""
        incoming.close()
        if self._current is incoming:
            self._current = None
        header = incoming.header
        refused = incoming.final.with_name(incoming.final.name + REFUSED_SUFFIX)
        try:
            if incoming.partial.exists():
                if keep:
                    os.replace(incoming.partial, refused)
                else:
                    incoming.partial.unlink()
            incoming.state.unlink(missing_ok=True)
        except OSError as exc:
            raise self._storage(exc, incoming.partial) from None
        self._done.add(header["file_id"])
        local = self._local[header["file_id"]]
        record = self.index.setdefault(local, self._record(header, local))
        record.update(status="refused", reason=reason, controller_sha256=None)
        self.refused.append({"field": f"artefacts/{local}", "host_path": header["host_path"], "reason": reason})
        self.errors.append(integrity_error(header["host_path"], f"refused on arrival: {reason}"))
        log.warning("%s: %s refused on arrival: %s", self.host, header["host_path"], reason)
        self._write_index()

    # ------------------------------------------------------------------ bookkeeping
    def _error(self, category: str, target: str, message: str) -> None:
        self.errors.append({"probe": "transfer", "target": target[:500], "category": category, "message": message})

    def _write_index(self, *, durable: bool = False) -> None:
        if not self.index:
            return
        files = [self.index[key] for key in sorted(self.index)]
        try:
            write_json_atomic(self.dir / INDEX_FILE, {"schema": INDEX_SCHEMA, "host": self.host, "files": files},
                              durable=durable)
        except OSError as exc:
            raise self._storage(exc, self.dir / INDEX_FILE) from None

    def _storage(self, exc: OSError, path: Path) -> ToolkitError:
        return StorageError(f"cannot write the artefact {path.name}: {exc.strerror or exc}", path=str(path),
                            explanation="free space on the disk holding the run directory; `iisfleet run "
                            "--resume` finishes the transfer afterwards")
