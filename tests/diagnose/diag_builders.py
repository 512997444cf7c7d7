"""Small builders for diagnosis tests: typed evidence without envelopes, and a YAML case format.

A case file (tests/fixtures/diagnose/cases/*.yml) describes one or more hosts in a few lines and
the causes the diagnosis must (``expect``) and must not (``reject``) report; admins can add cases
without writing Python. See ``host_from_spec`` for the fields.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolkit.diagnose.evidence import ClientProfile, ContentPath, HostEvidence, LogGroup, LogSample, LogView
from toolkit.parsers.certificates import parse_ssl_bindings, parse_utc
from toolkit.parsers.freb import parse_freb
from toolkit.parsers.sddl import parse_sddl
from toolkit.parsers.types import (
    AnonymousAuth,
    AppPool,
    Application,
    AuthorizationRule,
    BasicAuth,
    Binding,
    ClientCertificateAuth,
    EffectiveSettings,
    EventLogState,
    HandlerMapping,
    IisConfig,
    IpRule,
    IpSecurity,
    IsapiFilter,
    LogonFailure,
    Principal,
    Site,
    Source,
    SpnRecord,
    VirtualDirectory,
    WindowsAuth,
)

#: ``freb:`` entries of a case name trace files here (real FREB layout; add your own next to them)
FREB_FIXTURES = Path(__file__).parents[1] / "fixtures" / "parsers" / "freb"
APPHOST = "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"
POOL_SID_PREFIX = "S-1-5-82-"


def group(site: str, sub: int, win32: int, terminal: int, *, handshake: int = 0,
          users: Mapping[str, int] | None = None, clients: Mapping[str, int] | None = None,
          uris: Mapping[str, int] | None = None, site_id: int = 1) -> LogGroup:
    users = dict(users or {})
    clients = dict(clients or {"10.0.0.5": terminal})
    uris = dict(uris or {"/index.html": terminal})
    named = sum(users.values())
    top_users = sorted(users.items()) + ([("-", terminal - named)] if terminal > named else [])
    user_list = [u for u, n in users.items() for _ in range(n)] + ["-"] * max(terminal - named, 0)
    uri = next(iter(uris))
    samples = tuple(LogSample(source=f"C:\\inetpub\\logs\\LogFiles\\W3SVC{site_id}\\u_ex261124.log", line=10 + i,
                              time=f"2026-11-24 10:00:{i:02d}", c_ip=next(iter(clients)), user=user_list[i],
                              uri=uri, user_agent="Mozilla/5.0")
                    for i in range(min(terminal, 5)))
    return LogGroup(site=site, substatus=sub, win32=win32, count=terminal + handshake, terminal=terminal,
                    handshake=handshake, samples=samples, top_users=tuple(top_users),
                    top_clients=tuple(clients.items()), top_uris=tuple(uris.items()))


def settings(site: str, path: str = "/", **kw: Any) -> EffectiveSettings:
    src = Source(APPHOST, 120, f'location[@path="{site}"]')
    anonymous = kw.pop("anonymous", {})
    windows = kw.pop("windows", {})
    basic = kw.pop("basic", {})
    cert = kw.pop("client_certificate", {})
    ip = kw.pop("ip_security", {})
    filters = kw.pop("isapi_filters", [])
    handlers = kw.pop("handlers", [])
    authorization = kw.pop("authorization", [])
    assert not kw, kw
    ip_rules = tuple(IpRule(allowed=bool(r.get("allowed", False)), ip_address=r.get("ip", ""))
                     for r in ip.pop("rules", []))
    return EffectiveSettings(
        site=site, path=path,
        anonymous=AnonymousAuth(source=src, **anonymous),
        windows=WindowsAuth(source=src, **{k: tuple(v) if k == "providers" else v for k, v in windows.items()}),
        basic=BasicAuth(source=src, **basic),
        client_certificate=ClientCertificateAuth(source=src, **cert),
        ip_security=IpSecurity(source=src, rules=ip_rules, **ip),
        isapi_filters=tuple(IsapiFilter(name=f["name"], path=f.get("path", f"C:\\filters\\{f['name']}.dll"),
                                        scope=f.get("scope", "global"), source=src) for f in filters),
        handlers=tuple(HandlerMapping(name=h["name"], path=h["path"], modules=h.get("modules", "IsapiModule"),
                                      script_processor=h.get("script_processor", ""), source=src) for h in handlers),
        authorization=tuple(AuthorizationRule(access_type=r["access"], users=r.get("users", ""), source=src)
                            for r in authorization),
    )


def app_pool_sid(pool: str) -> str:
    """``IIS APPPOOL\\<pool>``'s virtual-account SID: SHA-1 of the lower-case name (UTF-16LE)."""
    digest = hashlib.sha1(pool.lower().encode("utf-16-le")).digest()
    return "S-1-5-82-" + "-".join(str(part) for part in struct.unpack("<5I", digest))


def _sddl(text: str) -> str:
    """``{pool:ShopPool}`` in a case's SDDL → that pool's virtual-account SID."""
    return re.sub(r"\{pool:([^}]+)\}", lambda m: app_pool_sid(m.group(1)), text)


def host_from_spec(name: str, spec: Mapping[str, Any]) -> HostEvidence:
    """Build a HostEvidence from a compact mapping.

    Fields: ``facts`` (mapping), ``sites`` (list: name, id, pool, host_header or bindings (list: protocol,
    info as in applicationHost.config, ``*:443:shop.contoso.com``), physical, anonymous, windows,
    basic, client_certificate, ip_security, isapi_filters, handlers, authorization, paths (extra
    scopes: mapping path → same keys), vdirs (list: path, physical, user)), ``pools`` (list: name,
    identity_type, user_name, auto_start), ``log`` (list: site, sub, win32, terminal, handshake, users, clients,
    uris), ``clients`` (ip → list of users), ``failures`` (4625: user, domain, status, sub_status,
    logon_type), ``rights`` (right → list of principal names or SIDs), ``groups`` (name, sid,
    members: [name]), ``users`` (local account records), ``acl`` (list: site, url, physical, sddl,
    unc, share_sddl), ``spns`` (account → list of SPNs), ``machine_account``, ``event_logs``,
    ``crash_on_audit_fail``, ``events`` (raw), ``missing`` (key → reason), ``requests`` (site → n),
    ``freb`` (trace files under tests/fixtures/parsers/freb/, matched to sites by their siteId),
    ``ssl_bindings`` (Get-IisCertificate's ``data.ssl_bindings`` as the collector writes it; site bindings take
    ``ssl_flags`` and ``line``).
    """
    sites, effective, pools = [], [], []
    for i, s in enumerate(spec.get("sites", [])):
        site_name = s["name"]
        site_id = s.get("id", i + 1)
        pool = s.get("pool", f"{site_name}Pool")
        vdirs = tuple(VirtualDirectory(site=site_name, application_path="/", path=v["path"],
                                       physical_path=v["physical"], user_name=v.get("user", ""))
                      for v in s.get("vdirs", []))
        root_vdir = VirtualDirectory(site=site_name, application_path="/", path="/",
                                     physical_path=s.get("physical", f"C:\\inetpub\\{site_name}"))
        bindings = tuple(Binding(b.get("protocol", "http"), b["info"], ssl_flags=b.get("ssl_flags", 0),
                                 source=Source(APPHOST, b.get("line", 150 + 10 * i + j), f'site[@name="{site_name}"]/bindings'))
                         for j, b in enumerate(s["bindings"])) if "bindings" in s \
            else (Binding("http", f"*:80:{s.get('host_header', '')}"),)
        sites.append(Site(id=site_id, name=site_name, bindings=bindings,
                          applications=(Application(site_name, "/", pool, (root_vdir,) + vdirs),),
                          freb_enabled=s.get("freb_enabled", False)))
        keys = ("anonymous", "windows", "basic", "client_certificate", "ip_security", "isapi_filters", "handlers",
                "authorization")
        effective.append(settings(site_name, "/", **{k: s[k] for k in keys if k in s}))
        for path, extra in (s.get("paths") or {}).items():
            effective.append(settings(site_name, path, **{k: extra[k] for k in keys if k in extra}))
    for p in spec.get("pools", []):
        pools.append(AppPool(name=p["name"], identity_type=p.get("identity_type", "ApplicationPoolIdentity"),
                             user_name=p.get("user_name", ""), source=Source(APPHOST, 40),
                             auto_start=p.get("auto_start", True)))
    for s in sites:  # pools the spec did not list get the default identity
        for app in s.applications:
            if not any(p.name == app.app_pool for p in pools):
                pools.append(AppPool(name=app.app_pool))
    config = IisConfig(sites=tuple(sites), app_pools=tuple(pools), effective=tuple(effective)) \
        if spec.get("sites") is not None else None
    groups = tuple(group(g["site"], g["sub"], g["win32"], g["terminal"], handshake=g.get("handshake", 0),
                         users=g.get("users"), clients=g.get("clients"), uris=g.get("uris"))
                   for g in spec.get("log", []))
    requests = dict(spec.get("requests") or {})
    for g in groups:
        requests.setdefault(g.site, 1000)
    clients = {ip: ClientProfile(ip, frozenset(users), frozenset({"Mozilla/5.0"}), len(users))
               for ip, users in (spec.get("clients") or {}).items()}
    log = LogView(groups=groups, requests_by_site=requests, clients=clients)
    failures = tuple(LogonFailure(time_utc="2026-11-24T10:00:00Z", record_id=1000 + i,
                                  target_user=f["user"], target_domain=f.get("domain", ""),
                                  status=f.get("status", "0xC000006D"), status_name="",
                                  sub_status=f.get("sub_status", "0x0"), sub_status_name="",
                                  logon_type=f.get("logon_type", 8))
                     for i, f in enumerate(spec.get("failures", [])))
    rights = None
    if "rights" in spec:
        rights = {right: tuple(Principal(sid=p if p.startswith("S-1-") else None,
                                         name=None if p.startswith("S-1-") else p) for p in holders)
                  for right, holders in spec["rights"].items()}
    local_groups = tuple({"name": g["name"], "sid": g["sid"],
                          "members": [m if isinstance(m, dict) else
                                      {"name": m, "sid": "S-1-5-17" if m.upper() == "IUSR" else ""}
                                      for m in g.get("members", [])]} for g in spec.get("groups", []))
    content = tuple(ContentPath(site=a["site"], application_path="/", virtual_path=a.get("url", "/"),
                                physical_path=a["physical"], expanded_path=a["physical"], exists=True,
                                is_unc=a.get("unc", False), sd=parse_sddl(_sddl(a["sddl"])) if a.get("sddl") else None,
                                share_name=a.get("share_name", ""),
                                share_sd=parse_sddl(_sddl(a["share_sddl"])) if a.get("share_sddl") else None)
                    for a in spec.get("acl", []))
    spns = tuple(SpnRecord(account=acct, account_dn=f"CN={acct.split(chr(92))[-1]},CN=Users,DC=contoso,DC=com",
                           spn=spn, source=Source(f"setspn -L {acct}", i + 2))
                 for acct, names in (spec.get("spns") or {}).items() for i, spn in enumerate(names))
    spn_queries = tuple((acct, "app-pool" if not acct.endswith("$") else "machine")
                        for acct in (spec.get("spns") or {}))
    event_logs = tuple(EventLogState(name=e["name"], max_size_bytes=e.get("max", 20971520),
                                     file_size_bytes=e.get("size", 1052672), is_full=e.get("is_full", False),
                                     retention=e.get("retention", "overwrite"))
                       for e in spec.get("event_logs", []))
    facts = spec.get("facts", {"computer_name": name.upper(), "fqdn": f"{name}.contoso.com",
                               "utc_now": "2026-11-24T12:00:00Z", "domain_joined": True})
    freb = tuple(parse_freb((FREB_FIXTURES / f).read_bytes(), f"C:\\inetpub\\logs\\FailedReqLogFiles\\{f}")
                 for f in spec.get("freb", []))
    return HostEvidence(name=name, status=spec.get("status", "ok"), facts=facts, config=config, log=log, freb=freb,
                        content=content, rights=rights, groups=local_groups, users=tuple(spec.get("users", [])),
                        machine_account=spec.get("machine_account", f"{name.upper()}$"),
                        spn_queries=spn_queries, spns=spns, logon_failures=failures,
                        events=tuple(spec.get("events", [])), event_logs=event_logs,
                        crash_on_audit_fail=spec.get("crash_on_audit_fail"),
                        ssl_bindings=parse_ssl_bindings({"ssl_bindings": spec.get("ssl_bindings") or []}),
                        ssl_collected="ssl_bindings" in spec, ssl_time=parse_utc(facts.get("utc_now")),
                        missing=dict(spec.get("missing") or {}))


def causes_by_host(findings: Sequence[Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        for h in f.hosts:
            out.setdefault(h, set()).add(f.cause)
    return out
