"""Synthetic IIS W3C logs whose true 401 counts are known.

The generator interleaves many client "conversations" (anonymous hits, Kerberos and NTLM handshakes,
failed logons, ACL denials, clients that never answer the challenge, rate limits) on one clock, writes
them in W3C extended format with ``#Fields`` blocks that change mid-file, and keeps the truth while it
writes: it applies the handshake rule (a 401 is a handshake when the same server/site/client/user agent
later gets a status below 400 for the same URI stem within the window) on the lines as emitted, in a
deliberately simple form that shares no code with the scanner. Tests, the bundled samples and the
benchmark all use it.
"""

from __future__ import annotations

import gzip
import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

__all__ = ["LAYOUT_DEFAULT", "LAYOUT_FULL", "SynthTruth", "write_log", "write_samples", "HTTPERR_SAMPLE"]

#: IIS 7+ default field set (15 fields).
LAYOUT_DEFAULT = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
                  "cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken").split()
#: Every standard field plus one custom field, as after an admin widens logging (23 fields).
LAYOUT_FULL = ("date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port "
               "cs-username c-ip cs-version cs(User-Agent) cs(Cookie) cs(Referer) cs-host sc-status "
               "sc-substatus sc-win32-status sc-bytes cs-bytes time-taken X-Forwarded-For").split()

_STEMS = ["/", "/default.aspx", "/api/orders", "/api/customers/search", "/reports/daily.aspx",
          "/intranet/home", "/hr/payroll/view.aspx", "/ews/exchange.asmx", "/owa/auth.owa",
          "/sites/finance/Shared+Documents/q3.xlsx", "/content/site.css", "/scripts/app.js",
          "/images/logo.png", "/Microsoft-Server-ActiveSync", "/api/health"]
_UAS = ["Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+"
        "Chrome/118.0.0.0+Safari/537.36",
        "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64;+rv:119.0)+Gecko/20100101+Firefox/119.0",
        "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+"
        "Chrome/118.0.0.0+Safari/537.36+Edg/118.0.2088.46",
        "Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.16827;+Pro)",
        "PowerShell/7.3.9", "curl/8.4.0", "python-requests/2.31.0"]
_USERS = [f"CONTOSO\\user{n:03d}" for n in range(200)] + ["CONTOSO\\svc_reports", "alice@contoso.com"]

# Conversations: (weight, steps). A step is (status, substatus, win32, authenticated, delay_s).
# Authenticated steps carry the user name; the anonymous challenge rows log "-".
_CONVERSATIONS: list[tuple[float, list[tuple[int, int, int, bool, float]]]] = [
    (84.0, [(200, 0, 0, False, 0)]),
    (4.0, [(304, 0, 0, False, 0)]),
    (3.0, [(404, 0, 2, False, 0)]),
    (2.6, [(401, 2, 5, False, 0), (200, 0, 0, True, 0.2)]),                        # Kerberos
    (1.3, [(401, 2, 5, False, 0), (401, 1, 2148074254, False, 0.1), (200, 0, 0, True, 0.2)]),  # NTLM
    (0.1, [(401, 2, 5, False, 0), (200, 0, 0, True, 12.0)]),                      # slow user, still in window
    (0.08, [(401, 2, 5, False, 0), (401, 1, 2148074252, False, 0.3)]),             # NTLM logon denied
    (0.05, [(401, 2, 5, False, 0), (401, 1, 1326, False, 0.5)]),                   # Basic: bad password
    (0.03, [(401, 2, 5, False, 0), (401, 1, 2148074274, False, 0.1)]),             # Kerberos wrong SPN
    (0.05, [(401, 3, 5, True, 0)]),                                                # NTFS ACL denies the user
    (0.08, [(401, 2, 5, False, 0)]),                                               # never answers
    (0.02, [(401, 502, 0, False, 0)]),                                             # rate limited
    (0.02, [(401, 0, 0, False, 0)]),                                               # app-level 401
]


_FIRST_FAILURE = 6  # conversations from this index on end in a failure

HTTPERR_SAMPLE = """#Software: Microsoft HTTP API 2.0
#Version: 1.0
#Date: 2026-11-24 00:00:07
#Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri sc-status s-siteid s-reason s-queuename
2026-11-24 00:00:07 10.20.4.17 51234 10.0.0.5 443 HTTP/1.1 GET /intranet/home 503 1 AppOffline intranet
2026-11-24 00:02:41 10.20.4.18 51301 10.0.0.5 443 - - - - - Timer_ConnectionIdle -
2026-11-24 00:03:12 10.31.9.200 40022 10.0.0.5 443 HTTP/1.1 GET /api/orders 400 - Hostname -
2026-11-24 00:05:55 10.31.9.200 40023 10.0.0.5 443 HTTP/1.1 GET /api/orders 503 2 QueueFull orders
2026-11-24 00:09:30 10.20.4.17 51999 10.0.0.5 443 HTTP/1.1 POST /owa/auth.owa 400 - Header -
"""


def write_samples(folder: Path) -> dict[str, SynthTruth]:
    """Write the sample set bundled as ``toolkit/logs/samples`` (deterministic for a given code version).

    * ``W3SVC1/u_ex261124.log.gz``: an intranet site with Windows authentication (Kerberos and NTLM
      handshakes, NTLM logons denied, wrong SPN, ACL denials, clients that never answer), gzip-compressed,
      with a mid-file ``#Fields`` change that adds ``s-sitename``/``s-computername`` and a custom field.
    * ``W3SVC2/u_ex261124.log``: a second site, UTF-8 with a BOM and CRLF line ends.
    * ``HTTPERR/httperr1.log``: a few http.sys error records.
    """
    truths = {
        "W3SVC1/u_ex261124.log.gz": write_log(_mkdir(folder / "W3SVC1") / "u_ex261124.log.gz", lines=4000,
                                              seed=11, failure_boost=8.0, layout_changes=(0.5,)),
        "W3SVC2/u_ex261124.log": write_log(_mkdir(folder / "W3SVC2") / "u_ex261124.log", lines=1500, seed=12,
                                           failure_boost=6.0, layout_changes=(), site="W3SVC2", bom=True,
                                           crlf=True),
    }
    (_mkdir(folder / "HTTPERR") / "httperr1.log").write_bytes(HTTPERR_SAMPLE.encode("ascii"))
    return truths


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class SynthTruth:
    """What the generated log contains, computed while writing it."""

    lines_total: int = 0
    requests: int = 0
    malformed: int = 0
    status_401: int = 0
    terminal: int = 0
    handshake: int = 0
    #: (site, substatus, win32) -> [count, terminal]
    groups: dict[tuple[str, int, int], list[int]] = field(default_factory=dict)
    terminal_uris: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"lines_total": self.lines_total, "requests": self.requests, "malformed": self.malformed,
                "status_401": self.status_401, "terminal": self.terminal, "handshake": self.handshake,
                "groups": {f"{s}|{sub}|{w}": v for (s, sub, w), v in sorted(self.groups.items())}}


def _directives(layout: list[str], when: datetime) -> list[str]:
    return ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
            f"#Date: {when:%Y-%m-%d %H:%M:%S}", "#Fields: " + " ".join(layout)]


def write_log(out: IO[bytes] | Path, *, lines: int, seed: int = 0, start: datetime | None = None,
              lines_per_second: float = 120.0, layout_changes: tuple[float, ...] = (0.3, 0.6),
              site: str = "W3SVC1", computer: str = "WEB01", window_s: int = 30,
              malformed_every: int = 0, bom: bool = False, crlf: bool = False,
              failure_boost: float = 1.0) -> SynthTruth:
    """Write about ``lines`` data lines and return the truth.

    The layout alternates between :data:`LAYOUT_DEFAULT` and :data:`LAYOUT_FULL` at each fraction in
    ``layout_changes``. With ``malformed_every=n`` every n-th data line is cut short (and counted as
    malformed, not as a request). ``out`` may be a path (``.gz`` writes gzip) or a binary stream.
    """
    if isinstance(out, Path):
        stream_cm: IO[bytes] = (gzip.GzipFile(out, "wb", mtime=0)  # type: ignore[assignment]
                                if out.suffix == ".gz" else open(out, "wb"))  # mtime=0: reproducible bytes
        with stream_cm as stream:
            return write_log(stream, lines=lines, seed=seed, start=start, lines_per_second=lines_per_second,
                             layout_changes=layout_changes, site=site, computer=computer,
                             window_s=window_s, malformed_every=malformed_every, bom=bom, crlf=crlf,
                             failure_boost=failure_boost)
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 24, 0, 0, 0, tzinfo=timezone.utc)
    epoch0 = int(start.timestamp())
    eol = "\r\n" if crlf else "\n"
    truth = SynthTruth()
    weights = [w * (failure_boost if i >= _FIRST_FAILURE else 1.0) for i, (w, _) in enumerate(_CONVERSATIONS)]
    clients = [f"10.{rng.randrange(1, 40)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(4000)]
    change_at = sorted(int(f * lines) for f in layout_changes)
    layouts = [LAYOUT_DEFAULT, LAYOUT_FULL]
    layout_no = 0
    layout = layouts[0]
    # Pending 401s of the reference rule, per (server, site, c-ip, user agent, stem): list of times/groups.
    pending: dict[tuple, list[tuple[int, tuple[str, int, int], str]]] = {}
    buffer: list[str] = []
    if bom:
        out.write(b"\xef\xbb\xbf")

    def flush() -> None:
        out.write((eol.join(buffer) + eol).encode("utf-8"))
        buffer.clear()

    buffer.extend(_directives(layout, start))
    truth.lines_total += 4
    gap = 1.0 / lines_per_second
    heap: list[tuple[float, int, int, int, str, str, str, str]] = []
    next_new = 0.0
    seq_no = 0
    emitted = 0
    date_cache: dict[int, str] = {}
    while emitted < lines:
        # Start new conversations at the configured rate; emit the earliest due step.
        if not heap or next_new <= heap[0][0]:
            conv = rng.choices(range(len(_CONVERSATIONS)), weights)[0]
            user = rng.choice(_USERS)
            heapq.heappush(heap, (next_new, seq_no, conv, 0, rng.choice(clients), rng.choice(_UAS),
                                  rng.choice(_STEMS), user))
            seq_no += 1
            next_new += rng.expovariate(1.0 / (gap * 1.35))
            continue
        when, sid, conv, step, ip, ua, stem, user = heapq.heappop(heap)
        steps = _CONVERSATIONS[conv][1]
        status, sub, win32, authed, _ = steps[step]
        if step + 1 < len(steps):
            due = when + steps[step + 1][4] + rng.random() * 0.05
            heapq.heappush(heap, (due, sid, conv, step + 1, ip, ua, stem, user))
        if emitted in change_at:
            layout_no += 1
            layout = layouts[layout_no % 2]
            at = datetime.fromtimestamp(epoch0 + int(when), timezone.utc)
            buffer.extend(_directives(layout, at))
            truth.lines_total += 4
        emitted += 1
        second = epoch0 + int(when)
        day = second - second % 86400
        date = date_cache.get(day)
        if date is None:
            date = date_cache[day] = datetime.fromtimestamp(day, timezone.utc).strftime("%Y-%m-%d")
        sod = second - day
        clock = f"{sod // 3600:02d}:{sod % 3600 // 60:02d}:{sod % 60:02d}"
        username = user if authed else "-"
        query = "-" if sid % 3 else f"id={sid % 9973}"
        taken = str(int(rng.random() * 400))
        if layout is LAYOUT_DEFAULT:
            server = ""
            row = (f"{date} {clock} 10.0.0.5 GET {stem} {query} 443 {username} {ip} {ua} - "
                   f"{status} {sub} {win32} {taken}")
        else:
            server = computer
            row = (f"{date} {clock} {site} {computer} 10.0.0.5 GET {stem} {query} 443 {username} {ip} "
                   f"HTTP/1.1 "
                   f"{ua} - https://intranet.contoso.com/ intranet.contoso.com {status} {sub} {win32} "
                   f"{1000 + sid % 5000} {300 + sid % 700} {taken} -")
        truth.lines_total += 1
        if malformed_every and emitted % malformed_every == 0:
            buffer.append(row.rsplit(" ", 3)[0])
            truth.malformed += 1
        else:
            buffer.append(row)
            truth.requests += 1
            key = (server, site, ip, ua, stem)
            if status == 401:
                truth.status_401 += 1
                group = (site, sub, win32)
                truth.groups.setdefault(group, [0, 0])[0] += 1
                pending.setdefault(key, []).append((second, group, stem))
            elif status < 400 and key in pending:
                for t401, group, _stem in pending.pop(key):
                    if second - t401 <= window_s:
                        truth.handshake += 1
                    else:
                        truth.terminal += 1
                        truth.groups[group][1] += 1
                        truth.terminal_uris[_stem] += 1
        if len(buffer) >= 20000:
            flush()
    for entries in pending.values():
        for _t, group, stem in entries:
            truth.terminal += 1
            truth.groups[group][1] += 1
            truth.terminal_uris[stem] += 1
    if buffer:
        flush()
    return truth
