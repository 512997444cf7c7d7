"""Plant one 401 cause on a host: the configuration, rights, ACLs, SPNs, events, FREB traces and the W3C
traffic that follow from it. Each planter returns the answer-key entries (docs/contracts.md §5).

Cause ids are the diagnosis catalog's (docs/contracts.md §4). A planter changes only what its cause
needs, so several site-scoped causes can share a host; the host-wide ones (``HOST_WIDE``) get a host
to themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toolkit.diagnose.rules.kerberos import decrypting_identity
from toolkit.lab.scenarios.hostgen import READ_EXECUTE, HostBuild, Pool, Site, VDir, content_sddl
from toolkit.lab.scenarios.traffic import BROWSERS, NON_DOMAIN_CLIENTS, NTLM_CONTINUE, USERS

SEC_E_LOGON_DENIED = 2148074252
SEC_E_TIME_SKEW = 2148074276
STATUS_LOGON_FAILURE_SIGNED_AS_UNSIGNED = 3221225581  # 0xC000006D as IIS logs it after cert-mapping logon failures
DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"


@dataclass
class Domain:
    """The simulated AD: accounts with SIDs and SPNs, written to fleet.yml."""

    name: str = "contoso.com"
    netbios: str = "CONTOSO"
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-case name -> {name, sid, members}
    next_rid: int = 1200

    def account(self, sam: str, **state: Any) -> dict[str, Any]:
        if sam.lower() not in self.accounts:
            self.accounts[sam.lower()] = {"sam": sam, "sid": f"{DOMAIN_SID}-{self.next_rid}", "enabled": True,
                                          "locked": False, "expired": False, "spns": []}
            self.next_rid += 1
        record = self.accounts[sam.lower()]
        # Several hosts may plant on one shared account (a farm's pool identity): SPNs accumulate,
        # they never replace what another host registered.
        for spn in state.pop("spns", []):
            if spn not in record["spns"]:
                record["spns"].append(spn)
        record.update(state)
        return record

    def group(self, name: str, members: list[str]) -> dict[str, Any]:
        """A domain group (members: account or group names; nesting is how a right reaches an account)."""
        if name.lower() not in self.groups:
            self.groups[name.lower()] = {"name": name, "sid": f"{DOMAIN_SID}-{self.next_rid}", "members": []}
            self.next_rid += 1
        record = self.groups[name.lower()]
        record["members"] += [m for m in members if m not in record["members"]]
        return record

    def computer(self, build: HostBuild) -> dict[str, Any]:
        short, fqdn = build.computer, build.fqdn
        return self.account(f"{short}$", type="computer", spns=[
            f"WSMAN/{fqdn}", f"WSMAN/{short}", f"TERMSRV/{fqdn}", f"TERMSRV/{short}", f"RestrictedKrbHost/{short}",
            f"HOST/{short}", f"RestrictedKrbHost/{fqdn}", f"HOST/{fqdn}"])


@dataclass(frozen=True)
class Ticket:
    """What became of one client's Kerberos logon to a site: ``accepted``, ``rejected`` (the KDC issued a
    ticket the site could not decrypt) or ``refused`` (the KDC issued none); ``detail`` says why."""

    result: str
    detail: str


def planned_ticket(domain: Domain, spn: str, account: str) -> Ticket:
    """The outcome predicted from the domain section, as a KDC and IIS decide it: no holder, or more than one,
    and the KDC issues no ticket; one holder, and the ticket carries its key, which only that account
    decrypts. ``toolkit.lab.addc.tickets`` replays the same attempts against a real KDC (tests/lab_dc
    checks both agree)."""
    holders = sorted(a["sam"] for a in domain.accounts.values() if spn.lower() in {s.lower() for s in a["spns"]})
    if not holders:
        return Ticket("refused", f"no account holds {spn}: KDC_ERR_S_PRINCIPAL_UNKNOWN")
    if len(holders) > 1:
        return Ticket("refused", f"{spn} is held by {', '.join(holders)}: the KDC refuses a duplicate")
    if holders[0].lower() != account.lower():
        return Ticket("rejected", f"the ticket is encrypted with {holders[0]}'s key and {account} decrypts: "
                                  f"KRB_AP_ERR_MODIFIED")
    return Ticket("accepted", f"{account} holds {spn} and decrypts")


TicketOracle = Callable[[Domain, str, str], Ticket]


def recorded_tickets(outcomes: list[dict[str, str]]) -> TicketOracle:
    """An oracle answering from real exchanges (``toolkit.lab.addc.tickets.exchange``'s rows)."""
    known = {(o["spn"].lower(), o["account"].lower()): Ticket(o["result"], o["detail"]) for o in outcomes}

    def oracle(domain: Domain, spn: str, account: str) -> Ticket:
        found = known.get((spn.lower(), account.lower()))
        if found is None:  # an attempt the live replay was not asked for: the fleet changed between passes
            raise KeyError(f"no real Kerberos exchange recorded for {spn} decrypted by {account}")
        return found
    return oracle


@dataclass
class PlantContext:
    domain: Domain
    others: list[HostBuild]  # the fleet's other hosts (for fleet-wide causes such as duplicate SPNs)
    notes: dict[str, Any] = field(default_factory=dict)
    tickets: TicketOracle = planned_ticket


Entry = dict[str, str]
Planter = Callable[[HostBuild, PlantContext], list[Entry]]


def entry(cause: str, site: Site | str, substatus: str) -> Entry:
    return {"cause": cause, "site": site if isinstance(site, str) else site.name, "substatus": substatus}


def _local_identity_site(build: HostBuild, name: str, user: str, **state: Any) -> tuple[Site, dict[str, Any]]:
    record = build.add_user(user, **state)
    site = build.add_site(name, anonymous_user=f"{build.computer}\\{user}")
    return site, record


def _failures_with_events(build: HostBuild, site: Site, *, sub: int, win32: int, user: str, domain: str, status: str,
                          substatus: str, reason: str, logon_type: int = 8,
                          package: str = "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", count: int = 24) -> None:
    """Anonymous-identity logon failures: every refused request is one failed LogonUser → one 4625."""
    traffic = build.traffic[site.id]
    for request in traffic.terminal(count, site.pages, 401, sub, win32):
        build.logon_failure(request.when, user=user, domain=domain, status=status, substatus=substatus,
                            logon_type=logon_type, package=package, reason=reason)


def anonymous_credentials_invalid(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    # the account exists, but its password was changed after IIS stored the old one
    changed = (build.end - dt.timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    site, _ = _local_identity_site(build, "Catalog", "webanon", password_last_set=changed)
    build.traffic[site.id].anonymous_ok(10)  # before the change nothing failed; some cached pages still serve
    _failures_with_events(build, site, sub=1, win32=1326, user="webanon", domain=build.computer,
                          status="0xC000006D", substatus="0xC000006A", reason="%%2313")
    return [entry("anonymous-credentials-invalid", site, "401.1")]


def logon_right_denied(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """Host-wide: IUSR is in Guests and Guests are denied network logon, so every anonymous request fails."""
    site = build.sites[0]  # Default Web Site, anonymous as IUSR
    build.rights["SeDenyNetworkLogonRight"] = ["*S-1-5-32-546"]
    build.add_member("Guests", "NT AUTHORITY\\IUSR", "S-1-5-17")
    traffic = build.traffic[site.id]
    traffic.requests = [r for r in traffic.requests if r.status != 200 or r.user != "-"]
    for request in traffic.terminal(30, site.pages, 401, 1, 1385):
        build.logon_failure(request.when, user="IUSR", domain="NT AUTHORITY", status="0xC000015B", substatus="0x0",
                            logon_type=3, reason="%%2308", package="Negotiate")
    return [entry("logon-right-denied", site, "401.1")]


def _domain_identity_site(build: HostBuild, ctx: PlantContext, name: str, user: str, **state: Any) -> Site:
    """A site whose anonymous identity is a domain account in ``state`` (the domain section, so the lab DC
    holds it in that state too)."""
    ctx.domain.account(user, **state)
    return build.add_site(name, anonymous_user=f"{build.netbios}\\{user}")


def logon_right_denied_nested(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """A kiosk site whose anonymous identity is a domain account; the host denies network logon to a domain
    group that reaches the account through two levels of nesting. Only the domain knows the nesting: without
    a directory the host's own export cannot explain the 1385s (low confidence); with one, tokenGroups does."""
    deny = ctx.domain.group("WebDenyNetworkLogon", ["Contractors"])
    ctx.domain.group("Contractors", ["KioskAccounts"])
    ctx.domain.group("KioskAccounts", ["svc_kiosk"])
    site = _domain_identity_site(build, ctx, "Kiosk", "svc_kiosk")
    build.rights.setdefault("SeDenyNetworkLogonRight", []).append(f"*{deny['sid']}")
    _failures_with_events(build, site, sub=1, win32=1385, user="svc_kiosk", domain=build.netbios,
                          status="0xC000015B", substatus="0x0", reason="%%2308")
    return [entry("logon-right-denied", site, "401.1")]


def account_locked_out(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    # a personal domain account someone typed in as the anonymous identity, now locked out in the domain
    site = _domain_identity_site(build, ctx, "Timesheets", "jsmith", locked=True)
    _failures_with_events(build, site, sub=1, win32=1909, user="jsmith", domain=build.netbios,
                          status="0xC0000234", substatus="0x0", reason="%%2307")
    return [entry("account-locked-out", site, "401.1")]


def account_disabled_or_expired(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    # a domain service account that was disabled while a site still logs on with it
    site = _domain_identity_site(build, ctx, "Reports", "svc_reports", enabled=False)
    _failures_with_events(build, site, sub=1, win32=1331, user="svc_reports", domain=build.netbios,
                          status="0xC000006E", substatus="0xC0000072", reason="%%2310")
    return [entry("account-disabled-or-expired", site, "401.1")]


def _kerberos_site(build: HostBuild, ctx: PlantContext, label: str, account: str, **options: Any) -> tuple[Site, str]:
    host_name = f"{label}-{build.name}.{build.domain}"
    title = label.upper() if len(label) <= 2 else label.capitalize()
    pool = f"{title}Pool"
    build.pools.append(Pool(pool, "SpecificUser", f"{build.netbios}\\{account}"))
    site = build.add_site(title, pool=pool, host_header=host_name, anonymous=False, windows=True, **options)
    sid = ctx.domain.account(account)["sid"]
    build.add_member("IIS_IUSRS", f"{build.netbios}\\{account}", sid)
    build.acls[site.physical] = content_sddl(extra=[sid])
    return site, host_name


def kerberos_logons(build: HostBuild, ctx: PlantContext, site: Site, *, spn: str, count: int) -> Ticket:
    """Domain users' Windows-auth visits to ``site``, written as the Kerberos outcome decides them.

    The account that decrypts is the one rule's (``decrypting_identity``); the outcome comes from
    ``ctx.tickets`` (predicted from the domain section, or recorded from a real KDC). Accepted: Kerberos
    logons succeed. Rejected: the challenge round, then 401.1 SEC_E_LOGON_DENIED (the server could not decrypt
    the ticket). Refused: the client has no ticket; with NTLM offered it falls back and gets in, with
    Negotiate:Kerberos only its logon ends in the same 401.1.
    """
    pool = next(p for p in build.pools if p.name == site.pool)
    custom = pool.user.split("\\")[-1] if pool.identity == "SpecificUser" and pool.user else None
    account = decrypting_identity(custom, use_kernel_mode=site.kernel_mode,
                                  use_app_pool_credentials=site.app_pool_credentials,
                                  machine_account=f"{build.computer}$")
    ticket = ctx.tickets(ctx.domain, spn, account)
    ctx.notes.setdefault("kerberos", []).append({"host": build.name, "site": site.name, "spn": spn,
                                                 "account": account, "result": ticket.result,
                                                 "detail": ticket.detail})
    traffic = build.traffic[site.id]
    ntlm_offered = any(p.lower() in ("negotiate", "ntlm") for p in site.providers)
    if ticket.result == "accepted":
        traffic.windows_ok(count, site.pages, ntlm_share=0.0)
    elif ticket.result == "refused" and ntlm_offered:
        traffic.windows_ok(count, site.pages, ntlm_share=1.0)
    else:
        traffic.terminal(count, site.pages, 401, 1, SEC_E_LOGON_DENIED, challenge_first=True)
    return ticket


def _failed(ticket: Ticket, found: Entry) -> list[Entry]:
    """The answer-key entry, when the Kerberos outcome left failures to find."""
    return [found] if ticket.result != "accepted" else []


def kerberos_spn_missing(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    # pool account set up for Kerberos (useAppPoolCredentials) but nobody registered HTTP/<name> on it;
    # Kerberos-only provider, so there is no NTLM fallback
    site, host_name = _kerberos_site(build, ctx, "portal", "svc_portal", providers=("Negotiate:Kerberos",),
                                     app_pool_credentials=True)
    ticket = kerberos_logons(build, ctx, site, spn=f"HTTP/{host_name}", count=20)
    return _failed(ticket, entry("kerberos-spn-missing", site, "401.1"))


def kerberos_kernel_mode_mismatch(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    # SPN correctly on the pool account, but kernel-mode auth decrypts with the machine key
    site, host_name = _kerberos_site(build, ctx, "hr", "svc_hr")
    ctx.domain.account("svc_hr", spns=[f"HTTP/{host_name}", f"HTTP/{host_name.split('.')[0]}"])
    ticket = kerberos_logons(build, ctx, site, spn=f"HTTP/{host_name}", count=22)
    return _failed(ticket, entry("kerberos-kernel-mode-mismatch", site, "401.1"))


def kerberos_spn_duplicate(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    # the pool account holds HTTP/<name>, and so does another host's computer account (a leftover). A KDC
    # refuses a ticket for a name two accounts hold (KDC_ERR_S_PRINCIPAL_UNKNOWN, KDC event 11 on Windows;
    # Samba likewise), so clients fall back to NTLM where they can: this site offers Kerberos only.
    site, host_name = _kerberos_site(build, ctx, "wiki", "svc_wiki", providers=("Negotiate:Kerberos",),
                                     app_pool_credentials=True)
    spn = f"HTTP/{host_name}"
    ctx.domain.account("svc_wiki", spns=[spn, f"HTTP/{host_name.split('.')[0]}"])
    holder = ctx.others[0] if ctx.others else build
    ctx.domain.computer(holder)["spns"].append(spn)
    ctx.notes.setdefault("spn_duplicates", []).append(
        {"spn": spn, "accounts": sorted([f"{build.netbios}\\svc_wiki", f"{build.netbios}\\{holder.computer}$"])})
    ticket = kerberos_logons(build, ctx, site, spn=spn, count=18)
    return _failed(ticket, entry("kerberos-spn-duplicate", site, "401.1"))


def security_log_full(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """Host-wide: the Security log filled (retain), CrashOnAuditFail went to 2: only admins may log on."""
    site = build.sites[0]
    full_at = build.end - dt.timedelta(hours=7)
    security = build.event_logs[0]
    security.update(is_full=True, retention="Retain", file_size_bytes=security["max_size_bytes"], record_count=211874)
    build.registry["HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\CrashOnAuditFail"] = 2
    build.event("Security", 1104, "Microsoft-Windows-Eventlog", full_at, {})
    for traffic in build.traffic.values():  # nothing non-admin succeeds after the log filled
        traffic.requests = [r for r in traffic.requests if r.when < full_at]
    traffic = build.traffic[site.id]
    saved = traffic.start
    traffic.start = full_at + dt.timedelta(minutes=1)
    traffic.terminal(30, site.pages, 401, 1, 1327)
    traffic.start = saved
    return [entry("security-log-full", site, "401.1")]


def clock_skew(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """The host clock is 11 minutes ahead of the domain: Kerberos tickets are refused; NTLM still works."""
    build.clock_offset_s = 660.0
    site = next(s for s in build.sites if s.windows)
    traffic = build.traffic[site.id]
    traffic.requests.clear()  # every Kerberos logon fails; only NTLM clients still get in
    traffic.windows_ok(8, site.pages, ntlm_share=1.0)
    for request in traffic.terminal(20, site.pages, 401, 1, SEC_E_TIME_SKEW, challenge_first=True):
        build.logon_failure(request.when, user="", domain="", status="0xC000006D", substatus="0xC0000133",
                            logon_type=3, package="Kerberos", process="-", ip=request.client_ip,
                            logon_process="Kerberos", reason="%%2304")
    return [entry("clock-skew", site, "401.1")]


def user_credentials_rejected(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """Basic-auth extranet: most users log on; some type bad passwords or unknown names. Not a server fault."""
    site = build.add_site("Extranet", anonymous=False, basic=True, https=True, host_header=f"extranet-{build.name}.{build.domain}")
    traffic = build.traffic[site.id]
    for _ in range(25):
        ip, agent = traffic.client("10.50")
        when = traffic.random_time()
        uri = traffic.rng.choice(site.pages)
        traffic.add(when, uri, "-", ip, agent, 401, 2, 5)
        traffic.add(when + dt.timedelta(seconds=4), uri, f"{build.netbios}\\{traffic.rng.choice(USERS)}", ip, agent, 200, 0, 0)
    typos = ("alcie", "b0b", "admin", "test")
    for request in traffic.terminal(16, site.pages, 401, 1, 1326, user=tuple(f"{build.netbios}\\{u}" for u in USERS[:6] + typos),
                                    challenge_first=True, network="10.60"):
        if request.substatus != 1:
            continue
        name = request.user.split("\\", 1)[1]
        unknown = name in typos
        build.logon_failure(request.when, user=name, domain=build.netbios, status="0xC000006D",
                            substatus="0xC0000064" if unknown else "0xC000006A", logon_type=8,
                            package="MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", reason="%%2313")
    return [entry("user-credentials-rejected", site, "401.1")]


def auth_protocol_mismatch(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """Anonymous switched off in web.config; Windows auth only; partners' non-domain clients never answer."""
    site = build.add_site("Partners", anonymous=False, windows=True, auth_in_web_config=True, freb_status="401.2",
                          host_header=f"partners-{build.name}.{build.domain}")
    traffic = build.traffic[site.id]
    traffic.windows_ok(12, site.pages)
    refused = traffic.terminal(18, site.pages, 401, 2, 5, agents=NON_DOMAIN_CLIENTS, network="198.51.100", retries=1)
    for request in refused[:3]:
        build.freb(site, request, sub="401.2", module="IIS Web Core", notification="AUTHENTICATE_REQUEST",
                   error_code="Access is denied.\r\n (0x80070005)", auth_type="none", token_user="",
                   auth_supported=((4, "NT"),))
    return [entry("auth-protocol-mismatch", site, "401.2")]


def ntlm_through_proxy(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """NTLM only; a branch office reaches the site through one proxy address that does not keep the
    client connection pinned to the server connection, so the third NTLM leg arrives without context."""
    site = build.add_site("Helpdesk", anonymous=False, windows=True, providers=("NTLM",),
                          host_header=f"helpdesk-{build.name}.{build.domain}")
    traffic = build.traffic[site.id]
    traffic.windows_ok(12, site.pages, ntlm_share=1.0)
    proxy = "10.40.0.5"
    for _ in range(20):
        when = traffic.random_time()
        agent = traffic.rng.choice(BROWSERS)
        uri = traffic.rng.choice(site.pages)
        traffic.add(when, uri, "-", proxy, agent, 401, 2, 5)
        traffic.add(when, uri, "-", proxy, agent, 401, 1, NTLM_CONTINUE)
        traffic.add(when + dt.timedelta(seconds=1), uri, "-", proxy, agent, 401, 2, 5)
    return [entry("ntlm-through-proxy", site, "401.2")]


def client_certificate_mapping(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """Certificate mapping required; users with certificates from a newer issuing CA do not map."""
    build.add_user("cardholders")
    site = build.add_site("SecurePortal", anonymous=False, cert_mapping=True, https=True, freb_status="401.2",
                          ssl_flags="Ssl, SslNegotiateCert, SslRequireCert", host_header=f"secure-{build.name}.{build.domain}")
    traffic = build.traffic[site.id]
    for _ in range(12):
        ip, agent = traffic.client()
        traffic.add(traffic.random_time(), traffic.rng.choice(site.pages), f"{build.computer}\\cardholders", ip, agent, 200, 0, 0)
    refused = traffic.terminal(16, site.pages, 401, 2, 5, network="10.70", retries=0)
    for request in refused[::3]:
        traffic.add(request.when + dt.timedelta(seconds=1), request.uri, "-", request.client_ip, request.agent,
                    401, 1, STATUS_LOGON_FAILURE_SIGNED_AS_UNSIGNED)
    for request in refused[:3]:
        build.freb(site, request, sub="401.2", module="IIS Web Core", notification="AUTHENTICATE_REQUEST",
                   error_code="Access is denied.\r\n (0x80070005)", auth_type="certmap", token_user="",
                   auth_supported=((128, "MapCliCert"),))
    return [entry("client-certificate-mapping", site, "401.2")]


def content_acl_denied(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """A /reports folder whose ACL was tightened to a reviewers group: IUSR cannot read it."""
    site = build.add_site("Docs", freb_status="401.3")
    physical = "D:\\data\\reports"
    site.vdirs.append(VDir("/reports", physical))
    group_sid = f"{build.machine_sid}-1090"
    build.groups["ReportReviewers"] = {"sid": group_sid, "members": []}
    build.acls[physical] = f"O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;{READ_EXECUTE};;;{group_sid})"
    build.files[physical + "\\q3.html"] = "<html><body>Q3</body></html>\n"
    traffic = build.traffic[site.id]
    traffic.anonymous_ok(40, site.pages)
    refused = traffic.terminal(20, ("/reports/", "/reports/q3.html"), 401, 3, 5)
    for request in refused[:3]:
        build.freb(site, request, sub="401.3", module="StaticFileModule", notification="EXECUTE_REQUEST_HANDLER",
                   error_code="Access is denied.\r\n (0x80070005)")
    return [entry("content-acl-denied", site, "401.3")]


def _custom_identity(build: HostBuild, ctx: PlantContext, account: str) -> str:
    sid = ctx.domain.account(account)["sid"]
    if "WebContentAccounts" not in build.groups:
        build.groups["WebContentAccounts"] = {"sid": f"{build.machine_sid}-1091", "members": []}
    build.add_member("WebContentAccounts", f"{build.netbios}\\{account}", sid)
    return sid


def anonymous_identity_vs_pool_identity(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """Custom pool identity owns the content; anonymous still runs as IUSR, which is not granted."""
    sid = _custom_identity(build, ctx, "svc_shop")
    build.pools.append(Pool("ShopPool", "SpecificUser", f"{build.netbios}\\svc_shop"))
    site = build.add_site("Shop", pool="ShopPool", freb_status="401.3")
    build.acls[site.physical] = f"O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;{READ_EXECUTE};;;{sid})"
    traffic = build.traffic[site.id]
    refused = traffic.terminal(26, site.pages, 401, 3, 5)
    for request in refused[:3]:
        build.freb(site, request, sub="401.3", module="StaticFileModule", notification="EXECUTE_REQUEST_HANDLER",
                   error_code="Access is denied.\r\n (0x80070005)")
    return [entry("anonymous-identity-vs-pool-identity", site, "401.3")]


def unc_share_acl_mismatch(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    """UNC vdir with connect-as: NTFS grants the account, the share grants only Domain Admins."""
    sid = _custom_identity(build, ctx, "svc_content")
    site = build.add_site("Library", freb_status="401.3")
    unc = "\\\\fs01\\archive\\library"
    site.vdirs.append(VDir("/archive", unc, f"{build.netbios}\\svc_content"))
    build.acls[unc] = f"O:BAG:DUD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;{READ_EXECUTE};;;{sid})"
    build.shares["\\\\fs01\\archive"] = f"O:BAG:DUD:(A;;FA;;;{DOMAIN_SID}-512)"
    traffic = build.traffic[site.id]
    traffic.anonymous_ok(30, site.pages)
    refused = traffic.terminal(18, ("/archive/", "/archive/index.html"), 401, 3, 5)
    for request in refused[:2]:
        build.freb(site, request, sub="401.3", module="StaticFileModule", notification="EXECUTE_REQUEST_HANDLER",
                   error_code="Access is denied.\r\n (0x80070005)")
    return [entry("unc-share-acl-mismatch", site, "401.3")]


def isapi_filter_denied(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    dll = "C:\\Program Files\\Acme\\SSO\\acmesso_filter.dll"
    site = build.add_site("Legacy", isapi_filters=(("AcmeSSOFilter", dll),), freb_status="401.4")
    build.files[dll] = "MZ (placeholder for a native ISAPI filter)\n"
    traffic = build.traffic[site.id]
    traffic.anonymous_ok(30, site.pages)
    refused = traffic.terminal(20, ("/secure/", "/secure/orders.html"), 401, 4, 0)
    for request in refused[:3]:
        build.freb(site, request, sub="401.4", module="IsapiFilterModule", notification="AUTHENTICATE_REQUEST",
                   error_code="The operation completed successfully.\r\n (0x0)")
    return [entry("isapi-filter-denied", site, "401.4")]


def isapi_extension_denied(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    dll = "C:\\Program Files\\Acme\\Gate\\gatekeeper.dll"
    site = build.add_site("Gateway", isapi_handlers=(("AcmeGateKeeper", "*.gk", dll),), freb_status="401.5")
    build.files[dll] = "MZ (placeholder for a native ISAPI extension)\n"
    traffic = build.traffic[site.id]
    traffic.anonymous_ok(30, site.pages)
    refused = traffic.terminal(20, ("/app/login.gk", "/app/orders.gk"), 401, 5, 0)
    for request in refused[:3]:
        build.freb(site, request, sub="401.5", module="IsapiModule", notification="EXECUTE_REQUEST_HANDLER",
                   error_code="The operation completed successfully.\r\n (0x0)")
    return [entry("isapi-extension-denied", site, "401.5")]


def ip_restriction(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    site = build.add_site("Api", ip_deny=(("203.0.113.0", "255.255.255.0"),), host_header=f"api-{build.name}.{build.domain}")
    traffic = build.traffic[site.id]
    traffic.anonymous_ok(40, ("/api/v1/status", "/api/v1/items"))
    traffic.terminal(24, ("/api/v1/items", "/api/v1/orders"), 401, 503, 0, network="203.0.113", agents=("python-requests/2.32.3",))
    return [entry("ip-restriction", site, "401.503")]


def _https_site(build: HostBuild, name: str) -> Site:
    """An anonymous HTTPS site (SNI) with ordinary traffic; its certificate is what the planter makes of it."""
    site = build.add_site(name, https=True, host_header=f"{name.lower()}-{build.name}.{build.domain}")
    build.traffic[site.id].anonymous_ok(30, site.pages)
    return site


def certificate_expired(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    site = _https_site(build, "Billing")
    build.certificate(site, valid_days=-6, age_days=365)
    return [entry("certificate-expired", site, "host")]


def certificate_expiring(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    site = _https_site(build, "Payments")
    build.certificate(site, valid_days=10)
    return [entry("certificate-expiring", site, "host")]


def certificate_name_mismatch(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    site = _https_site(build, "Events")
    # the certificate of the company's main site, bound here by mistake: its wildcard covers one label only
    build.certificate(site, dns_names=(f"www.{build.domain}", f"*.www.{build.domain}"))
    return [entry("certificate-name-mismatch", site, "host")]


def certificate_missing(build: HostBuild, ctx: PlantContext) -> list[Entry]:
    site = _https_site(build, "Archive")
    build.certificate(site, in_store=False)  # renewed and the old one deleted, the binding never updated
    return [entry("certificate-missing", site, "host")]


PLANTERS: dict[str, Planter] = {
    "anonymous-credentials-invalid": anonymous_credentials_invalid,
    "logon-right-denied": logon_right_denied,
    "account-locked-out": account_locked_out,
    "account-disabled-or-expired": account_disabled_or_expired,
    "kerberos-spn-missing": kerberos_spn_missing,
    "kerberos-spn-duplicate": kerberos_spn_duplicate,
    "kerberos-kernel-mode-mismatch": kerberos_kernel_mode_mismatch,
    "security-log-full": security_log_full,
    "clock-skew": clock_skew,
    "user-credentials-rejected": user_credentials_rejected,
    "auth-protocol-mismatch": auth_protocol_mismatch,
    "ntlm-through-proxy": ntlm_through_proxy,
    "client-certificate-mapping": client_certificate_mapping,
    "content-acl-denied": content_acl_denied,
    "anonymous-identity-vs-pool-identity": anonymous_identity_vs_pool_identity,
    "unc-share-acl-mismatch": unc_share_acl_mismatch,
    "isapi-filter-denied": isapi_filter_denied,
    "isapi-extension-denied": isapi_extension_denied,
    "ip-restriction": ip_restriction,
    "certificate-expired": certificate_expired,
    "certificate-expiring": certificate_expiring,
    "certificate-name-mismatch": certificate_name_mismatch,
    "certificate-missing": certificate_missing,
}

#: causes that change the whole host (every site on it would fail): one per host, never packed
HOST_WIDE = ("logon-right-denied", "security-log-full", "clock-skew")
