"""The plain-Python reference: read lines, split on spaces, track #Fields, classify 401s the obvious way.

It is the correctness reference of the benchmark (and its slow baseline): one dict per pending client
key, no byte tricks. Run as ``python bench/logs/plain_loop.py FILE`` to print its counts as JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone


def analyse(path: str, window_s: int = 30, server_default: str = "", site_default: str = "W3SVC1",
            events: list | None = None) -> dict:
    counts = {"lines_total": 0, "malformed": 0, "requests": 0, "status_401": 0, "terminal": 0, "handshake": 0}
    groups: dict[tuple, list[int]] = {}
    pending: dict[tuple, list[tuple[int, tuple, int]]] = {}
    index: dict[str, int] = {}
    width = 0
    days: dict[str, int] = {}

    def finish(entry: tuple[int, tuple, int], terminal: bool) -> None:
        counts["terminal" if terminal else "handshake"] += 1
        if terminal:
            groups[entry[1]][1] += 1
        if events is not None:
            events.append((entry[2], terminal))

    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, 1):
            counts["lines_total"] += 1
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if number == 1:
                line = line.lstrip("\ufeff")
            if line.startswith("#"):
                if line.startswith("#Fields:"):
                    names = line[8:].split()
                    index = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
                    width = len(names)
                continue
            parts = line.split(" ")
            if len(parts) != width:
                counts["malformed"] += 1
                continue
            counts["requests"] += 1
            date, clock = parts[index["date"]], parts[index["time"]]
            day = days.get(date)
            if day is None:
                midnight = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
                day = days[date] = int(midnight.timestamp())
            t = day + int(clock[:2]) * 3600 + int(clock[3:5]) * 60 + int(clock[6:8])
            server = parts[index["s-computername"]] if "s-computername" in index else server_default
            site = parts[index["s-sitename"]] if "s-sitename" in index else site_default
            ua = parts[index["cs(user-agent)"]] if "cs(user-agent)" in index else ""
            key = (server, site, parts[index["c-ip"]], ua, parts[index["cs-uri-stem"]])
            status = int(parts[index["sc-status"]])
            if status == 401:
                counts["status_401"] += 1
                group = (server, site, int(parts[index["sc-substatus"]]),
                         int(parts[index["sc-win32-status"]]))
                groups.setdefault(group, [0, 0])[0] += 1
                pending.setdefault(key, []).append((t, group, number))
            elif status < 400 and key in pending:
                for entry in pending.pop(key):
                    finish(entry, t - entry[0] > window_s)
    for entries in pending.values():
        for entry in entries:
            finish(entry, True)
    counts["groups"] = {"|".join(map(str, k)): v for k, v in sorted(groups.items())}
    return counts


if __name__ == "__main__":
    print(json.dumps(analyse(sys.argv[1]), indent=1))
