"""W3C extended log format: layouts (``#Fields``), log file discovery and opening, a simple record reader.

Everything here works on bytes: IIS writes ``u_ex*.log`` in UTF-8 and ``ex*.log`` in the system ANSI code
page, and a byte-level reader never fails on either. Values are decoded only when shown to a person
(:func:`decode_value`). The fast analysis engine lives in :mod:`toolkit.logs.engine`; :func:`iter_records`
is the small, obvious reader for callers that want every field of every line by name.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import BinaryIO, Literal

from toolkit.errors import InputError

__all__ = [
    "Layout", "LogFile", "Record", "DEFAULT_W3C_FIELDS", "FULL_W3C_FIELDS", "HTTPERR_FIELDS",
    "parse_fields_directive", "discover", "open_log", "iter_records", "decode_value", "site_from_path",
]

#: IIS 7+ default W3C field set (used for headerless lines with exactly this many fields).
DEFAULT_W3C_FIELDS = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
                      "cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken").split()
#: Every standard IIS 8.5+ W3C field in IIS order (headerless lines with 22 fields).
FULL_W3C_FIELDS = ("date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port "
                   "cs-username c-ip cs-version cs(User-Agent) cs(Cookie) cs(Referer) cs-host sc-status "
                   "sc-substatus sc-win32-status sc-bytes cs-bytes time-taken").split()
#: HTTP.sys error log fields (headerless HTTPERR lines with 13 fields).
HTTPERR_FIELDS = ("date time c-ip c-port s-ip s-port cs-version cs-method cs-uri sc-status s-siteid "
                  "s-reason s-queuename").split()

RecordKind = Literal["w3c", "httperr"]


@dataclass(frozen=True)
class Layout:
    """One ``#Fields`` directive: field names and the positions the analysis needs (-1 = not logged)."""

    names: tuple[str, ...]
    kind: RecordKind
    inferred: bool = False  # chosen from the field count of a headerless line, not from a directive
    index: dict[str, int] = field(default_factory=dict, compare=False)
    #: Positions of date, time, c-ip, cs-uri-stem, sc-status, sc-substatus, sc-win32-status (all required),
    #: then cs(User-Agent), cs-username, s-sitename, s-computername (-1 when not logged); ``None`` when a
    #: required field is missing, which sends the layout down the line-by-line path.
    fast: tuple[int, ...] | None = field(default=None, compare=False)

    @classmethod
    def from_names(cls, names: Iterable[str], *, kind: RecordKind | None = None,
                   inferred: bool = False) -> Layout:
        names = tuple(names)
        lowered = [n.lower() for n in names]
        if kind is None:
            kind = "httperr" if ("s-reason" in lowered or "s-queuename" in lowered) else "w3c"
        index: dict[str, int] = {}
        for i, name in enumerate(lowered):
            index.setdefault(name, i)
        wanted = ("date", "time", "c-ip", "cs-uri-stem", "sc-status", "sc-substatus", "sc-win32-status",
                  "cs(user-agent)", "cs-username", "s-sitename", "s-computername")
        fast: tuple[int, ...] | None = tuple(index.get(n, -1) for n in wanted)
        if min(fast[:7]) < 0:  # type: ignore[index]
            fast = None
        return cls(names=names, kind=kind, inferred=inferred, index=index, fast=fast)

    def pos(self, name: str) -> int:
        return self.index.get(name.lower(), -1)

    @property
    def width(self) -> int:
        return len(self.names)


_INFERRED = {
    len(DEFAULT_W3C_FIELDS): Layout.from_names(DEFAULT_W3C_FIELDS, inferred=True),
    len(FULL_W3C_FIELDS): Layout.from_names(FULL_W3C_FIELDS, inferred=True),
    len(HTTPERR_FIELDS): Layout.from_names(HTTPERR_FIELDS, kind="httperr", inferred=True),
}


def inferred_layout(field_count: int, *, httperr: bool = False) -> Layout | None:
    """The documented IIS default layout with this many fields, for lines before any ``#Fields``.

    The widths do not overlap (15 and 22 W3C fields, 13 HTTPERR fields), so the count decides; callers
    check the line's shape with :func:`plausible` before trusting the guess.
    """
    del httperr  # no ambiguity between the documented widths today
    return _INFERRED.get(field_count)


_DATE = re.compile(rb"^\d{4}-\d\d-\d\d$")
_TIME = re.compile(rb"^\d\d:\d\d:\d\d(\.\d+)?$")


def plausible(parts: list[bytes], layout: Layout) -> bool:
    """Does a headerless line look like ``layout``? (date, time, and numbers where the layout has them)."""
    index = layout.index
    if not (_DATE.match(parts[index["date"]]) and _TIME.match(parts[index["time"]])):
        return False
    numeric = ("c-port", "s-port") if layout.kind == "httperr" else ("sc-status", "sc-substatus", "s-port")
    return all(parts[index[name]].isdigit() or parts[index[name]] == b"-"
               for name in numeric if name in index)


def parse_fields_directive(line: bytes) -> Layout | None:
    """Parse ``#Fields: a b c``; ``None`` when the directive lists no fields."""
    text = line.split(b":", 1)[1] if b":" in line else b""
    names = text.decode("latin-1").split()
    # Some writers append a "// comment" to directive lines; it is not a field.
    if "//" in names:
        names = names[: names.index("//")]
    return Layout.from_names(names) if names else None


def decode_value(raw: bytes, *, utf8: bool = True) -> str:
    """Turn a logged value into display text: ``-`` is empty, ``+`` was a space (IIS encodes spaces)."""
    if raw == b"-":
        return ""
    text = raw.decode("utf-8", "replace") if utf8 else raw.decode("cp1252", "replace")
    return text


# --- files --------------------------------------------------------------------------------------------

_LOG_NAME = re.compile(r"^(u_)?(ex|extend|httperr)[\w.-]*\.log(\.gz)?$", re.IGNORECASE)
#: Other files a folder may hold logs under (renamed copies, rotated names); taken when their content
#: starts like a W3C log.
_MAYBE_LOG = re.compile(r"\.(log|log\.gz|gz|txt)$|\.log\.\d+$", re.IGNORECASE)
_SITE_DIR = re.compile(r"^W3SVC(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class LogFile:
    """A log file found on disk, with what its name and folder say about it."""

    path: Path
    site: str | None      # "W3SVC<n>" from the folder, when there is one
    utf8: bool            # u_ex* names (and anything not named ex*) are UTF-8
    httperr: bool         # under an HTTPERR folder or named httperr*.log
    gz: bool

    @property
    def source(self) -> str:
        return str(self.path)


def site_from_path(path: PurePath) -> str | None:
    """``W3SVC<n>`` from the nearest folder of that name above ``path``, if any."""
    for part in reversed(path.parts[:-1]):
        match = _SITE_DIR.match(part)
        if match:
            return f"W3SVC{int(match.group(1))}"
    return None


def _describe(path: Path) -> LogFile:
    name = path.name.lower()
    gz = name.endswith(".gz")
    bare = name[:-3] if gz else name
    httperr = bare.startswith("httperr") or any(p.upper() == "HTTPERR" for p in path.parts[:-1])
    utf8 = not (bare.startswith("ex") or bare.startswith("in") or bare.startswith("nc"))
    return LogFile(path=path, site=site_from_path(path), utf8=utf8, httperr=httperr, gz=gz)


#: Folder names of the IIS log tree (and of admin shares) that never name a server.
_GENERIC_DIRS = {"logfiles", "logs", "log", "inetpub", "iis", "w3svc", "httperr", "system32", "windows",
                 "c$", "d$", "e$", "f$", "admin$", "hosts"}


def server_from_layout(path: PurePath, root: PurePath) -> str:
    """The server a copied log belongs to, from the folders between ``root`` (the folder the admin named)
    and the file: the nearest folder above the ``W3SVC<n>`` (or ``HTTPERR``) folder that is not part of
    the IIS log tree (``web01/W3SVC1/``, ``web01/inetpub/logs/LogFiles/W3SVC1/``, a run or bundle folder
    ``hosts/web01/W3SVC1/``). Empty when there is no such folder below ``root``: names above what the
    admin gave (``/var/tmp``) are never taken."""
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return ""
    anchor = next((i for i in range(len(parts) - 1, -1, -1)
                   if _SITE_DIR.match(parts[i]) or parts[i].lower() == "httperr"), None)
    if anchor is None:
        return ""
    for part in reversed(parts[:anchor]):
        if part.lower() not in _GENERIC_DIRS:
            return part
    return ""


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[LogFile]:
    """Expand files and directories (recursively) into log files, in a stable chronological-ish order.

    Inside directories, names IIS and HTTP.sys write are taken (``u_ex*.log``, ``ex*.log``, hourly/size
    rollovers such as ``u_ex26112413.log`` or ``u_extend12.log``, ``httperr*.log``, each optionally
    ``.gz``), and so is any other ``*.log``/``*.gz``/``*.txt`` whose first bytes read like a W3C log
    (renamed copies). A file named on the command line is always taken.
    Raises :class:`InputError` for a path that does not exist.
    """
    found: list[LogFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and (
                _LOG_NAME.match(p.name) or (_MAYBE_LOG.search(p.name) and _sniff(p))))
            found.extend(_describe(p) for p in inside)
        elif path.is_file():
            found.append(_describe(path))
        else:
            raise InputError("no such file or directory", path=str(path))
    return found


def _open_gzip(path: Path) -> BinaryIO:
    """A ``.gz`` log for binary reading: ISA-L's inflater where ``isal`` is installed (``iisfleet[fast]``;
    it inflates IIS logs several times faster), the standard library's otherwise. Same bytes either way."""
    try:
        from isal import igzip
    except ImportError:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return igzip.open(path, "rb")  # type: ignore[no-any-return]


def _sniff(path: Path) -> bool:
    try:
        opener = _open_gzip if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as stream:  # type: ignore[operator]
            head = stream.read(4096)
    except (OSError, EOFError):
        return False
    return bool(head.strip()) and looks_like_log(head)


def open_log(log: LogFile) -> BinaryIO:
    """Open a log for binary reading (gzip transparently); the UTF-8 BOM is left to the reader."""
    if log.gz:
        return _open_gzip(log.path)
    return open(log.path, "rb", buffering=0)


def looks_like_log(head: bytes) -> bool:
    """Cheap sniff of a file's first bytes: a W3C directive or a line starting with a date."""
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n")
    if not head:
        return True  # an empty log is still a log
    if head.startswith(b"#"):
        return True
    return bool(re.match(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", head[:40]))


# --- the simple reader -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One data line with every field by name (custom fields too), for callers that want all of it."""

    source: str
    line: int
    offset: int  # byte offset of the line in the file (a UTF-8 BOM counts)
    kind: RecordKind
    fields: dict[str, bytes]
    inferred: bool = False  # headerless line read with a documented default layout

    def get(self, name: str, default: bytes = b"-") -> bytes:
        return self.fields.get(name, default)


def iter_records(stream: BinaryIO | io.BytesIO, source: str = "<stream>", *, httperr: bool = False,
                 malformed: list[tuple[str, int, str]] | None = None) -> Iterator[Record]:
    """Yield every data line as a :class:`Record`, tracking ``#Fields`` changes.

    Lines whose field count does not match the layout in force are appended to ``malformed``
    (source, line, reason) instead of being yielded. This reader is simple, not fast; the analysis
    engine does not use it.
    """
    layout: Layout | None = None
    offset = 0
    for number, raw in enumerate(stream, 1):
        start = offset
        offset += len(raw)
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
            start += 3
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        if line.startswith(b"#"):
            if line.startswith(b"#Fields:"):
                layout = parse_fields_directive(line)
            continue
        parts = line.split(b" ")
        current = layout or inferred_layout(len(parts), httperr=httperr)
        if current is not None and current.inferred and not plausible(parts, current):
            current = None
        if current is None or len(parts) != current.width:
            if malformed is not None:
                reason = ("no #Fields directive in force" if current is None
                          else f"{len(parts)} fields, #Fields has {current.width}")
                malformed.append((source, number, reason))
            continue
        yield Record(source=source, line=number, offset=start, kind=current.kind,
                     fields=dict(zip(current.names, parts)), inferred=current.inferred)
