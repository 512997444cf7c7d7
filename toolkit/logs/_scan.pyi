"""Types of the compiled scanner (toolkit/logs/_scan.c); see its docstrings."""

from collections.abc import Callable

#: (line, seconds or None, c-ip, user agent or None, cs-uri-stem, substatus, win32, cs-username, date, time)
EventRow = tuple[int, int | None, bytes, bytes | None, bytes, bytes, bytes, bytes, bytes, bytes]

def scan_segment(
    buf: bytes, start: int, end: int, width: int, fields: tuple[int, ...], window: int, slack: int,
    line_at: int, stamp: Callable[[bytes, bytes], int | None], /,
) -> tuple[int, int, list[tuple[int, int]], dict[tuple[bytes, bytes], int], list[EventRow], list[EventRow]]: ...
