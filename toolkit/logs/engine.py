"""The streaming scanner behind ``iisfleet analyze``: counts requests and classifies every 401.

Speed comes from touching as few bytes as possible from Python:

* A buffer of complete lines is cut into *segments* at directive lines (memchr-speed ``find(b'#')``), so
  every data line is read against the ``#Fields`` layout in force.
* A segment is counted in blocks of :data:`PROOF_BLOCK` bytes: ``count(b'\\n')`` gives the line count and
  ``count(b' ')`` proves the field counts: when a block holds exactly ``(fields - 1) * lines`` spaces, no
  line can be short or long (see the one exception in docs/analyze.md). A block that fails is halved down
  to a few lines checked one by one, so each malformed line is recorded with its number at the cost of
  about one extra block of counting. Segments that straddle a ``--since/--until`` bound, or that the fast
  path cannot read (``sc-status`` first or last, several sites in one file, excerpts with their own line
  numbers), go line by line.
* 401 lines are found with ``find(b' 401 ')`` and only those are split into fields. Line numbers are
  counted only for the few 401s that become samples or wait for the next buffer.
* Handshake classification needs the client's later lines. Most handshakes finish within a few lines, so
  each 401 first searches a short stretch after itself for its client (``c-ip``, plus the user agent when it
  sits next to ``c-ip``), and a success found that way also settles the client's other 401s before it.
  Handshakes are only counted. The 401s still open are grouped by client: one forward ``find`` per client
  (C speed) runs to the end of the client's time window, found from sampled line times. When very many
  clients are open at once, one regular expression over the union of their windows replaces the finds.

Everything a scan produces goes into an :class:`Aggregate`, which is picklable and mergeable so that
byte ranges of one large file can be scanned by separate processes.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from toolkit.logs.w3c import Layout, inferred_layout, parse_fields_directive, plausible

_MultiSearch: Any
try:
    from ahocorasick_rs import BytesAhoCorasick as _MultiSearch
except ImportError:  # pragma: no cover - optional accelerator
    _MultiSearch = None

# The compiled inner loop (toolkit/logs/_scan.c), built when the package is installed with a C compiler.
# IISFLEET_NO_NATIVE=1 turns it off (the pure-Python engine below gives the same results, more slowly).
_native: ModuleType | None
try:
    from toolkit.logs import _scan as _native
except ImportError:  # pragma: no cover - a build without a C compiler
    _native = None
# Read as hatch_build.py reads it at install time: set to anything but "" or "0".
if os.environ.get("IISFLEET_NO_NATIVE", "").strip() not in ("", "0"):
    _native = None


def native_available() -> bool:
    """Whether the compiled scanner is importable (and not turned off with ``IISFLEET_NO_NATIVE``)."""
    return _native is not None

__all__ = ["Aggregate", "Event401", "Scanner", "SAMPLES_PER_GROUP", "MALFORMED_CAP", "native_available"]

SAMPLES_PER_GROUP = 5
MALFORMED_CAP = 200
#: How far (bytes) a 401 looks ahead for its own client before joining the batched search.
SHORT_RANGE = 24 * 1024
#: Tolerance for log lines that are not written in strict time order (seconds).
SLACK_S = 5
#: Open clients are searched one ``find`` each, unless more than this many are open at once and their
#: windows overlap more than :data:`BATCH_RATIO` times: then one regular expression scans the union.
BATCH_MIN_CLIENTS = 8
#: Rough costs measured on a 2-vCPU machine, used to pick the cheaper way to search the open 401s'
#: windows: one ``bytes.find`` per client vs one Aho-Corasick pass (the optional ``ahocorasick_rs``).
FIND_BYTES_PER_S = 2.5e9
MULTI_BYTES_PER_S = 0.45e9
MULTI_SETUP_S = 0.002
#: Bytes per field-count proof block (see :meth:`Scanner._prove`).
PROOF_BLOCK = 256 * 1024
#: Bytes between sampled line times when bounding a time window (see :meth:`Scanner._pos_after`).
TIME_PROBE = 16 * 1024
BATCH_RATIO = 40.0
#: Bytes per stretch whose latest line time is kept for the exact window checks (:meth:`Scanner._moved_past`).
RUN_STRETCH = 16 * 1024

#: The date used for logs that record only the time of day (their times count from day 0).
NO_DATE = b"1970-01-01"

_EPOCH_DAY_CACHE: dict[bytes, int] = {}


_DECIMAL = re.compile(rb"-?[0-9]+")
#: The start of a line whose date and time are in the canonical form, digits shown as 0 (_DIGITS_AS_ZERO).
_CANONICAL_HEAD = b"0000-00-00 00:00:00 "
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def win32_fits(raw: bytes) -> bool:
    """Whether a logged ``sc-win32-status`` fits in 32 bits (unsigned up to 4294967295, or a negative
    rendering down to -2147483648). A larger number would be masked into another, valid-looking code,
    so its line is malformed. Values that are not decimal numbers ("-") are not judged here. The
    compiled scanner's ``win32_fits`` is the same rule."""
    if len(raw) < 10 or not _DECIMAL.fullmatch(raw):
        return True  # nine digits (or a sign and eight) always fit; the common case costs one len()
    value = int(raw)
    return -0x80000000 <= value <= 0xFFFFFFFF


def win32_reason(raw: bytes) -> str:
    return f"sc-win32-status {raw[:40].decode('latin-1')} does not fit in 32 bits"


def _day_seconds(date: bytes) -> int | None:
    cached = _EPOCH_DAY_CACHE.get(date)
    if cached is None:
        try:
            day = datetime(int(date[0:4]), int(date[5:7]), int(date[8:10]), tzinfo=timezone.utc)
        except ValueError:
            return None
        cached = _EPOCH_DAY_CACHE[date] = int(day.timestamp())
        if len(_EPOCH_DAY_CACHE) > 4096:
            _EPOCH_DAY_CACHE.clear()
    return cached


def _clock_seconds(clock: bytes) -> int | None:
    """Seconds into the day of ``hh:mm:ss`` (a fraction after it is ignored); None when it is no time of day,
    so a garbled value cannot push the clock past real 401s' windows."""
    try:
        hours, minutes, seconds = int(clock[0:2]), int(clock[3:5]), int(clock[6:8])
    except ValueError:
        return None
    if not (0 <= hours <= 23 and 0 <= minutes <= 59 and 0 <= seconds <= 59):
        return None
    return hours * 3600 + minutes * 60 + seconds


class Event401:
    """A 401 whose classification may still be open. Positions are offsets in the current buffer."""

    __slots__ = ("pos", "t", "server", "site", "ip", "ua", "stem", "sub", "win32", "source", "line", "user",
                 "date", "clock", "until", "at")

    def __init__(self, pos: int, t: int | None, server: str, site: str, ip: bytes, ua: bytes | None,
                 stem: bytes, sub: bytes, win32: bytes, source: str, line: int, user: bytes, date: bytes,
                 clock: bytes) -> None:
        self.pos = pos
        self.t = t
        self.server = server
        self.site = site
        self.ip = ip
        self.ua = ua
        self.stem = stem
        self.sub = sub
        self.win32 = win32
        self.source = source
        self.line = line
        self.user = user
        self.date = date
        self.clock = clock
        self.until = -1  # buffer position where this 401's window ends (set while resolving)
        #: Buffer offset of the 401's own line; ``line`` is 0 until it is needed (a sample, or carried on),
        #: because counting newlines up to every 401 would cost a pass over the buffer.
        self.at = -1

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)


@dataclass
class Aggregate:
    """Counts and samples from one or more scans; merge partial results with :meth:`merge`."""

    lines_total: int = 0
    lines_malformed: int = 0
    lines_inferred: int = 0
    lines_filtered: int = 0
    lines_blank: int = 0
    requests: int = 0
    requests_by: Counter = field(default_factory=Counter)          # (server, site) -> n
    malformed: list[tuple[str, int, str]] = field(default_factory=list)
    status_401_total: int = 0
    status_401_terminal: int = 0
    status_401_handshake: int = 0
    # (server, site, substatus bytes, win32 bytes) -> [count, terminal, handshake, samples]
    groups: dict[tuple[str, str, bytes, bytes], list] = field(default_factory=dict)
    top_uris: Counter = field(default_factory=Counter)
    top_users: Counter = field(default_factory=Counter)
    top_clients: Counter = field(default_factory=Counter)
    terminal_by: Counter = field(default_factory=Counter)          # (server, site) -> terminal 401s
    #: files with requests that no server name could be given to (no s-computername, --server or layout)
    unnamed_sources: set = field(default_factory=set)
    by_hour: Counter = field(default_factory=Counter)
    first_time: int | None = None
    last_time: int | None = None
    httperr_total: int = 0
    httperr_by_reason: Counter = field(default_factory=Counter)
    httperr_by_status: Counter = field(default_factory=Counter)
    sources: list[str] = field(default_factory=list)
    #: Position of each source in :attr:`sources` (the order files were fed in), for ordering samples.
    source_rank: dict[str, int] = field(default_factory=dict)

    def add_source(self, source: str) -> None:
        if source not in self.source_rank:
            self.source_rank[source] = len(self.sources)
            self.sources.append(source)

    def _sample_order(self, sample: tuple) -> tuple[int, int]:
        return self.source_rank.get(sample[0], len(self.sources)), sample[1]

    def _keep_sample(self, samples: list, sample: tuple) -> None:
        """Keep the earliest :data:`SAMPLES_PER_GROUP` samples in file order (feed order, then line), so
        the samples do not depend on the order in which 401s were settled, nor on the engine or the
        number of processes."""
        if len(samples) >= SAMPLES_PER_GROUP and self._sample_order(sample) >= self._sample_order(samples[-1]):
            return
        samples.append(sample)
        samples.sort(key=self._sample_order)
        del samples[SAMPLES_PER_GROUP:]

    def note_time(self, t: int | None) -> None:
        if t is None:
            return
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t

    def add_malformed(self, source: str, line: int, reason: str) -> None:
        self.lines_malformed += 1
        if len(self.malformed) < MALFORMED_CAP:
            self.malformed.append((source, line, reason))

    def classify(self, ev: Event401, terminal: bool) -> None:
        self.status_401_total += 1
        key = (ev.server, ev.site, ev.sub, ev.win32)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = [0, 0, 0, []]
        group[0] += 1
        if not terminal:
            group[2] += 1
            self.status_401_handshake += 1
            return
        group[1] += 1
        self.status_401_terminal += 1
        stamp = ""
        if ev.date != b"-" and ev.clock != b"-":
            stamp = ev.date.decode("latin-1") + "T" + ev.clock.decode("latin-1")
        self._keep_sample(group[3], (ev.source, ev.line, stamp + "Z" if stamp else "", ev.ip, ev.user,
                                     ev.stem, ev.ua))
        self.top_uris[ev.stem] += 1
        self.top_users[ev.user] += 1
        self.top_clients[ev.ip] += 1
        self.terminal_by[(ev.server, ev.site)] += 1
        if stamp:
            self.by_hour[stamp[:13]] += 1

    def shift_lines(self, source: str, delta: int) -> None:
        """Add ``delta`` to line numbers recorded for ``source`` (a byte range scanned on its own)."""
        if not delta:
            return
        self.malformed = [(s, n + delta if s == source else n, r) for s, n, r in self.malformed]
        for group in self.groups.values():
            group[3] = [(s, n + delta if s == source else n, *rest) for s, n, *rest in group[3]]

    def merge(self, other: Aggregate) -> None:
        for name in ("lines_total", "lines_malformed", "lines_inferred", "lines_filtered", "lines_blank",
                     "requests", "status_401_total", "status_401_terminal", "status_401_handshake",
                     "httperr_total"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("requests_by", "top_uris", "top_users", "top_clients", "terminal_by", "by_hour",
                     "httperr_by_reason", "httperr_by_status"):
            getattr(self, name).update(getattr(other, name))
        for source in other.sources:
            self.add_source(source)
        self.unnamed_sources |= other.unnamed_sources
        room = MALFORMED_CAP - len(self.malformed)
        if room > 0:
            self.malformed.extend(other.malformed[:room])
        for key, (count, term, hand, samples) in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = [count, term, hand, sorted(samples, key=self._sample_order)]
            else:
                mine[0] += count
                mine[1] += term
                mine[2] += hand
                for sample in samples:
                    self._keep_sample(mine[3], sample)
        self.note_time(other.first_time)
        self.note_time(other.last_time)


def _union_length(spans: list[tuple[int, int, bytes]]) -> int:
    total = 0
    reach = -1
    for low, high, _needle in sorted(spans):
        if high <= reach:
            continue
        total += high - max(low, reach)
        reach = high
    return total


def _ip_trie(addresses: list[bytes]) -> bytes:
    """A regex alternation shaped as a trie, so matching cost does not grow with the number of addresses."""
    root: dict = {}
    for address in addresses:
        node = root
        for byte in address:
            node = node.setdefault(byte, {})
        node[-1] = None

    def emit(node: dict) -> bytes:
        branches = [re.escape(bytes([byte])) + emit(child) for byte, child in sorted(
            (k, v) for k, v in node.items() if k != -1)]
        if -1 in node:
            branches.append(b"")
        if len(branches) == 1:
            return branches[0]
        return b"(?:" + b"|".join(branches) + b")"

    return emit(root)


class Scanner:
    """Scans one stream (a file, a byte range of a file, or an excerpt) into an :class:`Aggregate`.

    Feed buffers of complete lines in order with :meth:`feed`; 401s still waiting for their window at
    the end stay in :attr:`pending` so the caller can carry them into the next file of the same site or
    the next byte range, and :meth:`finish` classifies whatever is left as terminal.
    """

    def __init__(self, agg: Aggregate, *, source: str, window_s: float = 30.0, server: str = "",
                 site: str = "", since: int | None = None, until: int | None = None, httperr: bool = False,
                 layout: Layout | None = None, line_base: int = 0,
                 pending: list[Event401] | None = None, resolve_only: bool = False,
                 native: bool = True, fallback_server: str = "") -> None:
        self.agg = agg
        #: The compiled scanner, or None for the pure-Python engine (``native=False``, or not built).
        self.native = _native if native else None
        #: Only finish carried 401s against this data; count nothing (the lines belong to another scan).
        self.resolve_only = resolve_only
        self.source = source
        self.window = int(window_s)
        self.server = server
        #: the server named by the folder layout: used only when the line logs no s-computername
        self.fallback_server = fallback_server
        self.site = site
        self.since = since
        self.until = until
        self.httperr = httperr
        self.layout = layout
        self.line_no = line_base  # lines consumed so far
        self.pending: list[Event401] = list(pending or [])
        self._date_raw: bytes | None = None  # the date _day belongs to (None: none yet)
        self._day: int | None = None
        self._clocks: dict[bytes, int] = {}
        # Where the current fast segment starts, and a cursor for numbering lines on demand.
        self._seg_start = self._cur_pos = 0
        self._seg_line = self._cur_line = 0
        self._seg_end = -1
        self._seg_end_line = 0
        # Sampled line times of the segment being resolved (see _pos_after).
        self._probe_key: tuple[int, int, int] | None = None
        self._serial = 0  # buffers fed so far (tells the samples of one buffer from the next)
        self._probes: tuple[list[int], list[float]] = ([], [])
        self._probe_next = 0  # where sampling goes on
        self._probe_running = float("-inf")
        # Every line's time, as a running maximum, as far as the exact window checks reached (_moved_past).
        self._run_key: tuple[int, int, int] | None = None
        self._run_starts: list[int] = []  # stretch starts
        self._run_before: list[float] = []  # the latest time before each stretch
        self._run_through: list[float] = []  # ... and up to its end
        self._run_lines: dict[int, tuple[list[int], list[float]]] = {}
        self._run_next = 0
        self._resolving = (0, 0)  # the segment _resolve works on: (start, end)
        for ev in self.pending:
            ev.pos = -1
        agg.add_source(source)

    # --- driving --------------------------------------------------------------------------------------

    def feed(self, buf: bytes, line_numbers: list[int] | None = None, end: int | None = None) -> None:
        """Scan ``buf[:end]`` (complete lines, each ending with ``\\n``; ``end`` defaults to the whole buffer,
        so a caller can pass a read block without copying off its incomplete last line).

        ``line_numbers`` gives each line's number in its original file (collector excerpts, which keep
        only some lines); without it lines are numbered consecutively.
        """
        stop = len(buf) if end is None else end
        self._serial += 1
        pos = 0
        line_at = self.line_no  # lines before `pos`
        find = buf.find
        while True:
            hash_at = find(b"#", pos, stop)
            while hash_at > 0 and buf[hash_at - 1] != 10:
                hash_at = find(b"#", hash_at + 1, stop)
            seg_end = hash_at if hash_at >= 0 else stop
            if seg_end > pos:
                # Segments count their own lines (the fast path folds that into its field-count proof).
                line_at += self._segment(buf, pos, seg_end, line_at, line_numbers)
            if hash_at < 0:
                break
            eol = find(b"\n", hash_at, stop)
            if eol < 0:  # a directive without its newline: the caller's buffer ends mid-line
                eol = stop - 1
            directive = buf[hash_at:eol].rstrip(b"\r")
            if directive.startswith(b"#Fields:"):
                layout = parse_fields_directive(directive)
                if layout is not None and self.httperr and layout.kind == "w3c":
                    layout = Layout.from_names(layout.names, kind="httperr")
                self.layout = layout
            elif directive.startswith(b"#Software:") and b"HTTP API" in directive:
                self.httperr = True
            line_at += 1
            pos = eol + 1
        if not self.resolve_only:
            self.agg.lines_total += line_at - self.line_no
        self.line_no = line_at

    def finish(self) -> None:
        """End of the stream: every 401 still open never got its follow-up, so it is terminal."""
        for ev in self.pending:
            self.agg.classify(ev, True)
        self.pending = []

    # --- line numbers on demand ----------------------------------------------------------------------

    def _mark_segment(self, start: int, line_at: int, end: int = -1, lines: int = 0) -> None:
        self._seg_start = self._cur_pos = start
        self._seg_line = self._cur_line = line_at
        self._seg_end, self._seg_end_line = end, line_at + lines

    def _line_number(self, buf: bytes, at: int) -> int:
        """1-based number of the line starting at ``at`` in the current fast segment, counted from the
        nearest known point (segment start or end, or the last line numbered)."""
        cur, cur_line = self._cur_pos, self._cur_line
        if abs(at - self._seg_start) < abs(at - cur):
            cur, cur_line = self._seg_start, self._seg_line
        if self._seg_end >= 0 and abs(self._seg_end - at) < abs(at - cur):
            cur, cur_line = self._seg_end, self._seg_end_line
        if at >= cur:
            cur_line += buf.count(b"\n", cur, at)
        else:
            cur_line -= buf.count(b"\n", at, cur)
        self._cur_pos, self._cur_line = at, cur_line
        return cur_line + 1

    def _terminal(self, buf: bytes, ev: Event401) -> None:
        """Classify ``ev`` as terminal, numbering its line first (samples are the earliest by line)."""
        if not ev.line and ev.at >= 0:
            ev.line = self._line_number(buf, ev.at)
        self.agg.classify(ev, True)

    def _carry(self, buf: bytes, ev: Event401) -> None:
        """Keep ``ev`` open for the next buffer (its line is numbered now: the buffer goes away)."""
        if not ev.line and ev.at >= 0:
            ev.line = self._line_number(buf, ev.at)
        ev.pos = -1
        self.pending.append(ev)

    # --- segments ------------------------------------------------------------------------------------

    def _segment(self, buf: bytes, start: int, end: int, line_at: int,
                 line_numbers: list[int] | None) -> int:
        """Scan the data lines ``buf[start:end]`` (one ``#Fields`` layout); returns how many lines it held."""
        layout = self.layout
        if self.resolve_only:
            if self.pending:
                self._resolve(buf, start, end, [], layout)
            return buf.count(b"\n", start, end)
        if layout is not None and line_numbers is None and self._outside_filter(buf, start, end, layout):
            count = buf.count(b"\n", start, end)
            self.agg.lines_filtered += count
            return count
        if (layout is None or layout.kind != "w3c" or line_numbers is not None or layout.fast is None
                or not 0 < layout.fast[4] < layout.width - 1):  # " 401 " must bracket sc-status
            self._segment_slow(buf, start, end, line_at, line_numbers)
            return buf.count(b"\n", start, end)
        if self.native is not None:
            if not self._fast_ok(buf, start, end, None, layout):
                self._segment_slow(buf, start, end, line_at, line_numbers)
                return buf.count(b"\n", start, end)
            return self._segment_native(buf, start, end, line_at, layout)
        count, problems = self._prove(buf, start, end, line_at, layout.width)
        if not self._fast_ok(buf, start, end, count, layout):
            self._segment_slow(buf, start, end, line_at, line_numbers)
            return count
        agg = self.agg
        self._mark_segment(start, line_at, end, count)
        server, site = self._segment_identity(buf, start, layout)
        requests = count - len(problems)
        self._count_requests(buf, start, end, layout, server, site, requests)
        # The hot loop: everything local; one split per 401 line and one per look-ahead hit. Handshakes
        # (the large majority) are only counted here, per (substatus, win32), and folded in at the end.
        open_events: list[Event401] = []
        fast: tuple[int, ...] = layout.fast  # type: ignore[assignment]  # _fast_ok checked it
        i_date, i_time, i_ip, i_stem, i_status, i_sub, i_win32, i_ua, i_user = fast[:9]
        has_ua = i_ua >= 0
        ua_next_to_ip = has_ua and i_ua == i_ip + 1
        lead = b" " if i_ip > 0 else b""
        width = layout.width
        window = self.window
        stamp = self._stamp
        moved_past = self._moved_past
        source = self.source
        find = buf.find
        rfind = buf.rfind
        handshakes: dict[tuple[bytes, bytes], int] = {}
        count_handshake = handshakes.get
        # A success that resolved one 401 also resolves the client's 401s between the two (NTLM's
        # second round): key -> (line start of the success, its date, its time).
        resolved_by: dict[tuple[bytes, bytes | None, bytes], tuple[int, bytes, bytes]] = {}
        known_success = resolved_by.get
        numbered_to, numbered_lines = start, 0
        hit = find(b" 401 ", start, end)
        while hit >= 0:
            line_start = rfind(b"\n", 0, hit) + 1  # `start` is 0 or follows a newline
            line_end = find(b"\n", hit)            # the segment ends with one, so it is found
            next_line = line_end + 1
            if buf[line_end - 1] == 13:
                line_end -= 1
            parts = buf[line_start:line_end].split(b" ")
            if len(parts) == width and parts[i_status] == b"401" and not win32_fits(parts[i_win32]):
                # line number counted on from the previous such line (they are rare; never rescan)
                numbered_lines += buf.count(b"\n", numbered_to, line_start)
                numbered_to = line_start
                problems.append((line_at + numbered_lines + 1, win32_reason(parts[i_win32])))
                agg.requests -= 1
                agg.requests_by[(server, site)] -= 1
            elif len(parts) == width and parts[i_status] == b"401":
                date, clock = parts[i_date], parts[i_time]
                ip, stem = parts[i_ip], parts[i_stem]
                ua = parts[i_ua] if has_ua else None
                code = (parts[i_sub], parts[i_win32])
                key = (ip, ua, stem)
                verdict = None
                t = None
                known = known_success(key)
                if known is not None and known[0] > line_start:
                    # That success is also the first one after this 401.
                    t = stamp(date, clock)
                    if t is not None and moved_past(buf, start, end, known[0], t + window + SLACK_S, layout):
                        verdict = False
                    elif known[2] == clock and known[1] == date:
                        verdict = True
                    else:
                        t_ok = stamp(known[1], known[2])
                        verdict = t is None or t_ok is None or t_ok - t <= window
                else:
                    # Look a short way ahead for this client's next lines.
                    needle = lead + ip + (b" " + ua if ua_next_to_ip else b"")  # type: ignore[operator]
                    pos = next_line
                    limit = min(end, pos + SHORT_RANGE)
                    while True:
                        found = find(needle, pos, limit)
                        if found < 0:
                            break
                        other_start = rfind(b"\n", 0, found) + 1
                        other_end = find(b"\n", found)
                        pos = other_end + 1
                        if buf[other_end - 1] == 13:
                            other_end -= 1
                        other = buf[other_start:other_end].split(b" ")
                        if (len(other) == width and other[i_ip] == ip and other[i_stem] == stem
                                and (not has_ua or other[i_ua] == ua)):
                            status = other[i_status]
                            if len(status) == 3 and status < b"400" and status.isdigit():
                                ok_date, ok_clock = other[i_date], other[i_time]
                                t_ok = stamp(ok_date, ok_clock)
                                t = stamp(date, clock)
                                if t is not None and moved_past(buf, start, end, other_start,
                                                                t + window + SLACK_S, layout):
                                    verdict = False  # the log moved past this 401's window before
                                elif ok_clock == clock and ok_date == date:
                                    verdict = True
                                else:
                                    if t is not None and t_ok is None:
                                        continue  # no readable time: it cannot settle a timed 401
                                    verdict = t is None or t_ok - t <= window  # type: ignore[operator]
                                if t_ok is not None:
                                    resolved_by[key] = (other_start, ok_date, ok_clock)
                                break
                if verdict:
                    handshakes[code] = count_handshake(code, 0) + 1
                else:
                    if t is None:
                        t = stamp(date, clock)
                    ev = Event401(next_line, t, server, site, ip, ua, stem, code[0], code[1], source, 0,
                                  parts[i_user] if i_user >= 0 else b"-", date, clock)
                    ev.at = line_start
                    if verdict is None:
                        open_events.append(ev)
                    else:
                        self._terminal(buf, ev)
            hit = find(b" 401 ", next_line, end)
        for number, reason in sorted(problems):  # in line order, as the compiled scanner lists them
            if reason:
                agg.add_malformed(source, number, reason)
            else:
                agg.lines_blank += 1
        self._add_handshakes(server, site, handshakes)
        self._resolve(buf, start, end, open_events, layout)
        return count

    def _segment_native(self, buf: bytes, start: int, end: int, line_at: int, layout: Layout) -> int:
        """The fast path in compiled code (``_scan.scan_segment``, the same rules as the Python loop above):
        one pass counts, checks field counts and settles this segment's own 401s. 401s carried in from
        before the segment are settled by :meth:`_resolve` first."""
        native = self.native
        assert native is not None and layout.fast is not None  # _segment's checks
        if self.pending:
            self._resolve(buf, start, end, [], layout)
        agg = self.agg
        width = layout.width
        lines, requests, problems, handshakes, terminal, still_open = native.scan_segment(
            buf, start, end, width, layout.fast[:9], self.window, SLACK_S, line_at, self._stamp)
        for number, fields in problems:
            if isinstance(fields, bytes):
                agg.add_malformed(self.source, number, win32_reason(fields))
            elif fields:
                agg.add_malformed(self.source, number, f"{fields} fields where #Fields lists {width}")
            else:
                agg.lines_blank += 1
        server, site = self._segment_identity(buf, start, layout)
        self._count_requests(buf, start, end, layout, server, site, requests)
        self._add_handshakes(server, site, handshakes)
        source = self.source
        for line, t, ip, ua, stem, sub, win32, user, date, clock in terminal:
            agg.classify(Event401(-1, t, server, site, ip, ua, stem, sub, win32, source, line, user, date,
                                  clock), True)
        for line, t, ip, ua, stem, sub, win32, user, date, clock in still_open:
            self.pending.append(Event401(-1, t, server, site, ip, ua, stem, sub, win32, source, line, user,
                                        date, clock))
        return lines

    def _count_requests(self, buf: bytes, start: int, end: int, layout: Layout, server: str, site: str,
                        requests: int) -> None:
        agg = self.agg
        agg.requests += requests
        agg.requests_by[(server, site)] += requests
        if not server and requests:
            agg.unnamed_sources.add(self.source)
        agg.note_time(self._line_time(buf, start, layout))
        agg.note_time(self._line_time(buf, buf.rfind(b"\n", start, end - 1) + 1 or start, layout))

    def _add_handshakes(self, server: str, site: str, handshakes: dict[tuple[bytes, bytes], int]) -> None:
        """Fold per-(substatus, win32) handshake counts of one segment into the groups."""
        if not handshakes:
            return
        agg = self.agg
        groups = agg.groups
        total = 0
        for (sub, win32), n in handshakes.items():
            group = groups.get((server, site, sub, win32))
            if group is None:
                group = groups[(server, site, sub, win32)] = [0, 0, 0, []]
            group[0] += n
            group[2] += n
            total += n
        agg.status_401_total += total
        agg.status_401_handshake += total

    def _prove(self, buf: bytes, start: int, end: int, line_at: int,
               width: int) -> tuple[int, list[tuple[int, str]]]:
        """Count the lines of ``[start, end)`` and prove their field counts; returns ``(lines, problems)``.

        ``problems`` lists ``(line number, reason)`` for malformed lines and ``(line number, "")`` for
        blank ones. Blocks of :data:`PROOF_BLOCK` bytes are counted twice from C (newlines and spaces): a
        block holding exactly ``(width - 1) * lines`` spaces has no malformed line (see the module
        docstring). A block that fails is halved (the other half's counts follow by subtraction) down to
        a few lines checked one by one, so a bad line costs about one block of extra counting.
        """
        count = buf.count
        find = buf.find
        per_line = width - 1
        lines = 0
        problems: list[tuple[int, str]] = []
        pos = start
        while pos < end:
            stop = find(b"\n", pos + PROOF_BLOCK, end) + 1 if pos + PROOF_BLOCK < end else end
            if stop <= 0:
                stop = end
            n = count(b"\n", pos, stop)
            spaces = count(b" ", pos, stop)
            if spaces != per_line * n:
                self._locate(buf, pos, stop, n, spaces, line_at + lines, width, problems)
            lines += n
            pos = stop
        return lines, problems

    def _locate(self, buf: bytes, start: int, end: int, lines: int, spaces: int, line_at: int, width: int,
                problems: list[tuple[int, str]]) -> None:
        """Find the malformed/blank lines of a stretch whose space count is off (see :meth:`_prove`)."""
        per_line = width - 1
        if lines > 32:
            middle = buf.find(b"\n", (start + end) // 2, end - 1) + 1
            if start < middle < end:
                left = buf.count(b"\n", start, middle)
                left_spaces = buf.count(b" ", start, middle)
                if left_spaces != per_line * left:
                    self._locate(buf, start, middle, left, left_spaces, line_at, width, problems)
                if spaces - left_spaces != per_line * (lines - left):
                    self._locate(buf, middle, end, lines - left, spaces - left_spaces, line_at + left, width,
                                 problems)
                return
        for offset, raw in enumerate(buf[start:end].split(b"\n")[:lines]):
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw.strip():
                problems.append((line_at + offset + 1, ""))
            elif raw.count(b" ") != per_line:
                problems.append((line_at + offset + 1,
                                 f"{raw.count(b' ') + 1} fields where #Fields lists {width}"))

    def _outside_filter(self, buf: bytes, start: int, end: int, layout: Layout) -> bool:
        """True when the whole segment is clearly before ``since`` or after ``until`` (cheap skip)."""
        if self.since is None and self.until is None:
            return False
        first = self._line_time(buf, start, layout)
        last = self._line_time(buf, buf.rfind(b"\n", start, end - 1) + 1 or start, layout)
        if first is None or last is None:
            return False
        margin = SLACK_S * 60
        return ((self.since is not None and last < self.since - margin)
                or (self.until is not None and first > self.until + margin))

    def _fast_ok(self, buf: bytes, start: int, end: int, count: int | None, layout: Layout) -> bool:
        """Whether the segment can take the fast path: times clear of the ``--since/--until`` bounds and one
        site and server on every line (``count`` is its line count, counted here when ``None``)."""
        if layout.fast is None:
            return False
        i_status = layout.index.get("sc-status", -1)
        if i_status <= 0 or i_status >= layout.width - 1:
            return False  # " 401 " would not bracket the status field
        if self.since is not None or self.until is not None:
            first = self._line_time(buf, start, layout)
            last = self._line_time(buf, buf.rfind(b"\n", start, end - 1) + 1 or start, layout)
            if first is None or last is None:
                return False
            # Whole segment clearly inside the window: no per-line check needed.
            if self.since is not None and first < self.since + SLACK_S * 60:
                return False
            if self.until is not None and last > self.until - SLACK_S * 60:
                return False
        # One site and server name on every line (the usual case: one file per site and server). Fields
        # logged side by side (s-sitename s-computername, the IIS order) are checked with one count.
        index = layout.index
        positions = sorted(i for i in (index.get("s-sitename", -1), index.get("s-computername", -1)) if i >= 0)
        if positions and positions[0] == 0:
            return False
        runs: list[list[int]] = []
        for i in positions:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        if runs and count is None:
            count = buf.count(b"\n", start, end)
        for run in runs:
            values = []
            for i in run:
                value = self._field_at(buf, start, i)
                if value is None:  # a cut-short first line: the line-by-line path reads this segment
                    return False
                values.append(value)
            if buf.count(b" " + b" ".join(values) + b" ", start, end) != count:
                return False
        return True

    def _segment_identity(self, buf: bytes, start: int, layout: Layout) -> tuple[str, str]:
        server, site = self.server, self.site
        i = layout.index.get("s-computername", -1)
        if i >= 0 and not server:
            server = (self._field_at(buf, start, i) or b"").decode("utf-8", "replace")
        server = server or self.fallback_server
        i = layout.index.get("s-sitename", -1)
        if i >= 0:
            site = (self._field_at(buf, start, i) or b"").decode("utf-8", "replace")
        return server, site

    @staticmethod
    def _field_at(buf: bytes, line_start: int, index: int) -> bytes | None:
        """Field ``index`` of the line at ``line_start``; None when the line is too short to have it."""
        end = buf.find(b"\n", line_start)
        parts = buf[line_start:end].rstrip(b"\r").split(b" ", index + 1)
        return parts[index] if index < len(parts) else None

    def _segment_slow(self, buf: bytes, start: int, end: int, line_at: int,
                      line_numbers: list[int] | None) -> None:
        agg = self.agg
        events: list[Event401] = []
        pos = start
        number = line_at
        since, until = self.since, self.until
        while pos < end:
            line_end = buf.find(b"\n", pos, end)
            if line_end < 0:
                line_end = end
            raw = buf[pos:line_end]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            next_pos = line_end + 1
            lineno = line_numbers[number] if line_numbers is not None else number + 1
            number += 1
            if not raw.strip():
                agg.lines_blank += 1
                pos = next_pos
                continue
            parts = raw.split(b" ")
            layout = self.layout
            if layout is None:
                layout = inferred_layout(len(parts), httperr=self.httperr)
                if layout is not None and not plausible(parts, layout):
                    layout = None
                if layout is None:
                    agg.add_malformed(self.source, lineno, "no #Fields directive in force")
                    pos = next_pos
                    continue
                agg.lines_inferred += 1
            elif len(parts) != layout.width:
                agg.add_malformed(self.source, lineno,
                                  f"{len(parts)} fields where #Fields lists {layout.width}")
                pos = next_pos
                continue
            if layout.kind == "w3c" and _get(parts, layout, "sc-status") == b"401":
                win32 = _get(parts, layout, "sc-win32-status")
                if not win32_fits(win32):
                    agg.add_malformed(self.source, lineno, win32_reason(win32))
                    pos = next_pos
                    continue
            t = self._time_of(parts, layout)
            if t is not None and ((since is not None and t < since) or (until is not None and t > until)):
                agg.lines_filtered += 1
                pos = next_pos
                continue
            agg.note_time(t)
            if layout.kind == "httperr":
                agg.httperr_total += 1
                agg.httperr_by_reason[_get(parts, layout, "s-reason").decode("latin-1")] += 1
                agg.httperr_by_status[_get(parts, layout, "sc-status").decode("latin-1")] += 1
                pos = next_pos
                continue
            server, site = self._identity(parts, layout)
            agg.requests += 1
            agg.requests_by[(server, site)] += 1
            if not server:
                agg.unnamed_sources.add(self.source)
            if _get(parts, layout, "sc-status") == b"401":
                events.append(self._event(parts, layout, next_pos, lineno, server, site))
            pos = next_pos
        if events or self.pending:
            self._resolve(buf, start, end, events, self.layout)

    # --- fields --------------------------------------------------------------------------------------

    def _identity(self, parts: list[bytes], layout: Layout) -> tuple[str, str]:
        server = self.server
        if not server:
            i = layout.index.get("s-computername", -1)
            if i >= 0:
                server = parts[i].decode("utf-8", "replace")
        server = server or self.fallback_server
        site = self.site
        i = layout.index.get("s-sitename", -1)
        if i >= 0:
            site = parts[i].decode("utf-8", "replace")
        return server, site

    def _stamp(self, date: bytes, clock: bytes) -> int | None:
        """Seconds since the epoch for a logged date and time (cached: consecutive lines share them);
        None when either cannot be read. Layouts without a date field pass :data:`NO_DATE`."""
        if date != self._date_raw:
            self._date_raw = date
            self._day = _day_seconds(date)
        seconds = self._clocks.get(clock)
        if seconds is None:
            seconds = _clock_seconds(clock)
            if seconds is None:
                return None
            if len(clock) == 8:
                self._clocks[clock] = seconds
        day = self._day
        return None if day is None else day + seconds

    def _time_of(self, parts: list[bytes], layout: Layout) -> int | None:
        index = layout.index
        i_time = index.get("time", -1)
        if i_time < 0:
            return None
        i_date = index.get("date", -1)
        return self._stamp(parts[i_date] if i_date >= 0 else NO_DATE, parts[i_time])

    def _line_time(self, buf: bytes, line_start: int, layout: Layout | None) -> int | None:
        """The time of the line at ``line_start`` as the compiled scanner reads it: from its own date and
        time fields, and None for a line the scanner skips (a wrong field count, a 401 whose win32 code
        does not fit), so a sampled malformed line cannot close a window early."""
        if layout is None:
            return None
        end = buf.find(b"\n", line_start)
        raw = buf[line_start:end if end >= 0 else len(buf)]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        parts = raw.split(b" ")
        if len(parts) != layout.width:
            return None
        index = layout.index
        i_status, i_win32 = index.get("sc-status", -1), index.get("sc-win32-status", -1)
        if i_status >= 0 and i_win32 >= 0 and parts[i_status] == b"401" and not win32_fits(parts[i_win32]):
            return None
        return self._time_of(parts, layout)

    def _event(self, parts: list[bytes], layout: Layout, pos: int, lineno: int, server: str,
               site: str) -> Event401:
        fast = layout.fast
        if fast is not None:
            i_date, i_time, i_ip, i_stem, _i_status, i_sub, i_win32, i_ua, i_user = fast[:9]
            date, clock = parts[i_date], parts[i_time]
            return Event401(pos, self._stamp(date, clock), server, site, parts[i_ip],
                            parts[i_ua] if i_ua >= 0 else None, parts[i_stem], parts[i_sub], parts[i_win32],
                            self.source, lineno, parts[i_user] if i_user >= 0 else b"-", date, clock)
        i_ua = layout.index.get("cs(user-agent)", -1)
        return Event401(pos, self._time_of(parts, layout), server, site, _get(parts, layout, "c-ip"),
                        parts[i_ua] if i_ua >= 0 else None, _get(parts, layout, "cs-uri-stem"),
                        _get(parts, layout, "sc-substatus"), _get(parts, layout, "sc-win32-status"),
                        self.source, lineno, _get(parts, layout, "cs-username"), _get(parts, layout, "date"),
                        _get(parts, layout, "time"))

    # --- handshake classification -------------------------------------------------------------------

    def _check(self, parts: list[bytes], layout: Layout, ev: Event401) -> int:
        """1 = this line resolves ``ev`` (handshake), -1 = a resolving line past the window, 0 = neither."""
        fast = layout.fast
        if fast is not None:
            i_ip, i_stem, i_status, i_ua = fast[2], fast[3], fast[4], fast[7]
            ip, stem, status = parts[i_ip], parts[i_stem], parts[i_status]
            ua = parts[i_ua] if i_ua >= 0 else None
        else:
            index = layout.index
            ip, stem, status = (_get(parts, layout, "c-ip"), _get(parts, layout, "cs-uri-stem"),
                                _get(parts, layout, "sc-status"))
            i_ua = index.get("cs(user-agent)", -1)
            ua = parts[i_ua] if i_ua >= 0 else None
        if ip != ev.ip or stem != ev.stem:
            return 0
        if ua is not None and ev.ua is not None and ua != ev.ua:
            return 0
        if len(status) != 3 or status >= b"400" or not status.isdigit():
            return 0
        if "s-sitename" in layout.index or "s-computername" in layout.index:
            if self._identity(parts, layout) != (ev.server, ev.site):
                return 0
        elif ev.server != self.server or ev.site != self.site:
            return 0
        t = self._time_of(parts, layout)
        if ev.t is not None:
            if t is None:
                return 0  # a success with no readable time does not settle a timed 401; the next one may
            if t - ev.t > self.window:
                return -1
        return 1

    def _parts_at(self, buf: bytes, line_start: int,
                  layout: Layout | None) -> tuple[list[bytes], Layout] | None:
        end = buf.find(b"\n", line_start)
        raw = buf[line_start:end if end >= 0 else len(buf)]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        parts = raw.split(b" ")
        current = layout or inferred_layout(len(parts), httperr=False)
        if current is not None and current.inferred and not plausible(parts, current):
            return None
        if (current is None or len(parts) != current.width or current.kind != "w3c"
                or "c-ip" not in current.index):
            return None
        return parts, current

    def _needle(self, ev: Event401, layout: Layout | None) -> bytes:
        """What every line that can resolve ``ev`` contains: `` c-ip`` (and `` user-agent`` when logged next
        to it, the IIS default)."""
        if layout is None:  # headerless lines: both inferred W3C layouts put c-ip after other fields
            return b" " + ev.ip + b" "
        index = layout.index
        i_ip = index.get("c-ip", -1)
        needle = ev.ip
        if ev.ua is not None and i_ip >= 0 and index.get("cs(user-agent)", -1) == i_ip + 1:
            needle = needle + b" " + ev.ua
        return b" " + needle if i_ip > 0 else needle

    def _pos_after(self, buf: bytes, segment: int, start: int, end: int, t_limit: int,
                   layout: Layout | None) -> int:
        """The first sampled line start in [start, end] whose time is past ``t_limit``, else ``end``.

        Line times are sampled every :data:`TIME_PROBE` bytes from the segment's start (``segment``), only
        as far as a lookup needs (carried 401s need the first seconds of a buffer, not all of it); a running
        maximum makes the samples monotonic, so each lookup is one C-level bisection.
        """
        if self._probe_key != (self._serial, segment, end):
            self._probes = ([], [])
            self._probe_next = segment
            self._probe_running = float("-inf")
            self._probe_key = (self._serial, segment, end)
        positions, times = self._probes
        if not positions or positions[-1] < start or times[-1] <= t_limit:
            self._extend_probes(buf, start, end, t_limit, layout)
        i = bisect_right(times, t_limit, bisect_left(positions, start))
        return positions[i] if i < len(positions) else end

    def _extend_probes(self, buf: bytes, start: int, end: int, t_limit: int, layout: Layout | None) -> None:
        """Sample more line times until one at or after ``start`` is past ``t_limit`` (or the end)."""
        positions, times = self._probes
        running = self._probe_running
        find = buf.find
        pos = self._probe_next
        while pos < end:
            t = self._line_time(buf, pos, layout)
            if t is not None and t > running:
                running = t
            positions.append(pos)
            times.append(running)
            nl = find(b"\n", pos + TIME_PROBE, end)
            if running > t_limit and positions[-1] >= start:
                pos = nl + 1 if nl >= 0 else end
                break
            pos = nl + 1 if nl >= 0 else end
        self._probe_next = pos
        self._probe_running = running

    def _moved_past(self, buf: bytes, segment: int, end: int, at: int, t_limit: int,
                    layout: Layout | None) -> bool:
        """Whether a well-formed line of ``buf[segment:at]`` carries a time past ``t_limit``: the log moved
        past a 401's window before the line at ``at``, so no success from there on settles that 401
        (docs/analyze.md, "Handshake or terminal"). Exact, as the compiled scanner's running maximum is (the
        sampled times of :meth:`_pos_after` only bound a search: a line between two samples may be the one).

        Line times are summarised per stretch of about :data:`RUN_STRETCH` bytes, as far as the checks reach;
        only a stretch where the running maximum crosses ``t_limit`` is looked at line by line."""
        if layout is None or "time" not in layout.index:
            return False
        key = (self._serial, segment, end)
        if self._run_key != key:
            self._run_key = key
            self._run_starts, self._run_before, self._run_through = [], [], []
            self._run_lines = {}
            self._run_next = segment
        while self._run_next < at:
            self._add_stretch(buf, end, layout)
        i = bisect_right(self._run_starts, at - 1) - 1
        if i < 0 or self._run_through[i] <= t_limit:
            return False
        if self._run_before[i] > t_limit:
            return True
        line_starts, latest = self._stretch_lines(buf, i, layout)
        j = bisect_left(line_starts, at) - 1
        return j >= 0 and latest[j] > t_limit

    def _add_stretch(self, buf: bytes, end: int, layout: Layout) -> None:
        """Summarise the next stretch of whole lines: the latest time on its well-formed lines."""
        pos = self._run_next
        newline = buf.find(b"\n", min(pos + RUN_STRETCH, end) - 1, end)
        stop = newline + 1 if newline >= 0 else end
        before = self._run_through[-1] if self._run_through else float("-inf")
        latest = self._stretch_latest(buf[pos:stop], layout)
        self._run_starts.append(pos)
        self._run_before.append(before)
        self._run_next = stop
        if latest is None:  # an unusual stretch: read line by line
            self._run_through.append(before)
            latest_each = self._stretch_lines(buf, len(self._run_starts) - 1, layout)[1]
            self._run_through[-1] = latest_each[-1] if latest_each else before
        else:
            self._run_through.append(max(before, latest))

    def _stretch_latest(self, chunk: bytes, layout: Layout) -> float | None:
        """The latest time in ``chunk`` at C speed when every line is plain (``date time`` first in the
        canonical form, the right field count); None when a line is not, or the latest line is no real time
        or is malformed by its win32 code: then the stretch is read line by line."""
        if layout.index.get("date", -1) != 0 or layout.index.get("time", -1) != 1:
            return None
        lines = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
        if chunk.count(b" ") != (layout.width - 1) * lines:
            return None
        shapes = chunk.translate(_DIGITS_AS_ZERO)
        if shapes.startswith(_CANONICAL_HEAD) + shapes.count(b"\n" + _CANONICAL_HEAD) != lines:
            return None
        # Every line starts with its date and time, so the latest sorts last. Only that line's own
        # exclusion matters (a 401 whose win32 code does not fit): then the stretch is read line by line.
        latest = max(chunk.split(b"\n"))
        index = layout.index
        i_status, i_win32 = index.get("sc-status", -1), index.get("sc-win32-status", -1)
        if i_status >= 0 and i_win32 >= 0:
            parts = latest.rstrip(b"\r").split(b" ")
            if len(parts) != layout.width or (parts[i_status] == b"401" and not win32_fits(parts[i_win32])):
                return None
        return self._stamp(latest[:10], latest[11:19])

    def _stretch_lines(self, buf: bytes, i: int, layout: Layout) -> tuple[list[int], list[float]]:
        """Line starts of stretch ``i`` and the running maximum of line times after each line. Lines the
        compiled scanner skips are skipped: a wrong field count, a 401 whose win32 code does not fit."""
        cached = self._run_lines.get(i)
        if cached is not None:
            return cached
        pos = self._run_starts[i]
        stop = self._run_starts[i + 1] if i + 1 < len(self._run_starts) else self._run_next
        lines = buf[pos:stop].split(b"\n")
        if buf[stop - 1:stop] == b"\n":
            lines.pop()  # what follows the last newline belongs to the next stretch
        index = layout.index
        per_line = layout.width - 1
        i_date, i_time = index.get("date", -1), index["time"]
        i_status, i_win32 = index.get("sc-status", -1), index.get("sc-win32-status", -1)
        stamp = self._stamp
        starts: list[int] = []
        latest_each: list[float] = []
        latest = self._run_before[i]
        for line in lines:
            if line.count(b" ") == per_line:
                parts = (line[:-1] if line.endswith(b"\r") else line).split(b" ")
                if not (i_status >= 0 and i_win32 >= 0 and parts[i_status] == b"401"
                        and not win32_fits(parts[i_win32])):
                    t = stamp(parts[i_date] if i_date >= 0 else NO_DATE, parts[i_time])
                    if t is not None and t > latest:
                        latest = t
            starts.append(pos)
            latest_each.append(latest)
            pos += len(line) + 1
        self._run_lines[i] = (starts, latest_each)
        return starts, latest_each

    def _resolve(self, buf: bytes, start: int, end: int, events: list[Event401],
                 layout: Layout | None) -> None:
        """Classify ``events`` (still open after the short look-ahead) and the 401s carried in
        :attr:`pending` against ``buf[start:end]``.

        The open 401s are grouped by client (the search needle), so one forward ``find`` serves all of a
        client's 401s; it runs at C speed and stops at the end of the group's time window. When many
        clients are open at once, one regular expression over the union of their windows is cheaper than
        a search per client (see :meth:`_resolve_batched`).
        """
        carried, self.pending = self.pending, []
        waiting = carried + events if carried else events
        if not waiting:
            return
        self._resolving = (start, end)
        usable = layout is None or (layout.kind == "w3c" and "c-ip" in layout.index)
        timed = layout is not None and "time" in layout.index
        window = self.window
        clients: dict[bytes, list[Event401]] = {}
        for ev in waiting:
            needle = self._needle(ev, layout)
            group = clients.get(needle)
            if group is None:
                clients[needle] = [ev]
            else:
                group.append(ev)
        # Each client only needs the stretch from its first open 401 to the end of its last window.
        spans: list[tuple[int, int, bytes]] = []
        for needle, group in clients.items():
            low = max(group[0].pos, start)
            t_last = None
            for ev in group:
                if ev.t is None:
                    t_last = None
                    break
                if t_last is None or ev.t > t_last:
                    t_last = ev.t
            until = end if (t_last is None or not timed) else self._pos_after(
                buf, start, low, end, t_last + window + SLACK_S, layout)
            for ev in group:
                ev.until = until
            spans.append((low, until, needle))
        if usable:
            searched = sum(high - low for low, high, _needle in spans)
            union = _union_length(spans)
            if _MultiSearch is not None and len(spans) > 1 and (
                    searched / FIND_BYTES_PER_S > MULTI_SETUP_S + union / MULTI_BYTES_PER_S):
                self._resolve_multi(buf, spans, clients, layout)
            elif len(spans) > BATCH_MIN_CLIENTS and searched > BATCH_RATIO * union:
                self._resolve_batched(buf, spans, clients, layout)
            else:
                self._resolve_each(buf, spans, clients, layout)
        # Whatever is left: terminal when the log moved past its window in this buffer, else it waits.
        for group in clients.values():
            for ev in group:
                # Without logged times there is no window: the search stops at the end of this buffer
                # (memory stays bounded however many 401s a time-less log holds).
                if ev.until < end or ev.t is None or self._moved_past(buf, start, end, end,
                                                                      ev.t + window + SLACK_S, layout):
                    self._terminal(buf, ev)
                else:
                    self._carry(buf, ev)

    def _settle(self, buf: bytes, line_start: int, group: list[Event401], layout: Layout | None) -> bool:
        """Check the line at ``line_start`` against a client's open 401s before it; drop those it decides.
        Returns whether any are left."""
        parsed = self._parts_at(buf, line_start, layout)
        if parsed is None:
            return True
        parts, current = parsed
        keep = []
        for ev in group:
            if ev.pos <= line_start:
                verdict = self._check(parts, current, ev)
                if verdict > 0 and ev.t is not None and self._moved_past(
                        buf, *self._resolving, line_start, ev.t + self.window + SLACK_S, layout):
                    verdict = -1  # a success after the log moved past the 401's window does not settle it
                if verdict:
                    if verdict > 0:
                        self.agg.classify(ev, False)
                    else:
                        self._terminal(buf, ev)
                    continue
            keep.append(ev)
        group[:] = keep
        return bool(keep)

    def _resolve_each(self, buf: bytes, spans: list[tuple[int, int, bytes]],
                      clients: dict[bytes, list[Event401]], layout: Layout | None) -> None:
        find = buf.find
        rfind = buf.rfind
        for low, high, needle in spans:
            group = clients[needle]
            pos = low
            while True:
                found = find(needle, pos, high)
                if found < 0:
                    break
                line_start = rfind(b"\n", 0, found) + 1
                if not self._settle(buf, line_start, group, layout):
                    break
                pos = find(b"\n", found) + 1
                if pos <= 0:
                    break

    def _resolve_multi(self, buf: bytes, spans: list[tuple[int, int, bytes]],
                       clients: dict[bytes, list[Event401]], layout: Layout | None) -> None:
        needles = [needle for _low, _high, needle in spans]
        first = min(low for low, _high, _needle in spans)
        last = max(high for _low, high, _needle in spans)
        automaton = _MultiSearch(needles)
        rfind = buf.rfind
        for index, offset, stop in automaton.find_matches_as_indexes(memoryview(buf)[first:last],
                                                                      overlapping=True):
            low, high, needle = spans[index]
            at = first + offset
            if at < low or first + stop > high:
                continue
            group = clients[needle]
            if group:
                self._settle(buf, rfind(b"\n", 0, at) + 1, group, layout)

    def _resolve_batched(self, buf: bytes, spans: list[tuple[int, int, bytes]],
                         clients: dict[bytes, list[Event401]], layout: Layout | None) -> None:
        """One regular expression (a trie of the open clients' addresses) over the union of the windows."""
        by_ip: dict[bytes, list[bytes]] = {}
        for needle in clients:
            ip = clients[needle][0].ip
            by_ip.setdefault(ip, []).append(needle)
        merged: list[list[int]] = []
        for low, high, _needle in sorted(spans):
            if merged and low <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        lead = b" " if layout is None or layout.index.get("c-ip", 0) > 0 else b"(?:^|[ \\n])"
        pattern = re.compile(lead + b"(" + _ip_trie(sorted(by_ip)) + b")(?=[ \\r\\n])", re.MULTILINE)
        rfind = buf.rfind
        startswith = buf.startswith
        last_line = -1
        for low, high in merged:
            for match in pattern.finditer(buf, low, high):
                needles = by_ip[match.group(1)]
                at = match.start(1) - len(lead) if lead == b" " else match.start(1)
                line_start = rfind(b"\n", 0, match.start(1)) + 1
                if line_start == last_line:
                    continue
                for needle in needles:
                    group = clients[needle]
                    if not group or not group[0].pos <= line_start < group[0].until:
                        continue
                    # The needle (address plus the user agent next to it) must be right here.
                    if len(needle) > len(group[0].ip) + 1 and not startswith(needle, at):
                        continue
                    last_line = line_start
                    self._settle(buf, line_start, group, layout)


def _get(parts: list[bytes], layout: Layout, name: str) -> bytes:
    i = layout.index.get(name, -1)
    return parts[i] if i >= 0 else b"-"
