"""Ask the domain controllers what the fleet's evidence needs, and keep the questions and answers.

:func:`needs_from_hosts` reads collected host evidence and lists what only the directory can answer:
the HTTP SPNs clients will ask for (every name a site is reached by, short and FQDN, with and without a
non-default port), the domain accounts IIS runs or logs on as (pool identities on the network,
anonymous and connect-as users, accounts in 4625 records), and the domain SIDs in content ACLs.
:func:`collect` asks one DC (the first of ``dcs`` that answers) and returns the ``iisfleet.directory/1``
document written to ``directory.json`` in the run directory: every query (which DC, base, scope,
filter, attributes, the entries returned, or the error) and the facts derived from them. No secret is
ever part of it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit.directory.accounts import STATE_ATTRIBUTES, AccountState
from toolkit.directory.config import DirectoryConfig
from toolkit.directory.ldap import DirectoryError, Entry, LdapSession, open_session
from toolkit.identity import account_key, computer_name_of, is_domain_account, network_account

SCHEMA = "iisfleet.directory/1"
MAX_ENTRIES_KEPT = 200  # per query, in the transcript
BATCH = 40  # values per OR filter

Opener = Callable[[DirectoryConfig, str, Any, bool], LdapSession]


@dataclass
class DirectoryNeeds:
    spns: set[str] = field(default_factory=set)  # "HTTP/name" and "HTTP/name:port", as clients ask
    accounts: set[str] = field(default_factory=set)  # domain accounts as written (DOMAIN\\sam, sam@dom, sam$)
    sids: set[str] = field(default_factory=set)


def escape_filter_value(value: str) -> str:
    """RFC 4515 escaping for a value inside a search filter."""
    out = []
    for ch in value:
        if ch in "\\*()\0":
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _or(attribute: str, values: Iterable[str]) -> str:
    parts = [f"({attribute}={escape_filter_value(v)})" for v in values]
    return parts[0] if len(parts) == 1 else "(|" + "".join(parts) + ")"


def needs_from_hosts(hosts: Mapping[str, Any]) -> DirectoryNeeds:
    """What the directory must answer for these hosts (``HostEvidence`` by name)."""
    from toolkit.diagnose.rules.kerberos import host_names

    needs = DirectoryNeeds()
    for name, host in hosts.items():
        computer = computer_name_of(host.facts, host.machine_account or name)
        machine = host.machine_account or (computer.upper() + "$" if computer else "")
        if machine:
            needs.accounts.add(machine)
        sites = host.config.sites if host.config is not None else ()
        for site in sites:
            ports = {port for b in site.bindings if b.protocol.lower() in ("http", "https")
                     and (port := _binding_port(b.binding_information)) not in (None, 80, 443)}
            for host_name in host_names(host, site.name):
                needs.spns.add(f"HTTP/{host_name}")
                for port in ports:
                    needs.spns.add(f"HTTP/{host_name}:{port}")
        for short_or_fqdn in host_names(host):
            needs.spns.add(f"HTTP/{short_or_fqdn}")
        identities: list[str] = []
        if host.config is not None:
            identities += [p.user_name or p.identity for p in host.config.app_pools]
            identities += [e.anonymous.user_name for e in host.config.effective if e.anonymous.user_name]
            for site in host.config.sites:
                for app in site.applications:
                    identities += [v.user_name for v in app.virtual_directories if v.user_name]
        identities += [f"{f.target_domain}\\{f.target_user}" if f.target_domain and f.target_domain != "-"
                       else f.target_user for f in host.logon_failures if f.target_user]
        for identity in identities:
            account = network_account(identity, computer)
            if account and (is_domain_account(account, host.facts) or account.endswith("$")):
                needs.accounts.add(account)
        for content in host.content:
            for sd in (content.sd, content.share_sd):
                for ace in (sd.dacl if sd is not None else ()):
                    if ace.trustee_sid.upper().startswith("S-1-5-21-"):
                        needs.sids.add(ace.trustee_sid.upper())
    return needs


def _binding_port(information: str) -> int | None:
    """``*:8080:host`` / ``[::1]:8080:`` → 8080 (the host header cannot hold a colon; an IPv6 address can)."""
    parts = information.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


class _Transcript:
    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []

    def run(self, session: LdapSession, base: str, ldap_filter: str, attributes: Sequence[str],
            scope: str = "subtree", purpose: str = "") -> list[Entry]:
        started = time.monotonic()
        record: dict[str, Any] = {"dc": f"{session.dc}:{session.port}", "purpose": purpose, "base": base,
                                  "scope": scope, "filter": ldap_filter, "attributes": list(attributes)}
        try:
            entries = session.search(base, ldap_filter, attributes, scope)
        except DirectoryError as exc:
            record.update(error={"category": exc.kind, "message": str(exc)},
                          elapsed_ms=round((time.monotonic() - started) * 1000, 1))
            self.queries.append(record)
            raise
        record.update(count=len(entries), elapsed_ms=round((time.monotonic() - started) * 1000, 1),
                      entries=[{"dn": e.dn, "attributes": e.attributes} for e in entries[:MAX_ENTRIES_KEPT]])
        self.queries.append(record)
        return entries


def _connect(config: DirectoryConfig, credential: Any, opener: Opener, errors: list[dict[str, Any]],
             global_catalog: bool = False) -> LdapSession | None:
    for dc in config.dcs:
        try:
            return opener(config, dc, credential, global_catalog)
        except DirectoryError as exc:
            errors.append({"dc": dc, "global_catalog": global_catalog, "category": exc.kind, "message": str(exc)})
    return None


def _account_filter(account: str) -> str:
    key = account_key(account)
    if "@" in account and not key.name.endswith("$"):
        return f"(|(userPrincipalName={escape_filter_value(account.strip())})" \
               f"(sAMAccountName={escape_filter_value(key.name)}))"
    return f"(sAMAccountName={escape_filter_value(key.name)})"


def _state(entry: Entry) -> AccountState:
    classes = {str(c).lower() for c in entry.all("objectClass")}
    pwd = entry.first("pwdLastSet")
    return AccountState(sam=str(entry.first("sAMAccountName", "")), dn=entry.dn, sid=str(entry.first("objectSid", "")),
                        uac=int(entry.first("userAccountControl", 0) or 0),
                        computed=int(entry.first("msDS-User-Account-Control-Computed", 0) or 0),
                        lockout_time=int(entry.first("lockoutTime", 0) or 0),
                        account_expires=int(entry.first("accountExpires", 0) or 0),
                        pwd_last_set=int(pwd) if isinstance(pwd, int) else None,
                        bad_pwd_count=int(entry.first("badPwdCount", 0) or 0),
                        enctypes=entry.first("msDS-SupportedEncryptionTypes"),
                        is_computer="computer" in classes)


def collect(config: DirectoryConfig, credential: Any, needs: DirectoryNeeds, *,
            opener: Opener | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Query the directory; never raises for directory failures (they are recorded in ``errors``)."""
    opener = opener or (lambda c, dc, cred, gc: open_session(c, dc, cred, global_catalog=gc))
    now = now or dt.datetime.now(dt.timezone.utc)
    transcript = _Transcript()
    errors: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"schema": SCHEMA, "configured": True, "config": config.describe(),
                           "queried_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "dc": None, "base_dn": "",
                           "netbios": "", "errors": errors, "queries": transcript.queries,
                           "spn_holders": {}, "accounts": {}, "token_groups": {}, "sids": {},
                           "spn_scope": "", "wanted": {"spns": sorted(needs.spns), "accounts": sorted(needs.accounts),
                                                       "sids": sorted(needs.sids)}}
    session = _connect(config, credential, opener, errors)
    if session is None:
        return doc
    doc["dc"] = f"{session.dc}:{session.port}"
    try:
        base = config.base_dn
        if not base:
            root = transcript.run(session, "", "(objectClass=*)", ["defaultNamingContext", "dnsHostName"], "base",
                                  "rootDSE: the domain's naming context")
            base = str(root[0].first("defaultNamingContext", "")) if root else ""
        doc["base_dn"] = base
        _spns(config, credential, opener, session, transcript, base, needs, doc, errors)
        _accounts(session, transcript, base, needs, doc, now)
        _sids(session, transcript, base, needs, doc)
    except DirectoryError as exc:
        errors.append({"dc": session.dc, "category": exc.kind, "message": str(exc)})
    finally:
        session.close()
    return doc


def _spns(config: DirectoryConfig, credential: Any, opener: Opener, session: LdapSession,
          transcript: _Transcript, base: str, needs: DirectoryNeeds, doc: dict[str, Any],
          errors: list[dict[str, Any]]) -> None:
    """Every account holding each wanted SPN: forest-wide through the global catalog when it answers."""
    wanted = sorted(needs.spns, key=str.lower)
    if not wanted:
        return
    search, search_base, scope = session, base, "domain"
    gc = _connect(config, credential, opener, errors, global_catalog=True) if config.global_catalog else None
    if gc is not None:
        search, search_base, scope = gc, "", "forest (global catalog)"
    doc["spn_scope"] = scope
    holders: dict[str, list[dict[str, str]]] = {s: [] for s in wanted}
    lower = {s.lower(): s for s in wanted}
    try:
        for i in range(0, len(wanted), BATCH):
            chunk = wanted[i:i + BATCH]
            entries = transcript.run(search, search_base, _or("servicePrincipalName", chunk),
                                     ["sAMAccountName", "objectSid", "servicePrincipalName", "objectClass"],
                                     purpose=f"accounts holding HTTP SPNs ({scope})")
            for entry in entries:
                who = {"sam": str(entry.first("sAMAccountName", "")), "dn": entry.dn,
                       "sid": str(entry.first("objectSid", ""))}
                for spn in entry.all("servicePrincipalName"):
                    key = str(spn).lower()
                    if key in lower and who not in holders[lower[key]]:
                        holders[lower[key]].append(who)
    finally:
        if gc is not None:
            gc.close()
    doc["spn_holders"] = {spn: sorted(h, key=lambda w: w["dn"].lower()) for spn, h in holders.items()}


def _accounts(session: LdapSession, transcript: _Transcript, base: str, needs: DirectoryNeeds,
              doc: dict[str, Any], now: dt.datetime) -> None:
    accounts: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    for account in sorted(needs.accounts, key=str.lower):
        entries = transcript.run(session, base, _account_filter(account), list(STATE_ATTRIBUTES),
                                 purpose=f"account state of {account}")
        if not entries:
            accounts[account] = None
            continue
        state = _state(entries[0])
        accounts[account] = state.to_dict()
        token = transcript.run(session, entries[0].dn, "(objectClass=*)", ["tokenGroups"], "base",
                               purpose=f"groups of {account}, nested (tokenGroups)")
        groups[account] = sorted({str(s) for s in (token[0].all("tokenGroups") if token else [])})
        needs.sids |= set(groups[account])
    doc["accounts"] = accounts
    doc["token_groups"] = groups


def _sids(session: LdapSession, transcript: _Transcript, base: str, needs: DirectoryNeeds,
          doc: dict[str, Any]) -> None:
    names: dict[str, str] = {}
    netbios = ""
    wanted = sorted({s.upper() for s in needs.sids if s.upper().startswith("S-1-5-")})
    for i in range(0, len(wanted), BATCH):
        chunk = wanted[i:i + BATCH]
        for entry in transcript.run(session, base, _or("objectSid", chunk), ["sAMAccountName", "objectSid"],
                                    purpose="SID to name"):
            names[str(entry.first("objectSid", "")).upper()] = str(entry.first("sAMAccountName", ""))
    if wanted and base:
        # The domain's NetBIOS name, to write names as DOMAIN\\sam.
        try:
            for entry in transcript.run(session, f"CN=Partitions,CN=Configuration,{base}",
                                        f"(&(objectClass=crossRef)(nCName={escape_filter_value(base)}))",
                                        ["nETBIOSName"], purpose="the domain's NetBIOS name"):
                netbios = str(entry.first("nETBIOSName", "") or "")
        except DirectoryError:
            netbios = ""
    doc["netbios"] = netbios
    doc["sids"] = {sid: _qualified(sid, name, netbios) for sid, name in sorted(names.items())}


def _qualified(sid: str, name: str, netbios: str) -> str:
    if sid.startswith("S-1-5-32-"):
        return f"BUILTIN\\{name}"
    return f"{netbios}\\{name}" if netbios else name
