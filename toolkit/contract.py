"""Checking what a collector printed against its contract (docs/contracts.md §1).

Everything a host prints is untrusted: it may be truncated by a dropped connection, padded with
stray output, enormous, or written by something that is not our collector at all. ``validate_envelope``
caps the size, insists on exactly one JSON object with the right schema, collector and version, and
checks ``data`` against the output schema in the collector's sidecar. ``decode_blob`` unpacks one raw
payload with a cap on the decompressed size, so a gzip bomb cannot exhaust the controller.
Every failure is a :class:`toolkit.errors.ContractError` whose message says what was wrong and where.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from toolkit.collectors import Collector
from toolkit.errors import ContractError
from toolkit.jea.rights import ENVIRONMENT_TARGETS
from toolkit.textsafe import scrub_surrogates

SCHEMA_ID = "iisfleet.collector/1"

#: Error categories a collector may put in ``errors[]``.
ERROR_CATEGORIES = frozenset({"not-installed", "io", "access-denied", "not-found", "timeout", "cap", "other",
                              "environment"})

#: ``target`` of an ``environment`` error → the right it lacks (toolkit.jea.rights), which names the fix.
ENVIRONMENT_RIGHTS = ENVIRONMENT_TARGETS

BLOB_ENCODINGS = frozenset({"gzip+base64", "base64", "text"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

#: Largest collector output accepted, in characters. The W3C collector's own cap is 50 MB of
#: uncompressed excerpt; compressed and base64-encoded that is far below this.
MAX_ENVELOPE_CHARS = 128 * 1024 * 1024

#: Largest decoded blob accepted, in bytes.
MAX_BLOB_BYTES = 256 * 1024 * 1024

_MAY_HOLD_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_ISO_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def validate_envelope(stdout: str, *, collector: Collector, host: str,
                      max_chars: int = MAX_ENVELOPE_CHARS) -> dict[str, Any]:
    """Parse and check one collector's output; return the envelope as a dict.

    ``stdout`` is everything the collector wrote to its output stream. ``host`` is the inventory
    name, used only in messages (the envelope's own ``host`` is the computer name the target reports).

    Raises:
        ContractError: the output is too big, not exactly one JSON object, or does not match the
            envelope or the sidecar's output schema.
    """

    def fail(message: str, explanation: str | None = None) -> ContractError:
        return ContractError(f"{host}: {collector.id}: {message}", host=host, collector=collector.id,
                             explanation=explanation)

    if len(stdout) > max_chars:
        raise fail(f"output is {len(stdout):,} characters, over the {max_chars:,} cap",
                   "lower the collector's MaxBytes/MaxFiles parameters or narrow the time window")
    text = stdout.lstrip("\ufeff").strip()
    if not text:
        raise fail("printed nothing; expected one JSON document",
                   "the script may have been stopped, or something on the host swallowed its output")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        envelope = _merge_part_lines(lines, collector, fail)
    else:
        envelope = _parse_document(text, fail)
        _check_header(envelope, collector, fail)
    _raise_for_environment(envelope["errors"], collector=collector, host=host)
    data_schema = (collector.sidecar.get("output") or {}).get("data") or {}
    problem = _check_fields(envelope["data"], data_schema, "data")
    if problem:
        raise fail(problem, "the collector on the host does not match this iisfleet's contract")
    if _MAY_HOLD_SURROGATE.search(text):
        # A lone UTF-16 surrogate (``\ud800``) is valid JSON but cannot be written as UTF-8: without
        # this the host's data would validate and then be lost when stored.
        envelope = scrub_surrogates(envelope)
    return envelope


def _parse_document(text: str, fail: Any) -> dict[str, Any]:
    try:
        envelope = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        detail = f"{exc.msg} (character {exc.pos})" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise fail(f"output is not valid JSON ({detail}); it starts {_preview(text)}",
                   "the output was probably cut off (connection dropped or a size limit on the host)") from None
    if not isinstance(envelope, dict):
        raise fail(f"output is a JSON {type(envelope).__name__}, expected an object (the envelope)")
    return envelope


def _check_header(envelope: dict[str, Any], collector: Collector, fail: Any) -> None:
    schema = envelope.get("schema")
    if schema != SCHEMA_ID:
        raise fail(f"envelope schema is {schema!r}, expected {SCHEMA_ID!r}")
    if envelope.get("collector") != collector.id:
        raise fail(f"envelope says it came from collector {envelope.get('collector')!r}",
                   "the host ran a different script than the one iisfleet sent")
    version = envelope.get("version")
    if isinstance(version, bool) or version != collector.version:
        raise fail(f"envelope is version {version!r}, this iisfleet bundles version {collector.version}")
    if not isinstance(envelope.get("host"), str) or not envelope["host"]:
        raise fail("envelope 'host' must be a non-empty string")
    time_utc = envelope.get("time_utc")
    if not isinstance(time_utc, str) or not _ISO_UTC_RE.match(time_utc):
        raise fail(f"envelope 'time_utc' must be an ISO 8601 UTC time ending in Z, got {_preview(str(time_utc))}")
    if not isinstance(envelope.get("data"), dict):
        raise fail("envelope 'data' must be an object")
    errors = envelope.get("errors")
    if not isinstance(errors, list):
        raise fail("envelope 'errors' must be a list")
    for index, item in enumerate(errors):
        where = f"errors[{index}]"
        if not isinstance(item, dict):
            raise fail(f"{where} must be an object")
        for key in ("probe", "message"):
            if not isinstance(item.get(key), str):
                raise fail(f"{where}.{key} must be a string")
        if item.get("category") not in ERROR_CATEGORIES:
            raise fail(f"{where}.category is {item.get('category')!r}; expected one of "
                       f"{', '.join(sorted(ERROR_CATEGORIES))}")
        if item.get("target") is not None and not isinstance(item["target"], str):
            raise fail(f"{where}.target must be a string or null")



def _merge_part_lines(lines: list[str], collector: Collector, fail: Any) -> dict[str, Any]:
    """Several output objects: the parts of a collector that streams (docs/contracts.md 1.4)."""
    parts = []
    for number, line in enumerate(lines, 1):
        try:
            document: Any = _parse_document(line.strip(), fail)
        except ContractError:
            if number == len(lines) and len(parts) > 0:
                break  # the last part was cut off in transit: keep the complete ones before it
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("part"), dict):
            raise fail(f"printed {len(lines)} lines; expected one compact JSON document, or the parts of a "
                       f"collector that streams (first line starts {_preview(lines[0])})")
        _check_header(document, collector, fail)
        parts.append(document)
    return merge_parts(parts)


def merge_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One envelope from the parts a streaming collector wrote (docs/contracts.md 1.4).

    Lists in ``data`` are concatenated in part order, other ``data`` values come from the first part
    that has them; ``errors`` are concatenated. Parts must be numbered 0, 1, 2, ...; when the part
    marked ``final`` is missing (the step was stopped, or output was lost), the merged envelope keeps
    what arrived and says so in ``errors``.
    """
    if not parts:
        raise ValueError("no parts to merge")
    ordered = sorted(parts, key=lambda p: p["part"].get("index", 0) if isinstance(p.get("part"), dict) else 0)
    merged = {key: value for key, value in ordered[0].items() if key not in ("part", "data", "errors")}
    data: dict[str, Any] = {}
    errors: list[Any] = []
    final = False
    for expected, part in enumerate(ordered):
        marker = part.get("part") if isinstance(part.get("part"), dict) else {}
        if marker.get("index") != expected:
            errors.append({"probe": "parts", "target": "", "category": "other",
                           "message": f"output part {expected} is missing; the parts after it are kept"})
        final = final or marker.get("final") is True
        for key, value in (part.get("data") or {}).items():
            if isinstance(value, list):
                data.setdefault(key, [])
                if isinstance(data[key], list):
                    data[key].extend(value)
            else:
                data.setdefault(key, value)
        errors.extend(part.get("errors") if isinstance(part.get("errors"), list) else [])
        merged["time_utc"] = part.get("time_utc", merged.get("time_utc"))
    if not final:
        errors.append({"probe": "parts", "target": "", "category": "timeout",
                       "message": f"the collector stopped after {len(ordered)} output parts; the files in "
                                  "them arrived complete, later ones were not read"})
    merged["data"] = data
    merged["errors"] = errors
    merged["parts"] = len(ordered)
    return merged

def _printable(value: Any) -> str:
    """Host text for one line of a message: whitespace runs collapsed, control characters dropped."""
    return "".join(c for c in " ".join(str(value or "").split()) if c.isprintable())


def _raise_for_environment(errors: list[dict[str, Any]], *, collector: Collector, host: str) -> None:
    """The target side's structured refusal: the session cannot run this collector (language mode, rights).

    It arrives as an envelope with one ``errors[]`` item of category ``environment`` and no data; it becomes
    a host error of category ``environment`` whose explanation names the fix."""
    from toolkit.errors import HostError
    from toolkit.jea.rights import RIGHTS

    for item in errors:
        if item.get("category") != "environment":
            continue
        target = _printable(item.get("target"))[:60]
        right = RIGHTS.get(ENVIRONMENT_RIGHTS.get(target, ""))
        message = _printable(item.get("message"))[:300]
        raise HostError(f"{collector.id}: {message or 'the session cannot run this collector'}"
                        + (f" ({target})" if target else ""), host=host, category="environment",
                        collector=collector.id,
                        explanation=right.fix if right else "the host's PowerShell session cannot run the "
                        "collectors as they are: run `iisfleet hosts check` for what it lacks")


def _preview(text: str, limit: int = 60) -> str:
    shown = text[:limit]
    return repr(shown + ("…" if len(text) > limit else ""))


_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "object": (dict,),
    "list": (list,),
}


def _check_fields(value: Mapping[str, Any], fields: Mapping[str, Any], path: str) -> str | None:
    """The first mismatch between ``value`` and a sidecar field map, as a message; None if it fits."""
    for name, spec in fields.items():
        if name not in value:
            return f"{path}.{name} is missing"
        problem = _check_value(value[name], spec if isinstance(spec, dict) else {"type": spec}, f"{path}.{name}")
        if problem:
            return problem
    return None


def _check_value(value: Any, spec: Mapping[str, Any], path: str) -> str | None:
    type_text = str(spec.get("type", "any"))
    nullable = type_text.endswith("|null")
    base = type_text.removesuffix("|null")
    if value is None:
        return None if nullable or base == "any" else f"{path} is null, expected {base}"
    if base == "any":
        return None
    if base == "blob":
        return _blob_problem(value, path)
    element: str | None = None
    if base.startswith("list[") and base.endswith("]"):
        element, base = base[5:-1], "list"
    expected = _SCALARS.get(base)
    if expected is None:
        return f"{path}: sidecar declares unknown type {type_text!r}"
    # bool is a subclass of int: a JSON true is not a count.
    if isinstance(value, bool) and base in ("int", "number"):
        return f"{path} is a boolean, expected {base}"
    if not isinstance(value, expected):
        return f"{path} is {type(value).__name__}, expected {base}"
    if base == "list":
        items = spec.get("items")
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if element is not None:
                problem = _check_value(item, {"type": element}, item_path)
            elif isinstance(items, dict):
                if not isinstance(item, dict):
                    return f"{item_path} is {type(item).__name__}, expected object"
                problem = _check_fields(item, items, item_path)
            else:
                problem = None
            if problem:
                return problem
    if base == "object" and isinstance(spec.get("fields"), dict):
        return _check_fields(value, spec["fields"], path)
    return None


def _blob_problem(blob: Any, path: str) -> str | None:
    if not isinstance(blob, dict):
        return f"{path} is {type(blob).__name__}, expected a blob object"
    if blob.get("encoding") not in BLOB_ENCODINGS:
        return f"{path}.encoding is {blob.get('encoding')!r}, expected one of {', '.join(sorted(BLOB_ENCODINGS))}"
    if not isinstance(blob.get("content"), str):
        return f"{path}.content must be a string"
    size = blob.get("bytes")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return f"{path}.bytes must be a non-negative integer"
    if not isinstance(blob.get("truncated"), bool):
        return f"{path}.truncated must be true or false"
    digest = blob.get("sha256")
    if digest is not None and not (isinstance(digest, str) and _SHA256_HEX.fullmatch(digest)):
        return f"{path}.sha256 must be 64 lower-case hex digits"
    return None


#: A gzip payload may inflate to at most this many times its compressed size. IIS logs and config
#: files compress 5-30x; a run of identical lines can reach ~100x; bombs reach 1000x.
MAX_INFLATE_RATIO = 200
#: Below this decoded size the ratio is not checked (tiny, very repetitive files are honest).
RATIO_FLOOR_BYTES = 4 * 1024 * 1024
#: Decoded bytes are produced in pieces of this size.
DECODE_CHUNK = 1024 * 1024


class DecodeBudget:
    """Bytes of decoded host output that may be held at once across every host of the process.

    The runner reserves each envelope's size (its text and the parsed copy, ``envelope_cost``) while it
    validates, checks and stores it; a caller that keeps a decoded blob in memory (facts) reserves the
    blob's declared size as well. A reservation waits while the budget is used up, so 32 hosts answering
    with 200 MB blobs or 100 MB strings at once take their turn instead of exhausting the controller.
    ``IISFLEET_DECODE_BUDGET_MB`` sets it.

    Reservations nest (the facts of an envelope inside the envelope's own): while a thread waits for a
    further reservation, what it already holds is not counted, so two threads each holding one and
    waiting for another can never block each other for good.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._held = threading.local()

    @contextlib.contextmanager
    def reserve(self, size: int, *, timeout: float = 900.0) -> Iterator[None]:
        held = getattr(self._held, "bytes", 0)
        want = min(held + max(0, int(size)), self.total)  # this thread's holding once granted
        deadline = time.monotonic() + timeout
        with self._cond:
            if self.in_use + want - held > self.total:
                self.in_use -= held  # not counted while waiting: no thread holds while it waits
                try:
                    while self.in_use + want > self.total:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise TimeoutError("waited too long for the controller's decode memory budget")
                        self._cond.wait(left)
                finally:
                    self.in_use += held
            self.in_use += want - held
            self.peak = max(self.peak, self.in_use)
        self._held.bytes = want
        try:
            yield
        finally:
            self._held.bytes = held
            with self._cond:
                self.in_use -= want - held
                self._cond.notify_all()


def envelope_cost(stdout: str) -> int:
    """Bytes a collector's answer takes while it is validated and stored: the text as held in memory and
    about as much again for the strings ``json.loads`` makes of it. Counted on ``DECODE_BUDGET`` so that
    huge plain strings (no blob at all) take their turn like inflated blobs do."""
    return 2 * sys.getsizeof(stdout)


def _budget_bytes() -> int:
    try:
        megabytes = int(os.environ.get("IISFLEET_DECODE_BUDGET_MB", "1024"))
    except ValueError:
        megabytes = 1024
    return max(MAX_BLOB_BYTES, megabytes * 1024 * 1024)


#: The process-wide budget (see ``DecodeBudget``).
DECODE_BUDGET = DecodeBudget(_budget_bytes())


def decode_blob(blob: Mapping[str, Any], *, max_bytes: int = MAX_BLOB_BYTES, host: str = "?",
                collector: str = "?", field: str = "blob") -> bytes:
    """The raw bytes a blob carries (docs/contracts.md §1.2).

    ``text`` blobs come back UTF-8 encoded. The decoded size must equal the blob's ``bytes``; when a
    cap truncated the payload on the host, ``bytes`` is the size of what was sent, and ``truncated``
    says so. ``host``/``collector``/``field`` only make messages precise.

    Raises:
        ContractError: bad shape, invalid base64 or gzip, a size over ``max_bytes``, an inflation
            ratio over ``MAX_INFLATE_RATIO``, or a size that does not match ``bytes``.
    """
    return b"".join(iter_blob(blob, max_bytes=max_bytes, host=host, collector=collector, field=field))


def iter_blob(blob: Mapping[str, Any], *, max_bytes: int = MAX_BLOB_BYTES, host: str = "?",
              collector: str = "?", field: str = "blob") -> Iterator[bytes]:
    """``decode_blob`` as a stream of pieces of at most ``DECODE_CHUNK`` bytes: a gzip payload is
    inflated a piece at a time and refused as soon as it passes the size cap or the inflation ratio,
    so a bomb costs the controller one piece, never the whole inflated size. Every check of
    ``decode_blob`` applies; the size check against ``bytes`` comes after the last piece."""

    def fail(message: str) -> ContractError:
        return ContractError(f"{host}: {collector}: {field}: {message}", host=host, collector=collector)

    problem = _blob_problem(blob, field)
    if problem:
        raise fail(problem.removeprefix(f"{field}").lstrip(".: ") or problem)
    encoding, content, declared = blob["encoding"], blob["content"], blob["bytes"]
    if declared > max_bytes:
        raise fail(f"blob declares {declared:,} bytes, over the {max_bytes:,} cap")
    produced = 0
    if encoding == "text":
        pieces: Iterator[bytes] = iter((content.encode("utf-8", "replace"),))
    else:
        # base64 is 4 characters per 3 bytes, and gzip adds a little to incompressible data;
        # anything longer than that cannot be an honest payload under the cap.
        if len(content) > ((max_bytes + 1024) // 3 + 2) * 4:
            raise fail(f"encoded content is {len(content):,} characters, over the cap")
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise fail(f"content is not valid base64 ({exc})") from None
        pieces = _inflate(raw, max_bytes, fail) if encoding == "gzip+base64" else iter((raw,))
    digest = hashlib.sha256() if blob.get("sha256") is not None else None
    for piece in pieces:
        produced += len(piece)
        if produced > max_bytes:
            raise fail(f"blob decodes to more than the {max_bytes:,}-byte cap")
        if digest is not None:
            digest.update(piece)
        for start in range(0, len(piece), DECODE_CHUNK):
            yield piece[start:start + DECODE_CHUNK]
    if produced != declared:
        raise fail(f"blob decodes to {produced:,} bytes but declares {declared:,}; it was damaged on the way")
    if digest is not None and digest.hexdigest() != blob["sha256"]:
        raise fail("blob content does not match its sha256; it was damaged on the way")


def _inflate(raw: bytes, max_bytes: int, fail: Any) -> Iterator[bytes]:
    # wbits=31: gzip header required. Input is fed in small slices and output drawn in bounded
    # pieces, so the ratio is checked while inflating, before a bomb has grown.
    inflater = zlib.decompressobj(wbits=31)
    consumed = 0
    produced = 0
    step = 64 * 1024
    pending = b""
    while True:
        drained = not pending and consumed >= len(raw)
        if not pending and not drained:
            pending = raw[consumed:consumed + step]
            consumed += len(pending)
        try:
            piece = inflater.decompress(pending, DECODE_CHUNK)
        except zlib.error as exc:
            raise fail(f"content is not valid gzip ({exc})") from None
        pending = inflater.unconsumed_tail
        produced += len(piece)
        if produced > max_bytes:
            raise fail(f"blob inflates to more than the {max_bytes:,}-byte cap")
        if produced > RATIO_FLOOR_BYTES and produced > MAX_INFLATE_RATIO * max(1, consumed - len(pending)):
            raise fail(f"blob inflates more than {MAX_INFLATE_RATIO}x its compressed size (a compression "
                       "bomb, or not an honest log or configuration file)")
        if piece:
            yield piece
        if inflater.eof or (drained and not piece):
            break
    if not inflater.eof:
        raise fail("gzip stream is incomplete (truncated in transit?)")
