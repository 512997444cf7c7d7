"""W3C and HTTPERR log files as a collector reads them: time shift, window, handshake-aware excerpt.

The excerpt rule is the one in docs/contracts.md §1.3: every directive line is kept; a data line inside
the window is kept when it is a 401, or when it comes from a client (c-ip + user agent) that had a 401
at most ``handshake_window_s`` earlier. ``data_lines`` counts every data line inside the window.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_W3C_TIME = "%Y-%m-%d %H:%M:%S"


def shift_line(line: str, date_idx: int | None, time_idx: int | None, shift: dt.timedelta) -> str:
    """Move a data line's date/time fields by ``shift`` (same length: the file size does not change)."""
    if not shift or date_idx is None or time_idx is None:
        return line
    fields = line.split(" ")
    if max(date_idx, time_idx) >= len(fields):
        return line
    try:
        when = dt.datetime.strptime(f"{fields[date_idx]} {fields[time_idx]}", _W3C_TIME) + shift
    except ValueError:
        return line
    fields[date_idx], fields[time_idx] = when.strftime("%Y-%m-%d"), when.strftime("%H:%M:%S")
    return " ".join(fields)


def shift_directive(line: str, shift: dt.timedelta) -> str:
    if shift and line.startswith("#Date:"):
        try:
            when = dt.datetime.strptime(line[6:].strip(), _W3C_TIME) + shift
        except ValueError:
            return line
        return "#Date: " + when.strftime(_W3C_TIME)
    return line


@dataclass
class Excerpt:
    lines_total: int = 0  # data lines in the file (directives not counted), as the collector counts
    data_lines: int = 0  # data lines inside the window
    lines_kept: int = 0  # lines in the excerpt, directives included
    truncated: bool = False
    text: str = ""
    first_time: dt.datetime | None = None
    last_time: dt.datetime | None = None
    bytes_left: int = 0


def excerpt(text: str, *, since: dt.datetime, until: dt.datetime, shift: dt.timedelta,
            handshake_window_s: float | None, max_kept: int, bytes_left: int) -> Excerpt:
    """Select the lines a collector keeps from one log file (times naive UTC), as the bundled
    collector does: the window test is inclusive, keeping stops at ``max_kept`` lines or when the shared
    byte budget (line bytes + 12 per line) runs out, while counting goes on.

    ``handshake_window_s`` None keeps every data line in the window (the HTTPERR collector).
    """
    result = Excerpt(bytes_left=bytes_left)
    kept: list[str] = []
    date_idx: int | None = 0
    time_idx: int | None = 1
    status_idx = ip_idx = ua_idx = None
    last_401: dict[tuple[str, str], dt.datetime] = {}
    window = dt.timedelta(seconds=handshake_window_s or 0)
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw:
            continue
        keep = False
        if raw.startswith("#"):
            line = shift_directive(raw, shift)
            keep = True
            if line.startswith("#Fields:"):
                index = {name: i for i, name in enumerate(line[len("#Fields:"):].split())}
                date_idx, time_idx = index.get("date"), index.get("time")
                status_idx, ip_idx, ua_idx = index.get("sc-status"), index.get("c-ip"), index.get("cs(User-Agent)")
        else:
            result.lines_total += 1
            line = shift_line(raw, date_idx, time_idx, shift)
            parts = line.split(" ")
            try:
                when = dt.datetime.strptime(f"{parts[date_idx]} {parts[time_idx]}", _W3C_TIME)  # type: ignore[index]
            except (TypeError, IndexError, ValueError):
                continue  # malformed lines are the parser's business, not part of the window
            if result.first_time is None:
                result.first_time = when
            result.last_time = when
            if not (since <= when <= until):
                continue
            result.data_lines += 1
            if handshake_window_s is None:
                keep = True
            else:
                def field(idx: int | None) -> str:
                    return parts[idx] if idx is not None and idx < len(parts) else ""
                client = (field(ip_idx), field(ua_idx))
                if field(status_idx) == "401":
                    last_401[client] = when
                    keep = True
                elif client in last_401:
                    if when - last_401[client] <= window:
                        keep = True
                    else:
                        del last_401[client]
        if keep and not result.truncated:
            size = len(line.encode("utf-8")) + 12
            if len(kept) >= max_kept or size > result.bytes_left:
                result.truncated = True
            else:
                kept.append(f"{number}\t{line}\n")
                result.bytes_left -= size
    result.lines_kept = len(kept)
    result.text = "".join(kept)
    return result


_DAILY = re.compile(r"^(u_)?ex(\d{6})\.log$", re.IGNORECASE)


def last_data_time(text: str) -> dt.datetime | None:
    """Time of the last data line (what a file's LastWriteTime is for a log IIS appends to)."""
    for raw in reversed(text.splitlines()):
        if raw and not raw.startswith("#"):
            try:
                return dt.datetime.strptime(raw[:19], _W3C_TIME)
            except ValueError:
                continue
    return None


def rebucket_daily(files: list[tuple[str, str]], shift: dt.timedelta) -> list[tuple[str, str]]:
    """Present one folder's daily logs as IIS would have written them ``shift`` later.

    Every data line is moved by ``shift`` and filed under the UTC day it now falls on, so a shifted
    fleet still has one ``u_exYYMMDD.log`` per day with only that day's lines. Each new file starts with
    the directive block in force (``#Software``, ``#Version``, ``#Date``, ``#Fields``); a ``#Fields`` change
    inside a file is carried over. Files that are not daily W3C logs are returned with lines shifted in
    place.
    """
    if not shift:
        return files
    others: list[tuple[str, str]] = []
    buckets: dict[str, list[str]] = {}
    prefix = "u_"
    software = "#Software: Microsoft Internet Information Services 10.0"
    for name, text in sorted(files):
        match = _DAILY.match(name)
        if not match:
            others.append((name, "\r\n".join(_shift_all(text.splitlines(), shift)) + "\r\n"))
            continue
        prefix = match.group(1) or ""
        fields_line = None
        date_idx, time_idx = 0, 1
        for raw in text.splitlines():
            if not raw:
                continue
            if raw.startswith("#Software:"):
                software = raw
            if raw.startswith("#Fields:"):
                fields_line = raw
                names = raw[len("#Fields:"):].split()
                date_idx = names.index("date") if "date" in names else None
                time_idx = names.index("time") if "time" in names else None
            if raw.startswith("#"):
                continue
            line = shift_line(raw, date_idx, time_idx, shift)
            day = line.split(" ")[date_idx] if date_idx is not None else ""
            bucket = buckets.setdefault(day, [])
            if fields_line is not None and (not bucket or bucket[-1] == "" or _current_fields(bucket) != fields_line):
                first_time = line.split(" ")[date_idx] + " " + line.split(" ")[time_idx] if time_idx is not None else ""
                bucket += [software, "#Version: 1.0", f"#Date: {first_time}", fields_line]
            bucket.append(line)
    result = others
    for day, lines in buckets.items():
        try:
            stamp = dt.datetime.strptime(day, "%Y-%m-%d").strftime("%y%m%d")
        except ValueError:
            continue
        result.append((f"{prefix}ex{stamp}.log", "\r\n".join(lines) + "\r\n"))
    return sorted(result)


def _current_fields(bucket: list[str]) -> str | None:
    for line in reversed(bucket):
        if line.startswith("#Fields:"):
            return line
    return None


def _shift_all(lines: list[str], shift: dt.timedelta) -> list[str]:
    out = []
    date_idx: int | None = 0
    time_idx: int | None = 1
    for raw in lines:
        if raw.startswith("#"):
            out.append(shift_directive(raw, shift))
            if raw.startswith("#Fields:"):
                names = raw[len("#Fields:"):].split()
                date_idx = names.index("date") if "date" in names else None
                time_idx = names.index("time") if "time" in names else None
        else:
            out.append(shift_line(raw, date_idx, time_idx, shift) if raw else raw)
    return out
