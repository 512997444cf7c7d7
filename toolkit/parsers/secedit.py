"""``secedit /export /areas USER_RIGHTS`` INF → holders of each user right.

The file is normally UTF-16LE with a BOM; re-saved copies are ASCII or UTF-8. Holders are written
as ``*S-1-…`` (a SID) or as a bare account name; both are kept, and well-known names and SIDs are
completed from the table in ``_identity``.
"""

from __future__ import annotations

import re

from toolkit.errors import InputError

from ._identity import is_sid, name_for_sid, normalize_sid, well_known_sid
from .types import Principal

MAX_INF_BYTES = 4 * 1024 * 1024
PRIVILEGE_SECTION = "privilege rights"
_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
_RIGHT_RE = re.compile(r"^Se[A-Za-z]+$")


def decode_inf(data: bytes, path: str) -> str:
    """Bytes → text: UTF-16 (BOM or NUL-interleaved), UTF-8 (with or without BOM), else cp1252."""
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        encoding = "utf-16"
    elif data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif len(data) >= 4 and data[1:2] == b"\x00" and data[3:4] == b"\x00":
        encoding = "utf-16-le"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        if encoding == "utf-8":
            return data.decode("cp1252", errors="replace")
        raise InputError(f"not valid {encoding} text", path=path) from None


def principal_from(token: str) -> Principal:
    """``*S-1-5-32-546`` → (sid, well-known name); ``Guest`` → (None or well-known sid, name)."""
    token = token.strip().strip('"')
    if token.startswith("*"):
        sid = normalize_sid(token[1:])
        return Principal(sid=sid, name=name_for_sid(sid) or None)
    if is_sid(token):
        sid = normalize_sid(token)
        return Principal(sid=sid, name=name_for_sid(sid) or None)
    return Principal(sid=well_known_sid(token), name=token)


def parse_secedit(data: bytes, path: str) -> dict[str, tuple[Principal, ...]]:
    """Right constant (``SeNetworkLogonRight`` …) → its holders, in file order.

    A file with INF sections but no ``[Privilege Rights]`` gives ``{}``; a right listed with nothing
    after ``=`` gives an empty tuple. Anything that is not an INF file raises :class:`InputError`.
    """
    if len(data) > MAX_INF_BYTES:
        raise InputError(f"file is {len(data)} bytes, over the {MAX_INF_BYTES}-byte cap", path=path)
    text = decode_inf(data, path)
    if "\x00" in text:
        raise InputError("binary data where an INF text file was expected", path=path)
    rights: dict[str, tuple[Principal, ...]] = {}
    section: str | None = None
    saw_section = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        match = _SECTION_RE.match(line)
        if match:
            section = match.group("name").strip().lower()
            saw_section = True
            continue
        if section is None:
            raise InputError("text before the first [section]: not a secedit INF export", path=path, line=number)
        if section != PRIVILEGE_SECTION:
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _RIGHT_RE.match(name):
            raise InputError(f"expected 'SeSomeRight = holders', got {line[:80]!r}", path=path, line=number)
        holders = tuple(principal_from(token) for token in value.split(",") if token.strip())
        rights[name] = rights.get(name, ()) + holders
    if not saw_section:
        raise InputError("no [section] headers: not a secedit INF export", path=path)
    return rights
