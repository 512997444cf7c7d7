"""Scenario builder: write a consistent simulated fleet and its answer key.

``generate(scenario, hosts, out, seed=0)`` writes ``out/fleet.yml``, ``out/hosts/<name>/...`` (the format
of docs/lab-fleet.md) and ``out/expected.json`` (docs/contracts.md §5). Output is a pure function of
(scenario, hosts, seed, reference time, faults): the same arguments give a byte-identical tree.

Time: traffic, events and FREB traces are dated in the 20 hours before ``reference_time`` (default
``DEFAULT_REFERENCE``, fixed so output is reproducible). ``fleet.yml`` records it under
``clock.reference_time`` with ``shift: true``; when the fleet is served, the host models move every
timestamp by (time the fleet is loaded − reference_time), so the newest traffic is minutes old and the
collectors' default 24-hour window holds all of it (docs/lab-fleet.md, "Time").
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from toolkit.errors import UsageError
from toolkit.lab.model.fleet import DEMO_PASSWORD, DEMO_USERNAME
from toolkit.lab.model.hostile import HOSTILE_CLOCK_OFFSET_S, HOSTILE_MODES
from toolkit.lab.scenarios.causes import (
    DOMAIN_SID,
    HOST_WIDE,
    PLANTERS,
    Domain,
    Planter,
    PlantContext,
    TicketOracle,
    logon_right_denied_nested,
    planned_ticket,
)
from toolkit.lab.scenarios.hostgen import HostBuild, write_host
from toolkit.lab.scenarios.traffic import terminal_groups

DEFAULT_REFERENCE = dt.datetime(2026, 11, 24, 12, 0, 0)
SCENARIOS = ("healthy", "seed-catalog", "drift", "large", "faults")
DEFAULT_HOSTS = {"healthy": 4, "seed-catalog": 12, "drift": 6, "large": 300, "faults": 12}

#: fault name -> what it sets in host.yml ``faults`` (or ``iis``), see docs/lab-fleet.md
FAULTS: dict[str, dict[str, Any]] = {
    "latency": {"latency_ms": 400},
    "reset_mid_exchange": {"reset_mid_exchange": True},
    "auth_failure": {"auth_failure": True},
    "refused_port": {"refused_port": True},
    "tls_unknown_ca": {"tls_unknown_ca": True},
    "slow_collector": {"slow_collector": [{"collector": "*", "delay_s": 120}]},
    "garbage_output": {"garbage_output": [{"collector": "*", "mode": "non-json"}]},
    "truncated_output": {"garbage_output": [{"collector": "*", "mode": "truncated"}]},
    "iis_not_installed": {},
}
#: A compromised host, one per attack (toolkit.lab.model.hostile); not part of the ``faults`` scenario.
HOSTILE_FAULTS: dict[str, dict[str, Any]] = {
    f"hostile-{mode}": {"hostile": [{"collector": "*", "mode": mode}]} for mode in HOSTILE_MODES
}


def host_name(index: int, count: int) -> str:
    """web01..web12, or web001..web300: one width per fleet, so names sort in host order."""
    return f"web{index:0{max(2, len(str(count)))}d}"


def host_address(index: int) -> str:
    """127.77.0.11, 127.77.0.12, ... (200 per /24, so names and addresses stay readable)."""
    return f"127.77.{(index - 1) // 200}.{(index - 1) % 200 + 11}"


class _Fleet:
    def __init__(self, scenario: str, count: int, seed: int, reference: dt.datetime,
                 tickets: TicketOracle = planned_ticket) -> None:
        self.scenario = scenario
        self.tickets = tickets
        self.rng = random.Random(f"{scenario}:{seed}")
        self.reference = reference
        self.domain = Domain()
        self.builds: list[HostBuild] = []
        self.expected: dict[str, list[dict[str, str]]] = {}
        self.drift: list[dict[str, str]] = []
        self.faults: dict[str, list[str]] = {}
        self.notes: dict[str, Any] = {}
        for index in range(1, count + 1):
            name = host_name(index, count)
            build = HostBuild(name=name, address=host_address(index), domain=self.domain.name, netbios=self.domain.netbios,
                              rng=random.Random(f"{scenario}:{seed}:{name}"),
                              start=reference - dt.timedelta(hours=20), end=reference - dt.timedelta(minutes=2))
            self.domain.computer(build)
            self.builds.append(build)
            self.expected[name] = []

    def base_sites(self, build: HostBuild, *, volume: float = 1.0, intranet: bool = True) -> None:
        """What every simulated server serves before anything goes wrong: a public site and an intranet."""
        public = build.add_site("Default Web Site")
        public.pages = ("/", "/index.html", "/css/site.css", "/js/app.js", "/images/logo.png", "/about.html", "/healthcheck.html")
        build.traffic[public.id].anonymous_ok(int(120 * volume))
        build.traffic[public.id].monitor(int(72 * volume))
        if intranet:
            site = build.add_site("Intranet", windows=True, anonymous=False, host_header=f"intranet-{build.name}.{build.domain}")
            build.traffic[site.id].windows_ok(int(30 * volume))

    def plant(self, build: HostBuild, cause: str, planter: Planter | None = None) -> None:
        # fleet-wide causes borrow a healthy host (e.g. as the other holder of a duplicate SPN)
        others = sorted((b for b in self.builds if b is not build and not self.expected[b.name]),
                        key=lambda b: ("healthy" not in b.tags, b.name))
        ctx = PlantContext(self.domain, others, self.notes, self.tickets)
        self.expected[build.name] += (planter or PLANTERS[cause])(build, ctx)

    def apply_fault(self, build: HostBuild, fault: str) -> None:
        if fault not in FAULTS and fault not in HOSTILE_FAULTS:
            raise UsageError(f"unknown fault {fault!r} (known: {', '.join([*FAULTS, *HOSTILE_FAULTS])})")
        if fault == "hostile-clock":
            build.clock_offset_s = HOSTILE_CLOCK_OFFSET_S
        if fault == "iis_not_installed":
            build.iis_installed = False
            build.sites.clear()
            self.expected[build.name] = []
        for key, value in {**FAULTS, **HOSTILE_FAULTS}[fault].items():
            if isinstance(value, list):
                build.faults.setdefault(key, []).extend(value)
            else:
                build.faults[key] = value
        self.faults.setdefault(build.name, []).append(fault)

    def _annotate(self, build: HostBuild) -> None:
        """Add to each answer-key entry the terminal 401 groups its site's traffic holds."""
        for item in self.expected[build.name]:
            site = next((s for s in build.sites if s.name == item["site"]), None)
            groups = terminal_groups(build.traffic[site.id].requests) if site is not None else {}
            item["terminal"] = [{"substatus": f"401.{sub}", "win32": win32, "count": count}
                                for (sub, win32), count in sorted(groups.items())]

    def write(self, out: Path, seed: int) -> None:
        hosts_dir = out / "hosts"
        for build in self.builds:
            self._annotate(build)
        for build in self.builds:
            write_host(build, hosts_dir / build.name)
        accounts = [dict({"sAMAccountName": a["sam"]}, **{k: v for k, v in a.items() if k != "sam"})
                    for _, a in sorted(self.domain.accounts.items())]
        domain: dict[str, Any] = {"name": self.domain.name, "netbios": self.domain.netbios, "sid": DOMAIN_SID,
                                  "accounts": accounts}
        if self.domain.groups:
            domain["groups"] = [dict(g) for _, g in sorted(self.domain.groups.items())]
        fleet = {
            "name": f"lab-{self.scenario}",
            "domain": domain,
            "credentials": {"username": DEMO_USERNAME, "password": DEMO_PASSWORD},
            "clock": {"reference_time": self.reference.strftime("%Y-%m-%dT%H:%M:%SZ"), "shift": True},
            "hosts": [{"name": b.name, "address": b.address, **({"tags": b.tags} if b.tags else {})} for b in self.builds],
        }
        with (out / "fleet.yml").open("w", encoding="utf-8") as handle:
            handle.write(f"# Simulated IIS fleet, scenario {self.scenario!r}, seed {seed} (generated by `iisfleet lab generate`).\n"
                         "# Format: docs/lab-fleet.md. Serve it with `iisfleet lab serve <this folder>`.\n")
            yaml.safe_dump(fleet, handle, sort_keys=False, default_flow_style=False, width=200)
        expected = {
            "schema": "iisfleet.lab-expected/1",
            "scenario": self.scenario,
            "seed": seed,
            "reference_time": self.reference.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hosts": {name: sorted(entries, key=lambda e: (e["site"], e["cause"])) for name, entries in sorted(self.expected.items())},
            "drift": self.drift,
            "faults": dict(sorted(self.faults.items())),
            "spn_duplicates": self.notes.get("spn_duplicates", []),
            # each site whose planted cause Kerberos makes: the SPN clients ask for, the account that decrypts
            # for the site, and the outcome (predicted, or from a real KDC: toolkit.lab.addc.tickets)
            "kerberos": self.notes.get("kerberos", []),
        }
        (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")


def _healthy(fleet: _Fleet) -> None:
    for build in fleet.builds:
        fleet.base_sites(build)


def _seed_catalog(fleet: _Fleet) -> None:
    count = len(fleet.builds)
    healthy = max(2, count // 4)
    planted = count - healthy
    if planted < len(HOST_WIDE) + 1:
        raise UsageError(f"the seed-catalog scenario needs at least {len(HOST_WIDE) + 3} hosts (got {count})")
    order = list(fleet.builds)
    fleet.rng.shuffle(order)
    healthy_hosts, planted_hosts = order[:healthy], order[healthy:]
    for build in fleet.builds:
        fleet.base_sites(build)
    for build in healthy_hosts:
        build.tags.append("healthy")
    site_causes = [c for c in PLANTERS if c not in HOST_WIDE]
    wide_hosts, packed_hosts = planted_hosts[: len(HOST_WIDE)], planted_hosts[len(HOST_WIDE):]
    for build, cause in zip(wide_hosts, HOST_WIDE):
        fleet.plant(build, cause)
        if cause == "logon-right-denied":  # the same cause through the domain: a nested domain group denied
            fleet.plant(build, cause, logon_right_denied_nested)
    for i, cause in enumerate(site_causes):
        fleet.plant(packed_hosts[i % len(packed_hosts)], cause)


def _drift(fleet: _Fleet) -> None:
    if len(fleet.builds) < 3:
        raise UsageError("the drift scenario needs at least 3 hosts")
    odd = fleet.rng.choice(fleet.builds)
    for build in fleet.builds:
        fleet.base_sites(build, volume=0.5)
        site = build.add_site("Shop", host_header="shop.contoso.com")
        build.tags.append("shop")
        traffic = build.traffic[site.id]
        if build is not odd:
            traffic.anonymous_ok(90, site.pages)
            continue
        # someone "fixed" one server by hand: anonymous runs as a domain service account whose password has
        # since rotated
        site.anonymous_user = f"{fleet.domain.netbios}\\svc_web"
        fleet.domain.account("svc_web")
        traffic.anonymous_ok(15, site.pages)
        for request in traffic.terminal(30, site.pages, 401, 1, 1326):
            build.logon_failure(request.when, user="svc_web", domain=fleet.domain.netbios, status="0xC000006D",
                                substatus="0xC000006A", logon_type=8, package="MICROSOFT_AUTHENTICATION_PACKAGE_V1_0")
        fleet.expected[build.name].append({"cause": "anonymous-credentials-invalid", "site": "Shop", "substatus": "401.1"})
        fleet.drift.append({"site": "Shop", "host": build.name, "attribute": "anonymous.user_name"})


def _large(fleet: _Fleet) -> None:
    """Mostly healthy hosts with light traffic; every tenth host carries one site-scoped cause."""
    site_causes = [c for c in PLANTERS if c not in HOST_WIDE and c != "kerberos-spn-duplicate"]
    for index, build in enumerate(fleet.builds):
        fleet.base_sites(build, volume=0.4)
        if index % 10 == 9:
            fleet.plant(build, site_causes[(index // 10) % len(site_causes)])


def _faults(fleet: _Fleet) -> None:
    names = list(FAULTS)
    if len(fleet.builds) < len(names) + 1:
        raise UsageError(f"the faults scenario needs at least {len(names) + 1} hosts (one per fault plus a healthy one)")
    for build in fleet.builds:
        fleet.base_sites(build, volume=0.5)
    for build, fault in zip(fleet.builds, names):
        fleet.apply_fault(build, fault)


_BUILDERS = {"healthy": _healthy, "seed-catalog": _seed_catalog, "drift": _drift, "large": _large, "faults": _faults}


def generate(scenario: str, hosts: int | None, out: Path, seed: int = 0, *, reference_time: dt.datetime | None = None,
             faults: Mapping[str, Sequence[str]] | None = None, overwrite: bool = False,
             tickets: TicketOracle = planned_ticket) -> dict[str, Any]:
    """Write a fleet for ``scenario`` with ``hosts`` hosts (None: the scenario's default) into ``out``.

    ``faults`` plants named faults (``FAULTS``) on named hosts on top of the scenario. ``tickets`` decides
    each Kerberos logon to a site whose cause Kerberos makes (default: predicted from the domain section;
    ``toolkit.lab.addc.live`` passes the outcomes of real exchanges with the lab DC). Returns the answer
    key (the content of ``expected.json``). ``out`` must be empty or missing unless ``overwrite``.
    """
    if scenario not in _BUILDERS:
        raise UsageError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    count = DEFAULT_HOSTS[scenario] if hosts is None else hosts
    if count < 1 or count > 10000:
        raise UsageError(f"--hosts must be between 1 and 10000 (got {count})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder; choose a new folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"{out} is not empty; choose a new folder, or replace its contents with `iisfleet lab generate --force`")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    reference = (reference_time or DEFAULT_REFERENCE)
    if reference.tzinfo is not None:
        reference = reference.astimezone(dt.timezone.utc).replace(tzinfo=None)
    fleet = _Fleet(scenario, count, seed, reference.replace(microsecond=0), tickets)
    _BUILDERS[scenario](fleet)
    by_name = {b.name: b for b in fleet.builds}
    for name, names in (faults or {}).items():
        if name not in by_name:
            raise UsageError(f"--fault names host {name!r}, which is not in the fleet ({fleet.builds[0].name}..{fleet.builds[-1].name})")
        for fault in names:
            fleet.apply_fault(by_name[name], fault)
    fleet.write(out, seed)
    return json.loads((out / "expected.json").read_text(encoding="utf-8"))
