"""W3C and HTTPERR log files as a shifted lab fleet presents them (docs/lab-fleet.md, "Time").

Only the presentation lives here: the collectors themselves run in the target-side C# core
(``ps_scripts/core``), which reads the presented files (``toolkit/lab/model/presented.py``).
"""

from __future__ import annotations

import datetime as dt
import re

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


_DAILY = re.compile(r"^(u_)?ex(\d{6})\.log$", re.IGNORECASE)


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
    bucket_fields: dict[str, str] = {}  # the #Fields line in force at each bucket's end (kept, not searched for)
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
            if fields_line is not None and (not bucket or bucket[-1] == "" or bucket_fields.get(day) != fields_line):
                first_time = line.split(" ")[date_idx] + " " + line.split(" ")[time_idx] if time_idx is not None else ""
                bucket += [software, "#Version: 1.0", f"#Date: {first_time}", fields_line]
                bucket_fields[day] = fields_line
            bucket.append(line)
    result = others
    for day, lines in buckets.items():
        try:
            stamp = dt.datetime.strptime(day, "%Y-%m-%d").strftime("%y%m%d")
        except ValueError:
            continue
        result.append((f"{prefix}ex{stamp}.log", "\r\n".join(lines) + "\r\n"))
    return sorted(result)


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
