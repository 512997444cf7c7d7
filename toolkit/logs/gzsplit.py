"""Scanning a multi-member ``.gz`` log in parallel, split at member boundaries.

A gzip file may hold several members one after the other (logs concatenated per hour, ``bgzip``'s 64 KiB
blocks, ``gzip -c a >> b``); each member can be inflated on its own from its first byte. A single-member
file cannot be entered anywhere but at its start (deflate needs the 32 KiB before any point, which no
index records), so it is read by one process, as before.

How a split stays exact:

* **Where.** The parent looks for a member header (``1f 8b 08``, valid flags, and the next bytes inflate)
  near each ``size × i / N``. A candidate is a guess until the process of the range before it, inflating
  member after member, ends a member exactly there (``landed``); any other outcome, and any damaged member,
  falls back to the one-process read, so a guess can cost time but never change a count.
* **Lines.** Members need not end at a line end (bgzip cuts anywhere). A line belongs to the range in
  which the newline before it lies: each range after the first skips up to its first newline, and each
  range reads on past its end to finish its last line. Both sides apply the same rule, so every line is
  scanned exactly once, whether or not a member ends with a newline.
* **Handshakes across the split.** After its last line, a range goes on reading the next range's lines
  in resolve-only mode (counting nothing) until each 401 it left open is settled by its client's next
  line or its window has passed: the same rule, on the same lines, as one pass over the file.
* **Layout.** A range starts with the ``#Fields`` layout of the file's head; if the range before it ends
  under another one (the layout changed in between), the parent scans that range again with the right
  layout before anything is merged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from toolkit.logs.engine import Aggregate, Event401, Scanner
from toolkit.logs.w3c import Layout, parse_fields_directive

_MAGIC = b"\x1f\x8b\x08"
_READ = 1 << 20
#: A candidate header must inflate this much (or end its member) before it is worth a process's time.
_PROBE_OUTPUT = 4096


def _zlib() -> Any:
    """ISA-L's zlib-compatible inflater where installed (the ``fast`` extra), the standard library's otherwise."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:
        import zlib

        return zlib


def _looks_like_member(fd: int, offset: int) -> bool:
    head = os.pread(fd, 1 << 16, offset)
    if len(head) < 18 or not head.startswith(_MAGIC) or head[3] & 0xE0:
        return False
    zlib = _zlib()
    inflater = zlib.decompressobj(31)
    try:
        out = inflater.decompress(head, _PROBE_OUTPUT)
    except zlib.error:
        return False
    return len(out) >= _PROBE_OUTPUT or inflater.eof


def member_splits(fd: int, size: int, parts: int) -> list[int]:
    """Offsets where the ranges start: 0, then one probable member start near each ``size × i / parts``
    (searched up to the next such point). ``[0]`` alone: no split found (e.g. a single-member file)."""
    points = [0]
    for i in range(1, parts):
        offset, stop = max(size * i // parts, points[-1] + 1), size * (i + 1) // parts
        found = None
        while found is None and offset < stop:
            block = os.pread(fd, min(_READ, stop - offset) + len(_MAGIC) - 1, offset)
            at = block.find(_MAGIC)
            while at >= 0 and found is None:
                if offset + at < stop and _looks_like_member(fd, offset + at):
                    found = offset + at
                at = block.find(_MAGIC, at + 1)
            offset += _READ
        if found is not None:
            points.append(found)
    return points


class Misaligned(Exception):
    """A range boundary was not a member start, or the data ended inside a member: read in one process."""


def _members(fd: int, start: int, stop: int | None) -> Iterator[tuple[bytes, bool]]:
    """Inflate member after member from ``start``; yields ``(data, beyond)`` where ``beyond`` says the data
    comes from members at or after ``stop``. Raises ``Misaligned`` when no member ends exactly at ``stop``."""
    zlib = _zlib()
    position = start  # compressed bytes read so far end here
    inflater = zlib.decompressobj(31)
    beyond = False
    data = b""
    while True:
        if not data:
            data = os.pread(fd, _READ, position)
            position += len(data)
            if not data:
                if not inflater.eof:
                    raise Misaligned("the file ends inside a gzip member")
                return
        try:
            out = inflater.decompress(data)
        except zlib.error as exc:
            raise Misaligned(f"damaged gzip data: {exc}") from None
        data = b""
        if out:
            yield out, beyond
        if inflater.eof:
            rest = inflater.unused_data
            member_end = position - len(rest)
            if stop is not None and not beyond:
                if member_end == stop:
                    beyond = True
                elif member_end > stop:
                    raise Misaligned(f"no gzip member starts at byte {stop}")
            if not rest and not os.pread(fd, 1, position):
                return  # the last member ended with the file
            inflater = zlib.decompressobj(31)
            data = rest


@dataclass
class RangeResult:
    agg: Aggregate
    pending: list[Event401]
    lines: int
    start_layout: tuple[tuple[str, ...], str] | None
    end_layout: tuple[tuple[str, ...], str] | None


def _layout_key(layout: Layout | None) -> tuple[tuple[str, ...], str] | None:
    return None if layout is None else (tuple(layout.names), str(layout.kind))


def scan_member_range(path: str, start: int, stop: int | None, layout: tuple[tuple[str, ...], str] | None,
                      options: dict, carried: list[Event401]) -> RangeResult:
    """Scan the lines of the members in ``[start, stop)`` (see the module's rules); runs in a worker process."""
    agg = Aggregate()
    scanner = Scanner(agg, layout=Layout.from_names(layout[0], kind=layout[1]) if layout else None,  # type: ignore[arg-type]
                      pending=carried, **options)
    skipping, first, carry = start > 0, start == 0, b""
    resolver: Scanner | None = None
    lines = 0
    end_layout = None
    with open(path, "rb", buffering=0) as handle:
        for data, beyond in _members(handle.fileno(), start, stop):
            if skipping:  # up to the first newline: the line it ends belongs to a range before
                cut = data.find(b"\n")
                if cut < 0:
                    continue
                if beyond:  # no newline in the whole range: every line here belongs to another range
                    return RangeResult(agg, scanner.pending, 0, layout, layout)
                data, skipping = data[cut + 1:], False
            if first:
                data, first = data.removeprefix(b"\xef\xbb\xbf"), False
            if resolver is None and beyond:  # finish this range's last line with the next range's bytes
                cut = data.find(b"\n")
                if cut < 0:
                    carry += data
                    continue
                scanner.feed(carry + data[:cut + 1])
                carry, data = b"", data[cut + 1:]
                lines, end_layout = scanner.line_no, _layout_key(scanner.layout)
                resolver = Scanner(agg, layout=scanner.layout, pending=scanner.pending, resolve_only=True,
                                   **{**options, "httperr": scanner.httperr})
                if not resolver.pending:
                    break
            data = carry + data if carry else data
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            (resolver or scanner).feed(data, end=cut + 1)
            carry = data[cut + 1:]
            if resolver is not None and not resolver.pending:
                break
    if resolver is None:  # the file ended in this range
        if carry and not skipping:
            scanner.feed(carry + b"\n")
        lines, end_layout = scanner.line_no, _layout_key(scanner.layout)
        pending = scanner.pending
    else:
        pending = resolver.pending
    return RangeResult(agg, pending, lines, layout, end_layout)


def head_layout(head: bytes, httperr: bool) -> tuple[tuple[str, ...], str] | None:
    """The first ``#Fields`` layout in the file's first bytes, as the scanner would hold it."""
    for line in head.split(b"\n"):
        line = line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
        if line.startswith(b"#Fields:"):
            layout = parse_fields_directive(line)
            if layout is not None and httperr and layout.kind == "w3c":
                layout = Layout.from_names(layout.names, kind="httperr")
            return _layout_key(layout)
        if not line.startswith(b"#"):
            break
    return None
