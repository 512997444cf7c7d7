"""Hostile hosts: a compromised IIS server attacking the controller through its collector output.

A host with a ``hostile`` fault answers every collector from its model as usual, then rewrites the
envelope the way an attacker controlling the host could (docs/lab-fleet.md, "Hostile hosts"):

* ``bomb``: every blob becomes a gzip stream of ~250 KB that inflates to 250 MB (declared honestly).
* ``oversized``: every blob declares a terabyte; a 4 MB filler string rides along.
* ``escapes``: ESC/OSC/CSI sequences in the host name, error messages, targets and one terminating error.
* ``bidi``: C1 controls (U+009B CSI) and bidi overrides/isolates (U+202E, U+2066) in the same places.
* ``surrogates``: lone UTF-16 surrogates (``\\ud800`` JSON escapes) in the same places.
* ``names``: path characters (``..\\``, ``/``, ``:``) in the host name, error targets and file paths.
* ``secrets``: the credential the controller logged on with, echoed back, each collector in another
  encoding (entities, JSON escapes, URL-encoding, base64 at each alignment, UTF-16, inside gzip).
* ``clock``: the host's clock is years off (``clock_offset_s``) and its logs are stamped with it.

Nothing here runs on Windows: it is the lab's stand-in for a compromised one.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import urllib.parse
import zlib
from collections.abc import Callable
from typing import Any

HOSTILE_MODES = ("bomb", "oversized", "escapes", "bidi", "surrogates", "names", "secrets", "clock")
#: How far a ``clock`` host's clock is off: three years slow.
HOSTILE_CLOCK_OFFSET_S = -3 * 365 * 86400.0
BOMB_BYTES = 250 * 1024 * 1024

_ESCAPES = "\x1b]0;iisfleet owned\x07\x1b[2J\x1b[31mred\x1b[0m\x1b[?1049h"
_BIDI = "\u202eexe.lmth\u202c \u2066isolated\u2069 \x9b31m \u200f"
_SURROGATES = "\ud800 lone \udfff"
_PATHS = "..\\..\\..\\Windows/../../etc/passwd:evil"

#: How the ``secrets`` host spells the password, one spelling per collector (cycled).
SECRET_SPELLINGS: dict[str, Callable[[str], str]] = {
    "xml-entities": lambda v: f'<add key="pw" value="{html.escape(v, quote=True)}" />',
    "numeric-entities": lambda v: "".join(f"&#{ord(c)};" for c in v),
    "json-escapes": lambda v: "".join(f"\\u{ord(c):04x}" for c in v),
    "url-encoded": lambda v: "https://intranet/?pw=" + urllib.parse.quote(v, safe=""),
    "base64-0": lambda v: base64.b64encode(v.encode()).decode(),
    "base64-1": lambda v: base64.b64encode(b"A" + v.encode()).decode(),
    "base64-2": lambda v: base64.b64encode(b"AB" + v.encode()).decode(),
    "utf16le-base64": lambda v: base64.b64encode(v.encode("utf-16-le")).decode(),
    "utf16be-base64": lambda v: base64.b64encode(b"Z" + v.encode("utf-16-be")).decode(),
    "gzip-base64": lambda v: base64.b64encode(gzip.compress(f"password={v}".encode(), mtime=0)).decode(),
    "raw": lambda v: f"password={v}",
}


@functools.lru_cache(maxsize=1)
def bomb_blob() -> dict[str, Any]:
    """250 MB of zeros as gzip, compressed a megabyte at a time (the lab never holds 250 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))]
    parts.append(compressor.flush())
    return {"encoding": "gzip+base64", "content": base64.b64encode(b"".join(parts)).decode("ascii"),
            "bytes": BOMB_BYTES, "truncated": False}


def _map_blobs(value: Any, replace: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get("encoding"), str) and isinstance(value.get("content"), str):
            return replace(value)
        return {key: _map_blobs(item, replace) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_blobs(item, replace) for item in value]
    return value


def _map_paths(value: Any) -> Any:
    """File paths in the data (``path``/``file``/``directory`` keys) rewritten to climb out of folders."""
    if isinstance(value, dict):
        return {key: (_PATHS + "\\" + item if key in ("path", "file", "directory") and isinstance(item, str)
                      else _map_paths(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_paths(item) for item in value]
    return value


def _poison_text(envelope: dict[str, Any], text: str) -> None:
    envelope["host"] = f"WEB{text}01"
    envelope["errors"] = [*envelope.get("errors", []),
                          {"probe": f"probe{text}", "target": f"C:\\{text}", "category": "other",
                           "message": f"Access is denied {text}"}]


def hostile_envelope(mode: str, collector_index: int, envelope: dict[str, Any], *,
                     password: str) -> tuple[str | None, str | None]:
    """The text a ``mode`` host prints for ``envelope``, and a terminating error (or None) instead.

    Returns ``(stdout, error)``; ``stdout`` None means "answer as usual".
    """
    if mode == "bomb":
        envelope["data"] = _map_blobs(envelope["data"], lambda _blob: bomb_blob())
    elif mode == "oversized":
        envelope["data"] = _map_blobs(envelope["data"], lambda blob: {**blob, "bytes": 1 << 40})
        envelope["data"]["filler"] = "A" * (4 * 1024 * 1024)
    elif mode in ("escapes", "bidi", "surrogates"):
        text = {"escapes": _ESCAPES, "bidi": _BIDI, "surrogates": _SURROGATES}[mode]
        if collector_index == 1:  # one collector fails outright: its error text goes to the operator's terminal
            return None, f"Get-Item : Cannot find path {text}"
        _poison_text(envelope, text)
    elif mode == "names":
        _poison_text(envelope, _PATHS)
        envelope["data"] = _map_paths(envelope["data"])
    elif mode == "secrets":
        spellings = list(SECRET_SPELLINGS.values())
        spelled = spellings[collector_index % len(spellings)](password)
        if collector_index == 1:
            return None, f"Exception calling Connect with password {spelled}"
        envelope["errors"] = [*envelope.get("errors", []),
                              {"probe": "config", "target": None, "category": "other",
                               "message": f"read a connection string: {spelled}"}]
    else:  # clock: the envelope is honest, the clock is not (see ModelBackend)
        return None, None
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as PowerShell's ConvertTo-Json writes them
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=mode == "surrogates"), None


__all__ = ["HOSTILE_CLOCK_OFFSET_S", "HOSTILE_MODES", "SECRET_SPELLINGS", "bomb_blob", "hostile_envelope"]
