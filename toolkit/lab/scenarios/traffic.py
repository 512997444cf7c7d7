"""W3C request lines for simulated traffic: normal browsing, Windows-auth handshakes, terminal 401s.

Every request is one ``Request``; the host writer sorts them and splits them into daily ``u_exYYMMDD.log``
files with the default IIS 10 field set. Handshakes follow what IIS logs for them:
Negotiate/Kerberos ``401 2 5`` → ``200 0 0``; NTLM ``401 2 5`` → ``401 1 2148074254`` → ``200 0 0``,
all from the same client (c-ip + user agent) within a second or two.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

FIELDS = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
          "cs(Referer) sc-status sc-substatus sc-win32-status time-taken")

BROWSERS = (
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/131.0.0.0+Safari/537.36+Edg/131.0.0.0",
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/131.0.0.0+Safari/537.36",
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64;+rv:133.0)+Gecko/20100101+Firefox/133.0",
    "Mozilla/5.0+(Windows+NT+10.0;+WOW64;+Trident/7.0;+rv:11.0)+like+Gecko",
)
NON_DOMAIN_CLIENTS = (
    "Mozilla/5.0+(Macintosh;+Intel+Mac+OS+X+14_6)+AppleWebKit/605.1.15+(KHTML,+like+Gecko)+Version/18.1+Safari/605.1.15",
    "curl/8.5.0",
    "Mozilla/5.0+(X11;+Linux+x86_64;+rv:133.0)+Gecko/20100101+Firefox/133.0",
)
MONITOR_UA = "Mozilla/4.0+(compatible;+MSIE+4.01;+Windows+NT;+MS+Search+6.0+Robot)"

STATIC_PAGES = ("/", "/index.html", "/css/site.css", "/js/app.js", "/images/logo.png", "/about.html", "/favicon.ico")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar")

NTLM_CONTINUE = 2148074254  # SEC_E_NO_CREDENTIALS as IIS logs the NTLM challenge round


@dataclass(frozen=True)
class Request:
    when: dt.datetime
    site_id: int
    server_ip: str
    method: str
    uri: str
    port: int
    user: str
    client_ip: str
    agent: str
    status: int
    substatus: int
    win32: int
    time_taken: int
    query: str = "-"
    referer: str = "-"

    def line(self) -> str:
        return " ".join((self.when.strftime("%Y-%m-%d %H:%M:%S"), self.server_ip, self.method, self.uri, self.query,
                         str(self.port), self.user or "-", self.client_ip, self.agent, self.referer,
                         str(self.status), str(self.substatus), str(self.win32), str(self.time_taken)))


class Traffic:
    """Builds requests for one site, deterministic from ``rng``."""

    def __init__(self, rng: random.Random, *, site_id: int, server_ip: str, port: int, start: dt.datetime,
                 end: dt.datetime, domain: str) -> None:
        self.rng = rng
        self.site_id = site_id
        self.server_ip = server_ip
        self.port = port
        self.start = start
        self.end = end
        self.domain = domain
        self.requests: list[Request] = []

    def random_time(self) -> dt.datetime:
        span = int((self.end - self.start).total_seconds())
        return self.start + dt.timedelta(seconds=self.rng.randrange(span))

    def client(self, network: str = "10.10") -> tuple[str, str]:
        # `network` is a dotted prefix of one to three octets; fill the rest so every address has four parts.
        octets = network.split(".")
        while len(octets) < 3:
            octets.append(str(self.rng.randrange(1, 250)))
        octets.append(str(self.rng.randrange(2, 254)))
        return ".".join(octets), self.rng.choice(BROWSERS)

    def add(self, when: dt.datetime, uri: str, user: str, ip: str, agent: str, status: int, sub: int, win32: int,
            *, method: str = "GET", taken: int | None = None) -> None:
        self.requests.append(Request(when, self.site_id, self.server_ip, method, uri, self.port, user, ip, agent,
                                     status, sub, win32, taken if taken is not None else self.rng.randrange(1, 180)))

    def anonymous_ok(self, count: int, pages: tuple[str, ...] = STATIC_PAGES) -> None:
        for _ in range(count):
            ip, agent = self.client()
            self.add(self.random_time(), self.rng.choice(pages), "-", ip, agent, 200, 0, 0)

    def monitor(self, count: int, uri: str = "/healthcheck.html") -> None:
        """A load balancer probe: same client, regular interval, anonymous 200s."""
        step = (self.end - self.start) / max(count, 1)
        for i in range(count):
            self.add(self.start + step * i, uri, "-", "10.0.0.2", MONITOR_UA, 200, 0, 0, taken=1)

    def windows_ok(self, count: int, pages: tuple[str, ...] = STATIC_PAGES, *, ntlm_share: float = 0.4,
                   users: tuple[str, ...] = USERS) -> None:
        """Successful Windows-auth visits, each starting with the anonymous challenge round."""
        for _ in range(count):
            ip, agent = self.client()
            user = f"{self.domain}\\{self.rng.choice(users)}"
            when = self.random_time()
            uri = self.rng.choice(pages)
            self.add(when, uri, "-", ip, agent, 401, 2, 5, taken=self.rng.randrange(0, 4))
            if self.rng.random() < ntlm_share:
                when += dt.timedelta(seconds=self.rng.choice((0, 0, 1)))
                self.add(when, uri, "-", ip, agent, 401, 1, NTLM_CONTINUE, taken=self.rng.randrange(0, 3))
            when += dt.timedelta(seconds=self.rng.choice((0, 1, 1, 2)))
            self.add(when, uri, user, ip, agent, 200, 0, 0)
            # the browser keeps the authenticated connection for a few more requests
            for _ in range(self.rng.randrange(0, 3)):
                when += dt.timedelta(seconds=self.rng.randrange(1, 20))
                self.add(when, self.rng.choice(pages), user, ip, agent, 200, 0, 0)

    def terminal(self, count: int, uri: str | tuple[str, ...], status: int, sub: int, win32: int, *,
                 user: str | tuple[str, ...] = "-", challenge_first: bool = False, network: str = "10.30",
                 agents: tuple[str, ...] = BROWSERS, client: tuple[str, str] | None = None,
                 retries: int = 2) -> list[Request]:
        """Refused requests that nothing succeeds after (no 2xx/3xx from the same client within minutes).

        ``challenge_first`` puts the anonymous ``401 2 5`` round in front, as browsers do for Windows auth.
        """
        made = []
        for _ in range(count):
            ip, agent = client or (self.client(network)[0], self.rng.choice(agents))
            when = self.random_time()
            target = self.rng.choice(uri) if isinstance(uri, tuple) else uri
            name = self.rng.choice(user) if isinstance(user, tuple) else user
            for attempt in range(1 + self.rng.randrange(0, retries + 1)):
                if challenge_first:
                    self.add(when, target, "-", ip, agent, 401, 2, 5, taken=self.rng.randrange(0, 3))
                    when += dt.timedelta(seconds=self.rng.choice((0, 1)))
                self.add(when, target, name, ip, agent, status, sub, win32)
                made.append(self.requests[-1])
                when += dt.timedelta(seconds=self.rng.randrange(1, 6))
        return made


def render_log(requests: list[Request], *, software: str = "Microsoft Internet Information Services 10.0") -> dict[str, str]:
    """Daily W3C files (``u_exYYMMDD.log``) for one site's requests, with IIS's directive block on top."""
    days: dict[str, list[Request]] = {}
    # by time, then in the order the requests were made (a handshake's 401 and its 200 share a second)
    ordered = sorted(enumerate(requests), key=lambda item: (item[1].when, item[0]))
    for _, request in ordered:
        days.setdefault(request.when.strftime("%y%m%d"), []).append(request)
    files = {}
    for day, items in days.items():
        first = items[0].when
        header = [f"#Software: {software}", "#Version: 1.0", f"#Date: {first.strftime('%Y-%m-%d %H:%M:%S')}",
                  f"#Fields: {FIELDS}"]
        files[f"u_ex{day}.log"] = "\r\n".join(header + [r.line() for r in items]) + "\r\n"
    return files


def terminal_groups(requests: list[Request], window_s: float = 30.0) -> dict[tuple[int, int], int]:
    """(substatus, win32) → count of the 401s nothing succeeds after: no 2xx/3xx from the same client
    (c-ip + user agent) within ``window_s``. The answer key lists them so tests can check log analysis."""
    ordered = [r for _, r in sorted(enumerate(requests), key=lambda item: (item[1].when, item[0]))]
    pending: dict[tuple[str, str], list[Request]] = {}
    terminal: dict[tuple[int, int], int] = {}

    def settle(items: list[Request]) -> None:
        for item in items:
            terminal[(item.substatus, item.win32)] = terminal.get((item.substatus, item.win32), 0) + 1

    for request in ordered:
        client = (request.client_ip, request.agent)
        waiting = pending.setdefault(client, [])
        expired = [r for r in waiting if (request.when - r.when).total_seconds() > window_s]
        settle(expired)
        waiting[:] = [r for r in waiting if r not in expired]
        if request.status == 401:
            waiting.append(request)
        elif request.status < 400:
            waiting.clear()  # the handshake completed: every 401 before it was a challenge round
    for waiting in pending.values():
        settle(waiting)
    return terminal
