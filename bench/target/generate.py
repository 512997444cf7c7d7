"""Write the benchmark's W3C log: Windows-auth traffic where 30% of the lines are handshake 401s.

Every conversation is one client (c-ip + user agent) on one URL: 43% of them start with the anonymous
challenge (401 2 5) and succeed a moment later (200), a few fail for good (401 1 1326, 401 2 5 with no
answer), the rest are plain 200/304/404. Lines are written in time order, 120 per second, with the IIS
default field set. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

FIELDS = ("#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
          "cs(Referer) sc-status sc-substatus sc-win32-status time-taken")
STEMS = ["/", "/default.aspx", "/api/orders", "/api/customers/search", "/reports/daily.aspx", "/intranet/home",
         "/hr/payroll/view.aspx", "/content/site.css", "/scripts/app.js", "/images/logo.png"]
AGENTS = ["Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/118.0.0.0+Safari/537.36",
          "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64;+rv:119.0)+Gecko/20100101+Firefox/119.0",
          "Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.16827;+Pro)"]


def write(path: Path, lines: int, *, seed: int = 1, start: datetime | None = None, per_second: float = 120.0) -> None:
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 24, tzinfo=timezone.utc)
    clients = [f"10.{rng.randrange(1, 40)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(5000)]
    out = [f"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: {start:%Y-%m-%d %H:%M:%S}\n{FIELDS}\n"]
    written = 0
    pending: list[str] = []
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        while written < lines:
            when = start + timedelta(seconds=written / per_second)
            stamp = f"{when:%Y-%m-%d %H:%M:%S}"
            if pending:
                out.append(stamp + pending.pop())
                written += 1
                continue
            ip, agent, stem = rng.choice(clients), rng.choice(AGENTS), rng.choice(STEMS)
            head = f" 10.0.0.5 GET {stem} - 443 "
            roll = rng.random()
            if roll < 0.43:  # Kerberos/NTLM: challenge, then the authenticated request
                out.append(f"{stamp}{head}- {ip} {agent} - 401 2 5 {rng.randrange(1, 9)}\n")
                pending.append(f"{head}CONTOSO\\user{rng.randrange(500):03d} {ip} {agent} - 200 0 0 {rng.randrange(5, 90)}\n")
            elif roll < 0.4335:  # a user who really failed
                out.append(f"{stamp}{head}- {ip} {agent} - 401 1 1326 {rng.randrange(1, 9)}\n")
            elif roll < 0.4350:  # a client that never answered the challenge
                out.append(f"{stamp}{head}- {ip} {agent} - 401 2 5 {rng.randrange(1, 9)}\n")
            else:
                status = "200 0 0" if roll < 0.95 else ("304 0 0" if roll < 0.98 else "404 0 2")
                out.append(f"{stamp}{head}- {ip} {agent} - {status} {rng.randrange(1, 60)}\n")
            written += 1
            if len(out) >= 20000:
                stream.write("".join(out))
                out.clear()
        stream.write("".join(out))


if __name__ == "__main__":
    write(Path(sys.argv[1]), int(sys.argv[2]))
