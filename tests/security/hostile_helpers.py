"""Shared pieces of the hostile-input tests: every encoding a host can echo a secret in, written out
independently of ``toolkit.secrets`` (a test must not trust the detector it checks), and a scan of a
run directory for all of them."""

from __future__ import annotations

import base64
import gzip
import html
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path

#: A password with every character some escaping rewrites: quote, backslash, <, &, space, +, %.
HOSTILE_PASSWORD = 'Qu"ote\\Sl<a>sh & Pl+us%Passw0rd!'


def _b64_at(pad: int, data: bytes) -> str:
    return base64.b64encode(b"x" * pad + data).decode()


#: name → how a host echoes a value (a string that goes into a JSON string field of the envelope).
ECHOES: dict[str, Callable[[str], str]] = {
    "raw": lambda v: f"password={v}",
    "xml-entities": lambda v: f'<add key="pw" value="{html.escape(v, quote=True)}" />',
    "numeric-entities": lambda v: "".join(f"&#{ord(c)};" for c in v),
    "hex-entities": lambda v: "".join(f"&#x{ord(c):x};" for c in v),
    "json-escaped": lambda v: json.dumps({"pw": v}),
    "json-unicode-escaped": lambda v: "".join(f"\\u{ord(c):04x}" for c in v),
    "url-encoded": lambda v: "https://x/?p=" + urllib.parse.quote(v, safe=""),
    "url-encoded-plus": lambda v: "p=" + urllib.parse.quote_plus(v),
    "base64-0": lambda v: _b64_at(0, v.encode()),
    "base64-1": lambda v: _b64_at(1, v.encode()),
    "base64-2": lambda v: _b64_at(2, v.encode()),
    "base64-urlsafe": lambda v: base64.urlsafe_b64encode(b"ab" + v.encode()).decode(),
    "base64-utf16le": lambda v: _b64_at(1, v.encode("utf-16-le")),
    "base64-utf16be": lambda v: _b64_at(2, v.encode("utf-16-be")),
    "gzip-base64-in-text": lambda v: "blob: " + base64.b64encode(gzip.compress(b"pw=" + v.encode())).decode(),
    "utf16le-as-text": lambda v: v.encode("utf-16-le").decode("latin-1"),
    "url-inside-entities": lambda v: html.escape(urllib.parse.quote(v, safe="")),
}

#: name → bytes a host puts in a blob (a file it read).
BLOB_ECHOES: dict[str, Callable[[str], bytes]] = {
    "utf8": lambda v: f'<identity password="{v}" />'.encode(),
    "utf8-entities": lambda v: f'<identity password="{html.escape(v)}" />'.encode(),
    "utf16le": lambda v: f"[Privilege Rights]\r\nX = {v}\r\n".encode("utf-16-le"),
    "utf16be": lambda v: f"X = {v}".encode("utf-16-be"),
    "utf16le-entities": lambda v: html.escape(v).encode("utf-16-le"),
    "base64-inside": lambda v: b"cfg=" + base64.b64encode(b"\x00" + v.encode()),
}


def every_form(value: str) -> list[bytes]:
    """Every byte string that would mean ``value`` is on disk, in any encoding above."""
    texts = {value, html.escape(value), html.escape(value, quote=False), urllib.parse.quote(value, safe=""),
             urllib.parse.quote_plus(value), json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=True)[1:-1]}
    forms: set[bytes] = set()
    for text in texts:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            forms.add(text.encode(encoding))
    for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
        data = value.encode(encoding)
        for pad in range(3):
            encoded = base64.b64encode(b"\x00" * pad + data).decode()
            core = encoded[-(-8 * pad // 6): 8 * (pad + len(data)) // 6]
            forms.add(core.encode())
            forms.add(core.translate(str.maketrans("+/", "-_")).encode())
    return sorted(forms)


def files_holding(root: Path, value: str) -> list[str]:
    """Files under ``root`` holding ``value`` in any form (gzip files are searched inflated too)."""
    forms = every_form(value)
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        views = [data]
        if data[:2] == b"\x1f\x8b":
            views.append(gzip.decompress(data))
        for text in (data.decode("utf-8", "replace"),):
            views.append(html.unescape(urllib.parse.unquote(text)).encode())
        if any(form in view for view in views for form in forms):
            found.append(str(path))
    return found
