"""Secret values that cannot leak by accident.

``Secret`` masks itself in ``str``/``repr``/``format``; the only way to the value is ``reveal()``, which
transports call at the last moment. ``redact`` scrubs known secret values out of free text (exception
messages from third-party libraries, host output) before it is stored or shown.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import threading
import urllib.parse
import zlib
from collections.abc import Iterable
from typing import Any

MASK = "********"

_known_values: set[str] = set()
_known_lock = threading.Lock()


class Secret:
    """A credential value. Equality compares values; every textual form is masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            with _known_lock:
                _known_values.add(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # never pickle a secret into a file
        raise TypeError("Secret values cannot be pickled")


def has_known_secrets() -> bool:
    """Whether this process has seen any secret value (nothing to look for otherwise)."""
    with _known_lock:
        return bool(_known_values)


def _known() -> list[str]:
    with _known_lock:
        return list(_known_values)


# ---------------------------------------------------------------------- encodings a host can echo
#: Byte encodings of a value a Windows host writes: UTF-8 (most files), UTF-16 LE (secedit, regedit
#: exports, PowerShell's "Unicode") and UTF-16 BE (rare, but costs nothing to look for).
_BYTE_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be")
#: Base64 of fewer bytes than this is too short to search for without matching unrelated text.
_MIN_BASE64_BYTES = 3
_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|([\"\\/bfnrt]))")
_JSON_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "/": "/"}
_EMBEDDED_GZIP = re.compile(r"H4sI[A-Za-z0-9+/_-]{16,}={0,2}")
#: Cap on what one embedded gzip run found in free text may inflate to while being searched.
_EMBEDDED_GZIP_LIMIT = 16 * 1024 * 1024


def _base64_forms(data: bytes) -> set[str]:
    """The base64 text of ``data`` at each of the three byte alignments it can start on inside a larger
    encoded payload: only the characters that depend on ``data`` alone (standard and URL-safe alphabets)."""
    forms: set[str] = set()
    if len(data) < _MIN_BASE64_BYTES:
        return forms
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + data).decode("ascii")
        start = -(-8 * pad // 6)  # the first character whose 6 bits all come from data
        end = 8 * (pad + len(data)) // 6
        core = encoded[start:end]
        forms.add(core)
        forms.add(core.translate(str.maketrans("+/", "-_")))
    return forms


@functools.lru_cache(maxsize=256)
def _text_forms(value: str) -> frozenset[str]:
    """Forms of ``value`` searched for directly in text (cheap substring tests)."""
    forms = {
        value,
        html.escape(value, quote=True),
        html.escape(value, quote=True).replace("&#x27;", "&apos;"),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    for encoding in _BYTE_ENCODINGS:
        forms |= _base64_forms(value.encode(encoding, "surrogatepass"))
    return frozenset(f for f in forms if f)


@functools.lru_cache(maxsize=256)
def _byte_forms(value: str) -> frozenset[bytes]:
    """Forms of ``value`` searched for directly in raw bytes (decoded blobs, files)."""
    forms: set[bytes] = set()
    for text in _text_forms(value):
        for encoding in _BYTE_ENCODINGS:
            forms.add(text.encode(encoding, "surrogatepass"))
    return frozenset(forms)


def _json_unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1):
            return chr(int(match.group(1), 16))
        return _JSON_SIMPLE[match.group(2)]
    return _JSON_ESCAPE.sub(one, text)


#: Each undoing of an escaping a host may apply, with the character that shows the text could need it.
_DECODERS = (("&", html.unescape), ("%", urllib.parse.unquote_plus),
             ("\\", lambda t: _json_unescape(t)), ("\x00", lambda t: t.replace("\x00", "")))
#: Long texts are searched in windows of this many characters (overlapping), so the decoded views of
#: a large blob never all sit in memory at once.
_WINDOW = 1 << 20


def _decoded_views(text: str) -> list[str]:
    """``text`` and what it reads as once each escaping a host may apply is undone, once and twice over
    (a URL-encoded value inside an XML attribute, an entity inside a JSON string...)."""
    views = [text]
    for _round in range(2):
        for view in list(views):
            for marker, decode in _DECODERS:
                if marker not in view:
                    continue
                try:
                    decoded = decode(view)
                except Exception:  # noqa: BLE001 - a decoder choking on hostile text only means "no view"
                    continue
                if decoded not in views:
                    views.append(decoded)
    return views


def _windows(data: Any, overlap: int) -> Iterable[Any]:
    if len(data) <= _WINDOW + overlap:
        yield data
        return
    for start in range(0, len(data), _WINDOW):
        yield data[start:start + _WINDOW + overlap]


def _overlap(values: list[str]) -> int:
    return max(len(form) for value in values for form in _byte_forms(value)) * 8


def _embedded_gzip_holds(text: str, values: list[str]) -> bool:
    """Base64 gzip streams inside free text (``H4sI`` is how every one starts) are inflated, capped, and
    searched too."""
    for match in _EMBEDDED_GZIP.finditer(text):
        run = match.group(0)
        try:
            raw = base64.urlsafe_b64decode(run.translate(str.maketrans("+/", "-_")) + "=" * (-len(run) % 4))
            inflater = zlib.decompressobj(wbits=47)
            inflated = inflater.decompress(raw, _EMBEDDED_GZIP_LIMIT)
        except (ValueError, zlib.error):
            continue
        if _bytes_hold(inflated, values, depth=1):
            return True
    return False


def _text_holds(text: str, values: list[str], *, depth: int = 0) -> bool:
    for window in _windows(text, _overlap(values)):
        for view in _decoded_views(window):
            if any(form in view for value in values for form in _text_forms(value)):
                return True
            if depth == 0 and "H4sI" in view and _embedded_gzip_holds(view, values):
                return True
    return False


def _bytes_hold(data: bytes, values: list[str], *, depth: int = 0) -> bool:
    if any(form in data for value in values for form in _byte_forms(value)):
        return True
    # Entity-, URL- or JSON-escaped forms, spelled in any of the byte encodings.
    for window in _windows(data, _overlap(values)):
        for encoding in _BYTE_ENCODINGS:
            if _text_holds(window.decode(encoding, "replace"), values, depth=depth):
                return True
    return False


def contains_known_secret(data: str | bytes) -> bool:
    """Whether ``data`` holds a secret value this process has seen, in any form a host can echo it:
    raw, XML/HTML entities, JSON escapes, URL-encoding, base64 at any byte alignment (standard or
    URL-safe), inside a base64 gzip stream, and (for bytes) as UTF-8, UTF-16 LE or UTF-16 BE."""
    values = _known()
    if not values:
        return False
    if isinstance(data, str):
        return _text_holds(data, values)
    return _bytes_hold(bytes(data), values)


def contains_secret_in_stream(chunks: Iterable[bytes]) -> bool:
    """``contains_known_secret`` over a byte stream (an inflating blob) without holding it whole: each
    chunk is searched together with the tail of the one before, so a value cut by a chunk boundary is
    still found. The stream is always read to its end, so the checks the stream makes itself (a blob's
    size and inflation limits) run whether or not there is a secret to look for."""
    scanner = StreamSecretScanner()
    found = False
    for chunk in chunks:
        found = found or scanner.feed(chunk)
    return found


class StreamSecretScanner:
    """``contains_known_secret`` fed a byte stream piece by piece (a file arriving in chunks): each piece
    is searched together with the tail of the one before, so a value cut by a boundary is still found."""

    def __init__(self) -> None:
        self._values = _known()
        self._overlap = _overlap(self._values) if self._values else 0
        self._tail = b""

    def feed(self, piece: bytes) -> bool:
        """Whether the stream so far holds a secret (checked up to the end of ``piece``)."""
        if not self._values:
            return False
        window = self._tail + piece
        self._tail = window[-self._overlap:]
        return _bytes_hold(window, self._values)


#: What a host-supplied text becomes when it holds a secret in an encoded form ``redact`` cannot mask.
WITHHELD = "(text withheld: it contained a credential value in an encoded form)"


def redact(text: str) -> str:
    """Replace every secret value this process has seen with the mask. A value that is still present in
    an encoded form (entity-, URL-, JSON- or base64-encoded) cannot be masked in place: the whole text
    is withheld instead."""
    with _known_lock:
        values = sorted(_known_values, key=len, reverse=True)
    if not values:
        return text
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    if _text_holds(text, values):
        return WITHHELD
    return text
