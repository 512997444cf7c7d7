"""The public face of the log engine: :class:`LogAnalyzer` in, :class:`LogAnalysis` out.

Files are read in 16 MiB buffers of complete lines, so memory stays flat whatever the file size. A large
plain file is cut into byte ranges at line boundaries and scanned by one process per core; each range
starts with the ``#Fields`` layout in force at its first byte (found with a backwards memchr search), and
401s still open at the end of a range are finished against the start of the next range by the parent.
A multi-member ``.gz`` is split at member boundaries the same way (``toolkit/logs/gzsplit.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from multiprocessing import get_context
from pathlib import Path, PureWindowsPath
from typing import Any

from toolkit.codes import decode_win32, substatus_meaning
from toolkit.errors import InputError
from toolkit.logs.engine import Aggregate, Event401, Scanner
from toolkit.logs.gzsplit import Misaligned, head_layout, member_splits, scan_member_range
from toolkit.logs.w3c import (Layout, LogFile, discover, looks_like_log, open_log, parse_fields_directive,
                               server_from_layout, site_from_path)

__all__ = ["LogAnalyzer", "LogAnalysis", "Group401", "LogRef", "parse_excerpt", "ProgressCallback",
           "ANALYZE_SCHEMA", "samples_dir"]

#: Version of the JSON document :meth:`LogAnalysis.to_dict` returns (bump on incompatible changes).
ANALYZE_SCHEMA = "iisfleet.analyze/1"
CHUNK_BYTES = 16 * 1024 * 1024
#: Files at least this large are split across processes (below it, process start-up costs more).
PARALLEL_MIN_BYTES = 96 * 1024 * 1024
#: The same for a multi-member ``.gz`` (compressed size; IIS logs deflate about tenfold).
PARALLEL_MIN_GZ_BYTES = 8 * 1024 * 1024

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class LogRef:
    """Where one terminal 401 was logged, with the fields an admin needs to recognise it."""

    source: str
    line: int
    time: str
    c_ip: str
    user: str
    uri: str
    user_agent: str

    def to_dict(self) -> dict:
        return {"source": self.source, "line": self.line, "time": self.time, "c_ip": self.c_ip,
                "user": self.user, "uri": self.uri, "user_agent": self.user_agent}


@dataclass(frozen=True)
class Group401:
    """All 401s of one server/site with the same substatus and win32 status."""

    server: str
    site: str
    substatus: int
    win32: int
    win32_hex: str
    win32_name: str
    win32_meaning: str
    substatus_meaning: str
    count: int
    terminal: int
    handshake: int
    samples: list[LogRef]

    def to_dict(self) -> dict:
        return {"server": self.server, "site": self.site, "substatus": self.substatus, "win32": self.win32,
                "win32_hex": self.win32_hex, "win32_name": self.win32_name,
                "win32_meaning": self.win32_meaning, "substatus_meaning": self.substatus_meaning,
                "count": self.count, "terminal": self.terminal, "handshake": self.handshake,
                "samples": [s.to_dict() for s in self.samples]}


@dataclass
class LogAnalysis:
    """What a pile of logs says about 401s. Lists are sorted deterministically."""

    lines_total: int = 0
    lines_malformed: int = 0
    lines_inferred: int = 0
    lines_filtered: int = 0
    malformed: list[tuple[str, int, str]] = field(default_factory=list)
    requests: int = 0
    requests_by_site: dict[str, int] = field(default_factory=dict)
    requests_by_server_site: dict[tuple[str, str], int] = field(default_factory=dict)
    terminal_by_server_site: dict[tuple[str, str], int] = field(default_factory=dict)
    status_401_total: int = 0
    status_401_terminal: int = 0
    status_401_handshake: int = 0
    groups: list[Group401] = field(default_factory=list)
    top_uris: list[tuple[str, int]] = field(default_factory=list)
    top_users: list[tuple[str, int]] = field(default_factory=list)
    top_clients: list[tuple[str, int]] = field(default_factory=list)
    by_hour: dict[str, int] = field(default_factory=dict)
    first_time: str | None = None
    last_time: str | None = None
    httperr_total: int = 0
    httperr_by_reason: dict[str, int] = field(default_factory=dict)
    httperr_by_status: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    window_s: float = 30.0
    #: things the admin should know about how the input was read (servers that may have been merged)
    warnings: list[str] = field(default_factory=list)

    def sites(self) -> list[dict]:
        """One row per server/site: requests, terminal 401s and the terminal rate (the headline)."""
        rows: list[dict[str, Any]] = []
        for (server, site), requests in self.requests_by_server_site.items():
            terminal = self.terminal_by_server_site.get((server, site), 0)
            total = sum(g.count for g in self.groups if (g.server, g.site) == (server, site))
            rate = round(terminal / requests, 6) if requests else 0.0
            rows.append({"server": server, "site": site, "requests": requests, "status_401": total,
                         "terminal": terminal, "terminal_rate": rate})
        for (server, site), terminal in self.terminal_by_server_site.items():
            if (server, site) not in self.requests_by_server_site:  # 401s from excerpts of unknown volume
                rows.append({"server": server, "site": site, "requests": 0, "status_401": terminal,
                             "terminal": terminal, "terminal_rate": 0.0})
        rows.sort(key=lambda r: (-r["terminal_rate"], -r["terminal"], r["server"], r["site"]))
        return rows

    def to_dict(self) -> dict:
        """The ``iisfleet.analyze/1`` document (docs/analyze.md); deterministic for the same input."""
        return {
            "schema": ANALYZE_SCHEMA,
            "window_s": self.window_s,
            "sources": self.sources,
            "time_range": {"first": self.first_time, "last": self.last_time},
            "lines": {"total": self.lines_total, "malformed": self.lines_malformed,
                      "inferred": self.lines_inferred, "filtered": self.lines_filtered},
            "malformed": [{"source": s, "line": n, "reason": r} for s, n, r in self.malformed],
            "requests": self.requests,
            "requests_by_site": self.requests_by_site,
            "status_401": {"total": self.status_401_total, "terminal": self.status_401_terminal,
                           "handshake": self.status_401_handshake},
            "sites": self.sites(),
            "rows": [g.to_dict() for g in self.groups],
            "top": {name: [{"value": v, "count": c} for v, c in values] for name, values in
                    (("uris", self.top_uris), ("users", self.top_users), ("clients", self.top_clients))},
            "by_hour": self.by_hour,
            "httperr": {"total": self.httperr_total, "by_reason": self.httperr_by_reason,
                        "by_status": self.httperr_by_status},
            "warnings": self.warnings,
        }

    def terminal_rate(self, server: str, site: str) -> float:
        """Terminal 401s per request for one server/site (0.0 when it logged no requests)."""
        requests = self.requests_by_server_site.get((server, site), 0)
        return self.terminal_by_server_site.get((server, site), 0) / requests if requests else 0.0


def _merge_warnings(unnamed: set[str]) -> list[str]:
    """Warn when logs with no server name come from what may be several servers: different log trees
    (the folders above their ``W3SVC<n>`` folders), or the same site and file name in two folders."""
    if len(unnamed) < 2:
        return []
    trees: dict[str, list[str]] = {}
    names: dict[tuple[str, str], set[str]] = {}
    for source in sorted(unnamed):
        path = Path(source)
        parts = path.parts[:-1]
        site = site_from_path(path) or ""
        cut = next((i for i in range(len(parts) - 1, -1, -1) if parts[i].upper() == site.upper()), len(parts))
        tree = str(Path(*parts[:cut])) if cut else "."
        trees.setdefault(tree, []).append(source)
        names.setdefault((site, path.name.lower()), set()).add(str(path.parent))
    clashes = sorted(f"{site or 'no site'}/{name}" for (site, name), folders in names.items() if len(folders) > 1)
    if len(trees) < 2 and not clashes:
        return []
    where = ", ".join(sorted(trees)[:5]) + (" ..." if len(trees) > 5 else "")
    detail = f" (the same file in several folders: {', '.join(clashes[:3])})" if clashes else ""
    return [f"logs from {len(trees)} folder(s) ({where}) have no server name{detail}: they are counted as one "
            f"server. Lay them out as <server>/W3SVC<n>/..., log s-computername, or give --server once per PATH."]


def _iso(t: int | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(raw: bytes | None) -> str:
    if raw is None or raw == b"-":
        return "" if raw is None else "-"
    return raw.decode("utf-8", "replace")


def _number(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        return 0  # "-" or garbage in a code field


def _to_epoch(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # W3C times are UTC, so naive bounds are read as UTC
    return int(value.timestamp())


def samples_dir() -> Path:
    """The bundled sample logs (``iisfleet analyze --sample``), inside the installed package."""
    return Path(str(resources.files("toolkit.logs").joinpath("samples")))


def _site_number(path: str) -> int | None:
    site = site_from_path(PureWindowsPath(path) if "\\" in path else Path(path))
    return int(site[5:]) if site else None


def parse_excerpt(blob: bytes) -> Iterator[tuple[int, bytes]]:
    """Split a collector excerpt (``<n>\\t<line>`` per line, docs/contracts.md) into numbered lines.

    Raises :class:`InputError` naming the excerpt line when a line has no valid number prefix.
    """
    blob = blob.removeprefix(b"\xef\xbb\xbf")
    for index, raw in enumerate(blob.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw:
            continue
        number, tab, line = raw.partition(b"\t")
        if not tab or not number.isdigit():
            raise InputError("excerpt line has no '<number><TAB>' prefix", path="<excerpt>", line=index)
        yield int(number), line


def _layout_before(fd: int, offset: int, block: int = 1 << 20) -> Layout | None:
    """The ``#Fields`` directive in force at ``offset`` (the last one before it), or ``None``.

    Reads backwards in 1 MiB blocks with ``pread`` (no mmap: mapped pages would count against our RSS).
    """
    marker = b"#Fields:"
    end = offset
    while end > 0:
        start = max(0, end - block)
        # Overlap by the marker length so a directive cut by the block edge is still seen.
        data = os.pread(fd, min(end + len(marker), offset) - start, start)
        pos = data.rfind(marker)
        while pos >= 0:
            before = data[pos - 1:pos] if pos > 0 else (os.pread(fd, 1, start - 1) if start > 0 else b"\n")
            if before == b"\n":
                line = os.pread(fd, 65536, start + pos)
                return parse_fields_directive(line.split(b"\n", 1)[0].rstrip(b"\r"))
            pos = data.rfind(marker, 0, pos)
        end = start
    return None


def _next_line_start(fd: int, offset: int) -> int:
    """The first line start at or after ``offset`` (the file size when there is none)."""
    while True:
        data = os.pread(fd, 65536, offset)
        if not data:
            return offset
        cut = data.find(b"\n")
        if cut >= 0:
            return offset + cut + 1
        offset += len(data)


@dataclass
class _RangeResult:
    agg: Aggregate
    pending: list[Event401]
    lines: int


def _scan_range(path: str, start: int, end: int, layout_names: tuple[str, ...] | None, kind: str | None,
                options: dict) -> _RangeResult:
    """Worker: scan ``[start, end)`` of a plain file (both ends on line starts)."""
    agg = Aggregate()
    layout = Layout.from_names(layout_names, kind=kind) if layout_names else None  # type: ignore[arg-type]
    scanner = Scanner(agg, layout=layout, **options)
    with open(path, "rb", buffering=0) as stream:
        _feed_range(scanner, stream.fileno(), start, end)
    pending, scanner.pending = scanner.pending, []
    return _RangeResult(agg, pending, scanner.line_no)


def _feed_range(scanner: Scanner, fd: int, start: int, end: int,
                progress: Callable[[int], None] | None = None) -> None:
    """Feed ``[start, end)`` of a plain file (``start`` on a line start) in blocks read with ``pread``.

    Each block is cut after its last newline by passing an end offset, not by copying; the next block
    re-reads the few bytes after the cut. A line longer than a block is read whole.
    """
    offset = start
    size = CHUNK_BYTES
    while offset < end:
        block = os.pread(fd, min(size, end - offset), offset)
        if not block:
            break
        skip = 3 if offset == 0 and block.startswith(b"\xef\xbb\xbf") else 0
        if skip:
            block = block[skip:]
            if not block:  # the file holds only a BOM (or the block ended right after it): nothing to feed
                if progress is not None:
                    progress(skip)
                offset += skip
                continue
        cut = block.rfind(b"\n") + 1
        if offset + skip + len(block) >= end and cut < len(block):
            # The last line of the file has no newline: give it one.
            block = block + b"\n"
            cut = len(block)
        if cut == 0:
            size *= 2  # a line longer than the block: read more at once
            continue
        scanner.feed(block, end=cut)
        if progress is not None:
            progress(skip + cut)
        offset += skip + cut
        size = CHUNK_BYTES


def _feed_stream(scanner: Scanner, stream, limit: int | None, *, first: bool,
                 progress: Callable[[int], None] | None = None) -> None:
    remaining = limit
    carry = b""
    head = first
    while True:
        size = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
        block = stream.read(size) if size > 0 else b""
        if remaining is not None:
            remaining -= len(block)
        if progress is not None and block:
            progress(len(block))
        if not block:
            if carry:
                scanner.feed(carry + b"\n")
            return
        if head:
            block = block.removeprefix(b"\xef\xbb\xbf")
            head = False
        cut = block.rfind(b"\n")
        if cut < 0:
            carry += block
            continue
        scanner.feed(carry + block[:cut + 1] if carry else block[:cut + 1])
        carry = block[cut + 1:]


class LogAnalyzer:
    """Collects evidence from W3C and HTTPERR logs into one :class:`LogAnalysis`.

    ``window_s`` is the handshake window; ``server`` names the server the logs came from (used when
    ``s-computername`` is not logged). ``since``/``until`` (UTC) keep only lines inside the bounds.
    ``workers`` caps the processes used for one large file (default: the CPU count; 1 = no processes).
    ``native=False`` uses the pure-Python engine even when the compiled scanner is built (same results).
    """

    def __init__(self, window_s: float = 30.0, server: str = "", *, since: datetime | None = None,
                 until: datetime | None = None, workers: int | None = None,
                 progress: ProgressCallback | None = None, native: bool = True) -> None:
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        self.window_s = window_s
        self.server = server
        self.since = _to_epoch(since)
        self.until = _to_epoch(until)
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self.progress = progress
        self.native = native
        self._agg = Aggregate()
        # 401s waiting for their window at the end of a file, carried into the next file of the same folder.
        self._pending: dict[tuple[str, str], list[Event401]] = {}

    # --- inputs --------------------------------------------------------------------------------------

    def feed_path(self, path: str | os.PathLike[str], server: str | None = None) -> None:
        """Analyse a file, a ``.gz`` file or a directory (recursively). Raises :class:`InputError`.

        ``server`` names the server these logs came from (over the analyzer's own ``server``). Without
        either, a line's ``s-computername`` names it, else the folder layout below ``path``
        (``web01/W3SVC1/u_ex261124.log``, see :func:`toolkit.logs.w3c.server_from_layout`).
        """
        files = discover([path])
        explicit = Path(path).is_file()
        root = Path(path)
        total = sum(f.path.stat().st_size for f in files)
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if self.progress is not None:
                self.progress(done, total)

        for log in files:
            self.feed_file(log, check=explicit, progress=advance, server=server,
                           fallback_server="" if explicit else server_from_layout(log.path, root))

    def feed_file(self, log: LogFile, *, check: bool = True,
                  progress: Callable[[int], None] | None = None, server: str | None = None,
                  fallback_server: str = "") -> None:
        """Analyse one discovered file. ``check`` rejects files that do not start like a log.

        401s still inside their window at the end of the file wait for the next file of the same folder
        (hourly or size rollover), so feed a folder's files in name order.
        """
        with open_log(log) as stream:
            try:
                head = stream.read(4096)
            except (OSError, EOFError) as exc:  # e.g. a .gz that is not gzip
                raise InputError(f"cannot read: {exc}", path=log.source) from None
        if check and not looks_like_log(head):
            raise InputError("not a W3C/HTTPERR log (no directive or dated line at the start)",
                             path=log.source)
        options = self._options(log.source, log.site or "", log.httperr, server=server,
                                fallback_server=fallback_server)
        folder = (str(log.path.parent), "httperr" if log.httperr else "w3c")
        carried = self._pending.pop(folder, [])
        size = log.path.stat().st_size
        pending: list[Event401] | None = None
        if self.workers > 1 and not log.gz and size >= PARALLEL_MIN_BYTES:
            pending = self._feed_parallel(log, size, options, carried, progress)
        elif self.workers > 1 and log.gz and size >= PARALLEL_MIN_GZ_BYTES:
            pending = self._feed_parallel_gz(log, size, options, carried, progress, head)
        if pending is None:
            scanner = Scanner(self._agg, pending=carried, **options)
            try:
                if log.gz:
                    with open_log(log) as stream:
                        _feed_stream(scanner, stream, None, first=True, progress=progress)
                else:
                    with open(log.path, "rb", buffering=0) as handle:
                        _feed_range(scanner, handle.fileno(), 0, size, progress)
            except (OSError, EOFError) as exc:
                raise InputError(f"cannot read: {exc}", path=log.source) from None
            pending = scanner.pending
        if pending:
            self._pending[folder] = pending

    def feed_lines(self, source: str, lines: Iterable[tuple[int, bytes]], site_id: int | None = None) -> None:
        """Analyse numbered lines (a collector excerpt) from one file; line numbers are reported as given."""
        numbers: list[int] = []
        chunk: list[bytes] = []
        for number, line in lines:
            numbers.append(number)
            chunk.append(line.rstrip(b"\r\n"))
        if site_id is not None:
            site = f"W3SVC{site_id}"
        else:  # the collector reports Windows paths: ...\LogFiles\W3SVC2\u_ex261124.log
            site = site_from_path(PureWindowsPath(source) if "\\" in source else Path(source)) or ""
        httperr = "httperr" in source.lower()
        scanner = Scanner(self._agg, **self._options(source, site, httperr))
        if chunk:
            chunk[0] = chunk[0].removeprefix(b"\xef\xbb\xbf")
            scanner.feed(b"\n".join(chunk) + b"\n", line_numbers=numbers)
        scanner.finish()

    def feed_collected(self, entry: Mapping[str, Any], excerpt: bytes) -> None:
        """One file entry of a ``Get-IisW3CLog`` envelope (docs/contracts.md 1.3): the host already classified
        its 401s with this module's rule, so the excerpt holds the terminal 401s (with the client's lines
        around them) and ``handshakes`` counts the rest per server/site/substatus/win32.

        When the host entered a large file at ``Since`` (``line_numbers`` = ``from-offset``), line numbers
        count from that byte offset, and the source name says so.
        """
        path = str(entry.get("path") or "")
        source = path
        if entry.get("line_numbers") == "from-offset":
            source = f"{path} (lines counted from byte {int(entry.get('start_offset') or 0)})"
        site_id = entry.get("site_id")
        site_id = site_id if isinstance(site_id, int) and not isinstance(site_id, bool) else None
        if site_id is None and source != path:
            site_id = _site_number(path)
        self.feed_lines(source, parse_excerpt(excerpt), site_id=site_id)
        agg = self._agg
        for group in entry.get("handshakes") or []:
            if not isinstance(group, Mapping):
                continue
            count = group.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
                continue
            server = self.server or str(group.get("server") or "")
            key = (server, str(group.get("site") or ""), str(group.get("substatus") or "-").encode("utf-8"),
                   str(group.get("win32") or "-").encode("utf-8"))
            into = agg.groups.setdefault(key, [0, 0, 0, []])
            into[0] += count
            into[2] += count
            agg.status_401_total += count
            agg.status_401_handshake += count

    def _options(self, source: str, site: str, httperr: bool, *, server: str | None = None,
                 fallback_server: str = "") -> dict:
        return {"source": source, "window_s": self.window_s,
                "server": self.server if server is None else server, "site": site,
                "since": self.since, "until": self.until, "httperr": httperr, "native": self.native,
                "fallback_server": fallback_server}

    def _feed_parallel(self, log: LogFile, size: int, options: dict, carried: list[Event401],
                       progress: Callable[[int], None] | None) -> list[Event401]:
        with open(log.path, "rb", buffering=0) as handle:
            fd = handle.fileno()
            bounds = [0]
            for i in range(1, self.workers):
                cut = _next_line_start(fd, size * i // self.workers)
                if bounds[-1] < cut < size:
                    bounds.append(cut)
            bounds.append(size)
            layouts = [None] + [_layout_before(fd, b) for b in bounds[1:-1]]
        jobs = []
        with ProcessPoolExecutor(max_workers=len(bounds) - 1, mp_context=get_context("fork")) as pool:
            for i in range(len(bounds) - 1):
                layout = layouts[i]
                jobs.append(pool.submit(_scan_range, str(log.path), bounds[i], bounds[i + 1],
                                        layout.names if layout else None, layout.kind if layout else None,
                                        options))
            results = [job.result() for job in jobs]
        if progress is not None:
            progress(size)
        # Merge in file order; 401s open at the end of range i are finished against range i+1.
        pending = carried
        line_base = 0
        for i, result in enumerate(results):
            if pending:
                pending = self._finish_against(log, bounds[i], bounds[i + 1], layouts[i], pending, options,
                                               line_base)
            result.agg.shift_lines(log.source, line_base)
            for ev in result.pending:
                ev.line += line_base
            self._agg.merge(result.agg)
            pending = pending + result.pending
            line_base += result.lines
        return pending

    def _feed_parallel_gz(self, log: LogFile, size: int, options: dict, carried: list[Event401],
                          progress: Callable[[int], None] | None, head: bytes) -> list[Event401] | None:
        """A multi-member ``.gz`` split at member boundaries, one process per range (toolkit/logs/gzsplit.py).
        ``None`` when it cannot be split or a boundary turns out not to be one: the caller reads it whole."""
        with open(log.path, "rb", buffering=0) as handle:
            points = member_splits(handle.fileno(), size, self.workers)
        if len(points) < 2:
            return None
        assumed = head_layout(head, bool(options.get("httperr")))
        jobs = []
        try:
            with ProcessPoolExecutor(max_workers=len(points), mp_context=get_context("fork")) as pool:
                for i, start in enumerate(points):
                    stop = points[i + 1] if i + 1 < len(points) else None
                    jobs.append(pool.submit(scan_member_range, str(log.path), start, stop,
                                            assumed if i else None, options, carried if i == 0 else []))
                results = [job.result() for job in jobs]
            in_force = results[0].end_layout
            for i in range(1, len(results)):
                if results[i].start_layout != in_force:  # the layout changed in an earlier range: scan again
                    stop = points[i + 1] if i + 1 < len(points) else None
                    results[i] = scan_member_range(str(log.path), points[i], stop, in_force, options, [])
                in_force = results[i].end_layout
        except (Misaligned, OSError, EOFError):
            return None
        if progress is not None:
            progress(size)
        pending: list[Event401] = []
        line_base = 0
        for result in results:
            result.agg.shift_lines(log.source, line_base)
            for ev in result.pending:
                ev.line += line_base
            self._agg.merge(result.agg)
            pending += result.pending
            line_base += result.lines
        return pending

    def _finish_against(self, log: LogFile, start: int, end: int, layout: Layout | None,
                        pending: list[Event401], options: dict, line_base: int) -> list[Event401]:
        """Resolve carried 401s against the start of ``[start, end)`` without counting its lines again."""
        scanner = Scanner(self._agg, layout=layout, pending=pending, resolve_only=True, **options)
        with open(log.path, "rb", buffering=0) as stream:
            stream.seek(start)
            position = start
            while scanner.pending and position < end:
                block = stream.read(min(4 * 1024 * 1024, end - position))
                cut = block.rfind(b"\n")
                if cut < 0:
                    break
                position += cut + 1
                stream.seek(position)
                scanner.feed(block[:cut + 1])
        return scanner.pending

    # --- output --------------------------------------------------------------------------------------

    def result(self, top: int = 10) -> LogAnalysis:
        """Classify what is still open as terminal and return the analysis (the analyzer stays usable)."""
        agg = Aggregate()
        agg.merge(self._agg)
        for events in self._pending.values():
            for ev in events:
                agg.classify(ev, True)
        merged: dict[tuple[str, str, int, int], list] = {}
        for (server, site, raw_sub, raw_win32), (count, term, hand, samples) in agg.groups.items():
            key = (server, site, _number(raw_sub), _number(raw_win32) & 0xFFFFFFFF)
            into = merged.setdefault(key, [0, 0, 0, []])
            into[0] += count
            into[1] += term
            into[2] += hand
            into[3].extend(samples[: 5 - len(into[3])])
        groups = []
        for (server, site, sub, win32), (count, term, hand, samples) in merged.items():
            code = decode_win32(win32)
            groups.append(Group401(
                server=server, site=site, substatus=sub, win32=code.value, win32_hex=code.hex,
                win32_name=code.name, win32_meaning=code.meaning,
                substatus_meaning=substatus_meaning(401, sub),
                count=count, terminal=term, handshake=hand,
                samples=[LogRef(source=s, line=n, time=stamp, c_ip=_text(ip), user=_text(user),
                                uri=_text(stem), user_agent=_text(ua))
                         for s, n, stamp, ip, user, stem, ua in samples]))
        groups.sort(key=lambda g: (-g.terminal, -g.count, g.server, g.site, g.substatus, g.win32))

        def top_of(counter) -> list[tuple[str, int]]:
            return sorted(((_text(k), v) for k, v in counter.items()), key=lambda kv: (-kv[1], kv[0]))[:top]

        by_site: dict[str, int] = {}
        for (_server, site), n in agg.requests_by.items():
            by_site[site] = by_site.get(site, 0) + n
        return LogAnalysis(
            lines_total=agg.lines_total, lines_malformed=agg.lines_malformed,
            lines_inferred=agg.lines_inferred,
            lines_filtered=agg.lines_filtered, malformed=list(agg.malformed), requests=agg.requests,
            requests_by_site=dict(sorted(by_site.items())),
            requests_by_server_site=dict(sorted(agg.requests_by.items())),
            terminal_by_server_site=dict(sorted(agg.terminal_by.items())),
            status_401_total=agg.status_401_total, status_401_terminal=agg.status_401_terminal,
            status_401_handshake=agg.status_401_handshake, groups=groups,
            top_uris=top_of(agg.top_uris), top_users=top_of(agg.top_users),
            top_clients=top_of(agg.top_clients),
            by_hour=dict(sorted(agg.by_hour.items())), first_time=_iso(agg.first_time),
            last_time=_iso(agg.last_time), httperr_total=agg.httperr_total,
            httperr_by_reason=dict(sorted(agg.httperr_by_reason.items())),
            httperr_by_status=dict(sorted(agg.httperr_by_status.items())),
            sources=list(agg.sources), window_s=self.window_s,
            warnings=_merge_warnings(agg.unnamed_sources))
