"""Load a fleet directory (docs/lab-fleet.md) into typed, validated host models.

A fleet is data an admin could write by hand: ``fleet.yml`` plus one folder per host. Every problem is
reported as a ``ConfigError`` naming the file and the field, never as a bare ``KeyError``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.errors import ConfigError
from toolkit.lab.backend import DEFAULT_ENDPOINTS, LANGUAGE_MODES, Endpoint, LabHostSpec, ProtocolFaults
from toolkit.lab.model.hostile import HOSTILE_MODES
from toolkit.lab.model.winfs import normalise

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The lab's fixed, documented demo credentials (docs/lab-fleet.md). Only simulated hosts accept them.
DEMO_USERNAME = "CONTOSO\\iisfleet-lab"
DEMO_PASSWORD = "Lab-Only-NotASecret-1"

#: Collector-level faults a host may carry (protocol faults are the ProtocolFaults fields).
COLLECTOR_FAULTS = ("slow_collector", "garbage_output", "hostile", "transfer")
PROTOCOL_FAULTS = tuple(ProtocolFaults.__dataclass_fields__)


def parse_utc(value: Any, *, path: Path, field_name: str) -> dt.datetime:
    """ISO 8601 (``Z`` or offset) or a YAML timestamp → aware UTC datetime."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)
    raise ConfigError(f"not an ISO 8601 time: {value!r}", path=str(path), field=field_name)


def iso_z(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Fields:
    """Typed access to one YAML mapping with errors that name the file and the dotted field."""

    def __init__(self, data: Any, path: Path, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping", path=str(path), field=prefix or None)
        self.data = data
        self.path = path
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=str(self.path), field=self._name(key))

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.error(key, "required field is missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(key, f"expected {names}, got {type(value).__name__}: {value!r}")
        return value

    def sub(self, key: str, *, required: bool = False) -> _Fields:
        return _Fields(self.get(key, dict, {}, required=required), self.path, self._name(key))

    def items(self, key: str) -> list[_Fields]:
        raw = self.get(key, list, [])
        return [_Fields(item, self.path, f"{self._name(key)}[{i}]") for i, item in enumerate(raw)]

    def unknown(self, allowed: set[str]) -> None:
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise self.error(extra[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")


@dataclass(frozen=True)
class AdAccount:
    sam: str  # sAMAccountName, e.g. "svc_shop" or "WEB01$"
    kind: str  # "user" | "computer"
    distinguished_name: str
    sid: str = ""
    enabled: bool = True
    locked: bool = False
    expired: bool = False
    spns: tuple[str, ...] = ()
    trusted_for_delegation: bool = False
    allowed_to_delegate_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdGroup:
    name: str  # e.g. "WebDenyLogon"
    members: tuple[str, ...] = ()  # sAMAccountNames of accounts or other groups (nesting)
    sid: str = ""


@dataclass(frozen=True)
class Domain:
    name: str  # DNS name, e.g. contoso.com
    netbios: str  # e.g. CONTOSO
    accounts: dict[str, AdAccount] = field(default_factory=dict)  # lower-case sam -> account
    groups: tuple[AdGroup, ...] = ()  # domain groups, seeded into the lab DC (lab serve --domain-controller)
    sid: str = ""  # the domain SID (S-1-5-21-x-y-z): the lab DC is provisioned with it, accounts keep their SIDs

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.name.split("."))

    def find(self, account: str) -> AdAccount | None:
        """Resolve ``DOMAIN\\sam``, ``sam@domain`` or ``sam`` to an account of this domain."""
        name = account.strip()
        if "\\" in name:
            prefix, name = name.split("\\", 1)
            if prefix.upper() not in (self.netbios.upper(), self.name.upper()):
                return None
        elif "@" in name:
            name, suffix = name.split("@", 1)
            if suffix.lower() != self.name.lower():
                return None
        return self.accounts.get(name.lower())


@dataclass(frozen=True)
class CollectorFault:
    collector: str  # collector id, or "*" for every collector
    delay_s: float = 0.0  # slow_collector
    mode: str = ""  # garbage_output: "non-json" | "truncated"; hostile: one of hostile.HOSTILE_MODES
    after_parts: int = 0  # transfer (toolkit.lab.model.transfer): parts sent before the fault


@dataclass(frozen=True)
class HostFaults:
    protocol: ProtocolFaults = field(default_factory=ProtocolFaults)
    slow_collector: tuple[CollectorFault, ...] = ()
    garbage_output: tuple[CollectorFault, ...] = ()
    hostile: tuple[CollectorFault, ...] = ()  # a compromised host (toolkit.lab.model.hostile)
    transfer: tuple[CollectorFault, ...] = ()  # one per run, in order (toolkit.lab.model.transfer)


@dataclass(frozen=True)
class LocalUser:
    name: str
    sid: str
    enabled: bool = True
    locked_out: bool = False
    password_expired: bool = False
    password_required: bool = True
    account_expires: dt.datetime | None = None
    password_last_set: dt.datetime | None = None


@dataclass(frozen=True)
class LocalGroup:
    name: str
    sid: str
    members: tuple[tuple[str, str], ...] = ()  # (name, sid)


@dataclass(frozen=True)
class EventLogState:
    name: str
    max_size_bytes: int = 20971520
    file_size_bytes: int = 1052672
    record_count: int = 0
    is_full: bool = False
    retention: str = "Circular"  # the log's LogMode: Circular (overwrite) | Retain | AutoBackup
    readable: bool = True  # false: the collector's account may not read it (access-denied)


@dataclass(frozen=True)
class HostModel:
    """Everything one simulated host knows, as loaded from ``hosts/<name>/``."""

    name: str
    directory: Path
    address: str
    fqdn: str
    computer_name: str
    domain_joined: bool
    os_caption: str
    os_version: str
    os_build: str
    ps_version: str
    time_zone: str
    clock_offset_s: float
    iis_installed: bool
    iis_version: str | None
    auth_modules: tuple[str, ...]
    users: tuple[LocalUser, ...]
    groups: tuple[LocalGroup, ...]
    acls: dict[str, str]  # lower-case Windows path -> SDDL
    shares: dict[str, str]  # lower-case \\server\share -> share SDDL
    registry: dict[str, Any]  # lower-case key path\value -> value
    event_logs: tuple[EventLogState, ...]
    logon_counts: dict[str, int]
    faults: HostFaults
    http_port: int = 5985
    https_port: int = 5986
    ssh_port: int = 22
    tags: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS
    #: HTTP.sys SSL records (toolkit/lab/certstore.py): kind, address, host_name, port, store, certificate | thumbprint
    ssl_bindings: tuple[dict[str, Any], ...] = ()

    @property
    def files_root(self) -> Path:
        return self.directory / "files"

    def registry_value(self, key: str) -> Any:
        return self.registry.get(key.lower())


@dataclass(frozen=True)
class FleetModel:
    name: str
    directory: Path
    domain: Domain
    username: str
    password: str
    reference_time: dt.datetime | None  # the "now" the fleet's timestamps were written against
    shift_time: bool
    hosts: tuple[HostModel, ...]


_FLEET_KEYS = {"name", "domain", "credentials", "hosts", "faults", "clock", "schema", "endpoints"}
_HOST_KEYS = {
    "name", "fqdn", "computer_name", "domain_joined", "os", "powershell_version", "time_zone",
    "clock_offset_s", "iis", "local_users", "local_groups", "acls", "shares", "registry", "event_logs",
    "logon_counts", "faults", "endpoints", "ssl_bindings",
}


def _endpoints(node: _Fields, inherited: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS) -> tuple[Endpoint, ...]:
    """``endpoints:``, the session configurations a host offers (docs/lab-fleet.md); absent: inherited."""
    if node.data.get("endpoints") is None:
        return inherited
    endpoints: list[Endpoint] = []
    for entry in node.items("endpoints"):
        entry.unknown({"name", "language", "jea", "elevated", "groups"})
        groups = entry.get("groups", list, ["Remote Management Users"])
        if not all(isinstance(g, str) for g in groups):
            raise entry.error("groups", "expected a list of local group names")
        name = entry.get("name", str, required=True)
        language = entry.get("language", str, "FullLanguage")
        if language not in LANGUAGE_MODES:
            raise entry.error("language", f"expected one of {', '.join(LANGUAGE_MODES)}")
        jea = entry.get("jea", bool, False)
        if jea and language != "NoLanguage":
            raise entry.error("jea", "a JEA endpoint (RestrictedRemoteServer) runs in NoLanguage mode")
        if any(e.name.lower() == name.lower() for e in endpoints):
            raise entry.error("name", f"endpoint {name!r} is declared twice")
        endpoints.append(Endpoint(name=name, language=language, jea=jea, elevated=entry.get("elevated", bool, True),
                                  groups=tuple(groups)))
    if not endpoints:
        raise node.error("endpoints", "a host needs at least one endpoint")
    return tuple(endpoints)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file is missing", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader, libyaml's when present)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=str(path),
                          line=None if line is None else line + 1) from None


def _faults(node: _Fields, inherited: HostFaults | None = None) -> HostFaults:
    allowed = set(PROTOCOL_FAULTS) | set(COLLECTOR_FAULTS)
    node.unknown(allowed)
    base = inherited.protocol if inherited else ProtocolFaults()
    values: dict[str, Any] = {}
    for name in PROTOCOL_FAULTS:
        default = getattr(base, name)
        values[name] = node.get(name, type(default), default)
    collector: dict[str, tuple[CollectorFault, ...]] = {}
    for kind in COLLECTOR_FAULTS:
        raw = node.data.get(kind)
        if raw is None:
            collector[kind] = getattr(inherited, kind) if inherited else ()
            continue
        items = raw if isinstance(raw, list) else [raw]
        parsed = []
        for i, item in enumerate(items):
            entry = _Fields(item, node.path, f"{node._name(kind)}[{i}]")
            entry.unknown({"collector", "delay_s", "mode", "after_parts"})
            mode = entry.get("mode", str, "non-json" if kind == "garbage_output" else "")
            if kind == "garbage_output" and mode not in ("non-json", "truncated"):
                raise entry.error("mode", "expected non-json or truncated")
            if kind == "hostile" and mode not in HOSTILE_MODES:
                raise entry.error("mode", f"expected one of {', '.join(HOSTILE_MODES)}")
            if kind == "transfer" and mode not in ("drop", "stall", "corrupt"):
                raise entry.error("mode", "expected drop, stall or corrupt")
            parsed.append(CollectorFault(collector=entry.get("collector", str, "*"),
                                         delay_s=entry.get("delay_s", float, 120.0 if kind == "slow_collector" else 0.0),
                                         mode=mode, after_parts=entry.get("after_parts", int, 0)))
        collector[kind] = tuple(parsed)
    return HostFaults(protocol=ProtocolFaults(**values), **collector)


def _domain(node: _Fields) -> Domain:
    node.unknown({"name", "netbios", "sid", "accounts", "groups"})
    name = node.get("name", str, required=True)
    netbios = node.get("netbios", str, name.split(".")[0].upper())
    base_dn = ",".join(f"DC={part}" for part in name.split("."))
    accounts: dict[str, AdAccount] = {}
    for entry in node.items("accounts"):
        entry.unknown({"sam", "sAMAccountName", "sid", "type", "dn", "enabled", "locked", "expired", "spns",
                       "trusted_for_delegation", "allowed_to_delegate_to"})
        sam = entry.get("sAMAccountName", str) or entry.get("sam", str, required=True)
        kind = entry.get("type", str, "computer" if sam.endswith("$") else "user")
        if kind not in ("user", "computer"):
            raise entry.error("type", "expected user or computer")
        default_dn = (f"CN={sam.rstrip('$').upper()},OU=Servers,{base_dn}" if kind == "computer"
                      else f"CN={sam},CN=Users,{base_dn}")
        spns = entry.get("spns", list, [])
        if not all(isinstance(s, str) for s in spns):
            raise entry.error("spns", "expected a list of strings")
        if sam.lower() in accounts:
            raise entry.error("sam", f"duplicate account {sam!r}")
        accounts[sam.lower()] = AdAccount(
            sam=sam, kind=kind, distinguished_name=entry.get("dn", str, default_dn), sid=entry.get("sid", str, ""),
            enabled=entry.get("enabled", bool, True), locked=entry.get("locked", bool, False),
            expired=entry.get("expired", bool, False), spns=tuple(spns),
            trusted_for_delegation=entry.get("trusted_for_delegation", bool, False),
            allowed_to_delegate_to=tuple(entry.get("allowed_to_delegate_to", list, [])),
        )
    groups = []
    for entry in node.items("groups"):
        entry.unknown({"name", "members", "sid"})
        members = entry.get("members", list, [])
        if not all(isinstance(m, str) for m in members):
            raise entry.error("members", "expected a list of account or group names")
        groups.append(AdGroup(name=entry.get("name", str, required=True), members=tuple(members),
                              sid=entry.get("sid", str, "")))
    sid = node.get("sid", str, "")
    if sid and not re.fullmatch(r"S-1-5-21-\d+-\d+-\d+", sid):
        raise node.error("sid", "expected a domain SID, S-1-5-21-<three numbers>")
    return Domain(name=name, netbios=netbios, accounts=accounts, groups=tuple(groups), sid=sid)


def _host(directory: Path, listing: _Fields, domain: Domain, fleet_faults: HostFaults,
          fleet_endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS) -> HostModel:
    name = listing.get("name", str, required=True)
    path = directory / "host.yml"
    node = _Fields(_read_yaml(path) or {}, path)
    node.unknown(_HOST_KEYS)
    os_node = node.sub("os")
    os_node.unknown({"caption", "version", "build"})
    iis = node.sub("iis")
    iis.unknown({"installed", "version", "auth_modules"})
    users = []
    for entry in node.items("local_users"):
        entry.unknown({"name", "sid", "enabled", "locked_out", "password_expired", "password_required",
                       "account_expires", "password_last_set"})
        expires = entry.data.get("account_expires")
        last_set = entry.data.get("password_last_set")
        users.append(LocalUser(
            name=entry.get("name", str, required=True), sid=entry.get("sid", str, required=True),
            enabled=entry.get("enabled", bool, True), locked_out=entry.get("locked_out", bool, False),
            password_expired=entry.get("password_expired", bool, False),
            password_required=entry.get("password_required", bool, True),
            account_expires=None if expires is None else parse_utc(expires, path=path, field_name=entry._name("account_expires")),
            password_last_set=None if last_set is None else parse_utc(last_set, path=path, field_name=entry._name("password_last_set")),
        ))
    groups = []
    for entry in node.items("local_groups"):
        entry.unknown({"name", "sid", "members"})
        members = []
        for member in entry.items("members"):
            member.unknown({"name", "sid"})
            members.append((member.get("name", str, required=True), member.get("sid", str, "")))
        groups.append(LocalGroup(name=entry.get("name", str, required=True), sid=entry.get("sid", str, required=True),
                                 members=tuple(members)))
    logs = []
    for entry in node.items("event_logs"):
        entry.unknown(set(EventLogState.__dataclass_fields__))
        logs.append(EventLogState(
            name=entry.get("name", str, required=True),
            max_size_bytes=entry.get("max_size_bytes", int, EventLogState.max_size_bytes),
            file_size_bytes=entry.get("file_size_bytes", int, EventLogState.file_size_bytes),
            record_count=entry.get("record_count", int, EventLogState.record_count),
            is_full=entry.get("is_full", bool, EventLogState.is_full),
            retention=entry.get("retention", str, EventLogState.retention),
            readable=entry.get("readable", bool, EventLogState.readable)))
    mapping = {}
    for key in ("acls", "shares", "registry", "logon_counts"):
        raw = node.get(key, dict, {})
        if key in ("acls", "shares") and not all(isinstance(v, str) for v in raw.values()):
            raise node.error(key, "expected a mapping of path to SDDL string")
        mapping[key] = raw
    fqdn = node.get("fqdn", str, f"{name}.{domain.name}")
    return HostModel(
        name=name, directory=directory, address=listing.get("address", str, required=True), fqdn=fqdn,
        computer_name=node.get("computer_name", str, name.upper()),
        domain_joined=node.get("domain_joined", bool, True),
        os_caption=os_node.get("caption", str, "Microsoft Windows Server 2022 Datacenter"),
        os_version=os_node.get("version", str, "10.0.20348"), os_build=str(os_node.get("build", (str, int), "20348")),
        ps_version=node.get("powershell_version", str, "5.1.20348.2849"),
        time_zone=node.get("time_zone", str, "UTC"),
        clock_offset_s=node.get("clock_offset_s", float, 0.0),
        iis_installed=iis.get("installed", bool, True), iis_version=str(iis.get("version", (str, float), "10.0")),
        auth_modules=tuple(iis.get("auth_modules", list, ["AnonymousAuthenticationModule", "WindowsAuthenticationModule"])),
        users=tuple(users), groups=tuple(groups),
        acls={normalise(str(k)): v for k, v in mapping["acls"].items()},
        shares={normalise(str(k)): v for k, v in mapping["shares"].items()},
        registry={k.lower(): v for k, v in mapping["registry"].items()},
        event_logs=tuple(logs) or (EventLogState("Security"), EventLogState("System")),
        logon_counts={str(k): int(v) for k, v in mapping["logon_counts"].items()},
        faults=_faults(node.sub("faults"), fleet_faults),
        http_port=listing.get("http_port", int, 5985), https_port=listing.get("https_port", int, 5986),
        ssh_port=listing.get("ssh_port", int, 22), tags=tuple(listing.get("tags", list, [])),
        endpoints=_endpoints(node, fleet_endpoints),
        ssl_bindings=_ssl_bindings(node),
    )


_SSL_BINDING_KEYS = {"kind", "address", "host_name", "port", "store", "certificate", "thumbprint"}


def _ssl_bindings(node: _Fields) -> tuple[dict[str, Any], ...]:
    """``ssl_bindings:`` (docs/lab-fleet.md): HTTP.sys's SSL records, each naming a certificate of the host's
    ``certstore/`` by label or a bare thumbprint."""
    out = []
    for entry in node.items("ssl_bindings"):
        entry.unknown(_SSL_BINDING_KEYS)
        kind = entry.get("kind", str, "sni")
        if kind not in ("ip", "sni", "ccs"):
            raise entry.error("kind", "expected ip, sni or ccs")
        out.append({"kind": kind, "address": entry.get("address", str, "0.0.0.0"),
                    "host_name": entry.get("host_name", str, ""), "port": entry.get("port", int, 443),
                    "store": entry.get("store", str, "MY"), "certificate": entry.get("certificate", str, ""),
                    "thumbprint": entry.get("thumbprint", str, "")})
    return tuple(out)


def load_fleet_model(path: Path) -> FleetModel:
    """Read and validate ``path/fleet.yml`` and every ``hosts/<name>/host.yml`` it lists."""
    path = Path(path)
    fleet_file = path / "fleet.yml"
    if not path.is_dir():
        raise ConfigError("fleet directory does not exist", path=str(path))
    node = _Fields(_read_yaml(fleet_file) or {}, fleet_file)
    node.unknown(_FLEET_KEYS)
    domain = _domain(node.sub("domain", required=True))
    creds = node.sub("credentials")
    creds.unknown({"username", "password"})
    clock = node.sub("clock")
    clock.unknown({"reference_time", "shift"})
    ref_raw = clock.data.get("reference_time")
    reference = None if ref_raw is None else parse_utc(ref_raw, path=fleet_file, field_name="clock.reference_time")
    fleet_faults = _faults(node.sub("faults"))
    fleet_endpoints = _endpoints(node)
    hosts = []
    seen: dict[str, str] = {}
    for listing in node.items("hosts"):
        listing.unknown({"name", "address", "http_port", "https_port", "ssh_port", "tags"})
        name = listing.get("name", str, required=True)
        if name.lower() in seen:
            raise listing.error("name", f"host {name!r} is listed twice")
        address = listing.get("address", str, required=True)
        if address in seen.values():
            raise listing.error("address", f"address {address} is used by two hosts")
        seen[name.lower()] = address
        host_dir = path / "hosts" / name
        if not host_dir.is_dir():
            raise ConfigError(f"host folder hosts/{name}/ is missing", path=str(fleet_file), field=listing._name("name"))
        hosts.append(_host(host_dir, listing, domain, fleet_faults, fleet_endpoints))
    if not hosts:
        raise node.error("hosts", "a fleet needs at least one host")
    return FleetModel(
        name=node.get("name", str, path.name), directory=path, domain=domain,
        username=creds.get("username", str, DEMO_USERNAME), password=creds.get("password", str, DEMO_PASSWORD),
        reference_time=reference, shift_time=clock.get("shift", bool, reference is not None), hosts=tuple(hosts),
    )


def read_events(host: HostModel) -> list[dict[str, Any]]:
    """``events.jsonl``: one event per line; a bad line is a ConfigError naming the line."""
    path = host.directory / "events.jsonl"
    if not path.exists():
        return []
    events = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"not JSON: {exc.msg}", path=str(path), line=number) from None
            if not isinstance(record, dict):
                raise ConfigError("expected a JSON object", path=str(path), line=number)
            for key, kind in (("log", str), ("id", int), ("time", str)):
                if not isinstance(record.get(key), kind):
                    raise ConfigError(f"field {key!r} missing or not {kind.__name__}", path=str(path), line=number, field=key)
            record["_time"] = parse_utc(record["time"], path=path, field_name=f"line {number}: time")
            events.append(record)
    return events


def to_host_spec(host: HostModel, fleet: FleetModel) -> LabHostSpec:
    users = {fleet.username: fleet.password}
    return LabHostSpec(name=host.name, address=host.address, fqdn=host.fqdn, http_port=host.http_port,
                       https_port=host.https_port, ssh_port=host.ssh_port, users=users, faults=host.faults.protocol,
                       endpoints=host.endpoints)
