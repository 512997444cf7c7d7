"""401.1 causes in the Kerberos setup: missing SPN, duplicate SPN, kernel-mode key mismatch, clock skew.

Kerberos with IIS works when the client's ticket for ``HTTP/<name the client used>`` is encrypted
with a key the server decrypts with: the machine account's by default (kernel-mode auth), the pool
account's when ``useAppPoolCredentials`` is on or kernel mode is off. So the rules need the names the
site is reached by, the pool identity, the SPN registrations (fleet-wide, for duplicates) and the
windowsAuthentication settings at the failing scope.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.diagnose import signals as S
from toolkit.diagnose.evidence import HostEvidence, LogGroup
from toolkit.diagnose.model import EvidenceItem, EvidenceSource, Finding, Fix
from toolkit.diagnose.rules.base import (
    RuleContext,
    any_of,
    config_item,
    deciding_items,
    event_evidence,
    make_finding,
    q,
)
from toolkit.diagnose.security import is_custom_account, is_domain_account
from toolkit.identity import computer_name_of, same_network_account
from toolkit.parsers.types import AppPool, EffectiveSettings


def spn_key(spn: str) -> str:
    """``HTTP/web01.contoso.com:80`` → ``http/web01.contoso.com`` (ports are compared loosely)."""
    text = spn.strip().lower()
    service, _, rest = text.partition("/")
    host = rest.split("/", 1)[0]
    if ":" in host:
        host = host.split(":", 1)[0]
    return f"{service}/{host}"


def host_names(host: HostEvidence, site: str | None = None) -> list[str]:
    """Names clients may use for this host/site: computer name, FQDN, binding host headers."""
    names: list[str] = []
    facts = host.facts or {}
    for key in ("computer_name", "fqdn"):
        if facts.get(key):
            names.append(str(facts[key]))
    if host.config is not None:
        for s in host.config.sites:
            if site is not None and s.name.lower() != site.lower():
                continue
            for b in s.bindings:
                if b.protocol.lower() in ("http", "https") and b.host_header:
                    names.append(b.host_header)
    if not names:
        names.append(host.name)
    return list(dict.fromkeys(n.lower() for n in names))


def wanted_spns(host: HostEvidence, site: str) -> list[str]:
    """HTTP SPNs clients ask for: the site's host-header names, else the computer's names."""
    headers = []
    if host.config is not None:
        headers = [b.host_header.lower() for s in host.config.sites if s.name.lower() == site.lower()
                   for b in s.bindings if b.protocol.lower() in ("http", "https") and b.host_header]
    names = list(dict.fromkeys(headers)) or host_names(host, site)
    return [f"http/{n}" for n in names]


def spn_text(key: str) -> str:
    """``http/web01.contoso.com`` → ``HTTP/web01.contoso.com``."""
    service, _, rest = key.partition("/")
    return f"{service.upper()}/{rest}"


def same_principal(host: HostEvidence, a: str, b: str) -> bool:
    """``a`` and ``b`` reach the domain as one account from ``host`` (``WEB01`` = ``CONTOSO\\WEB01$`` =
    ``IIS APPPOOL\\Shop`` seen from WEB01)."""
    return same_network_account(a, b, computer_name_of(host.facts, host.machine_account or host.name))


def spns_on(host: HostEvidence, account: str) -> list[str]:
    return sorted({spn_key(r.spn) for r in host.spns if same_principal(host, r.account, account)})


def _negotiate(settings: EffectiveSettings | None) -> bool:
    return bool(settings and settings.windows.enabled
                and any(p.lower().startswith("negotiate") for p in settings.windows.providers))


def wanted_held_by(ctx: RuleContext, account: str) -> list[str]:
    """The site's wanted SPNs that ``account`` holds: from the directory for every SPN it was asked about
    (it lists every holder), else from the setspn listings the host collected."""
    wanted = wanted_spns(ctx.host, ctx.site)
    directory = ctx.fleet.directory if ctx.fleet.has_directory else None
    held = set()
    for spn in wanted:
        holders = directory.spn_holders.get(spn) if directory is not None else None
        if holders is not None:
            if any(same_principal(ctx.host, h, account) for h in holders):
                held.add(spn)
        elif spn in spns_on(ctx.host, account):
            held.add(spn)
    return [s for s in wanted if s in held]


def _directory_items(ctx: RuleContext) -> list[EvidenceItem]:
    directory = ctx.fleet.directory if ctx.fleet.has_directory else None
    if directory is None:
        return []
    items = []
    for spn in wanted_spns(ctx.host, ctx.site):
        holders = directory.spn_holders.get(spn)
        if holders is not None:
            items.append(EvidenceItem("directory", ctx.host.name,
                                      f"{spn_text(spn)} is held by {', '.join(sorted(holders)) or 'no account'} "
                                      f"({directory.spn_scope or 'domain'})",
                                      EvidenceSource(file=directory.source(),
                                                     element=f"(servicePrincipalName={spn_text(spn)})")))
    return items


def _queried(host: HostEvidence, account: str) -> bool:
    return any(same_principal(host, a, account) for a, _ in host.spn_queries)


def _kerberos_groups(ctx: RuleContext) -> list[LogGroup]:
    """Groups a Kerberos cause may explain.

    SEC_E_LOGON_DENIED is also what a plain wrong password gives over NTLM/Negotiate: when 4625 records
    show named users failing a network logon with a bad password, those rows are people, not Kerberos.
    """
    users_mistyping = any(S.nt(f.reason) in S.NT_BAD_CREDENTIALS and f.target_user and f.logon_type == 3
                          for f in ctx.host.logon_failures)
    ambiguous = {S.SEC_E_LOGON_DENIED, S.SEC_E_UNKNOWN_CREDENTIALS} if users_mistyping else set()
    # A terminal SEC_E_NO_CREDENTIALS leg is also what a rejected Kerberos AP-REQ leaves; the diagnosis
    # lowers the confidence of a finding resting on such legs alone (the client may have given up).
    return [g for g in any_of(ctx.groups, S.KERBEROS_FAILURE | S.HANDSHAKE_CODES) if g.win32 not in ambiguous]


def _windows_items(ctx: RuleContext, settings: EffectiveSettings) -> list[EvidenceItem]:
    """windowsAuthentication's values, each citing the element that decided it (a location's
    useKernelMode may come from another file than the server's providers)."""
    w = settings.windows
    return deciding_items(ctx.host.name, settings, "windowsAuthentication", [
        ("windows.enabled", "enabled", w.enabled), ("windows.providers", "providers", ",".join(w.providers)),
        ("windows.use_kernel_mode", "useKernelMode", w.use_kernel_mode),
        ("windows.use_app_pool_credentials", "useAppPoolCredentials", w.use_app_pool_credentials)], w.source)


def _pool_item(ctx: RuleContext, pool: AppPool) -> EvidenceItem:
    return config_item(ctx.host.name, f"application pool {pool.name} identityType={pool.identity_type} "
                                      f"userName={pool.user_name or pool.identity}", pool.source)


def _spn_items(ctx: RuleContext, account: str) -> list[EvidenceItem]:
    items = []
    for r in ctx.host.spns:
        if same_principal(ctx.host, r.account, account):
            if r.spn.lower().startswith("http/"):
                items.append(EvidenceItem("spn", ctx.host.name, f"{r.spn} registered on {r.account} ({r.account_dn})",
                                          EvidenceSource(file=r.source.file if r.source else f"setspn -L {r.account}",
                                                         line=r.source.line if r.source else None)))
    return items


def _context(ctx: RuleContext) -> tuple[list[LogGroup], EffectiveSettings, AppPool | None] | None:
    groups = _kerberos_groups(ctx)
    if not groups:
        return None
    settings = ctx.settings(groups)
    if not _negotiate(settings):
        return None
    assert settings is not None
    return groups, settings, ctx.pool()


def kerberos_spn_duplicate(ctx: RuleContext) -> list[Finding]:
    """The HTTP SPN clients ask for is registered on more than one account (fleet-wide view)."""
    found = _context(ctx)
    if found is None:
        return []
    groups, settings, pool = found
    duplicates = {spn: owners for spn in wanted_spns(ctx.host, ctx.site)
                  if len(owners := ctx.fleet.spn_owners.get(spn, frozenset())) > 1}
    if not duplicates:
        return []
    spn, owners = sorted(duplicates.items())[0]
    # The account that should keep it: the pool account when it decrypts, else the machine account.
    keeper = (pool.user_name if is_custom_account(pool) and (settings.windows.use_app_pool_credentials
                                                             or not settings.windows.use_kernel_mode)
              else ctx.host.machine_account or "")
    remove = sorted(o for o in owners if not (keeper and same_principal(ctx.host, o, keeper)))
    evidence = _windows_items(ctx, settings) + ([_pool_item(ctx, pool)] if pool else [])
    evidence += [EvidenceItem("spn", ctx.host.name, f"{spn.upper().split('/')[0]}/{spn.split('/', 1)[1]} is "
                              f"registered on {len(owners)} accounts: {', '.join(sorted(owners))}")]
    evidence += _directory_items(ctx)
    target = remove[0] if remove else sorted(owners)[-1]
    explanation = (
        f"Clients ask the domain for a Kerberos ticket for {spn.upper().split('/')[0]}/{spn.split('/', 1)[1]}, "
        f"and that name is registered on {len(owners)} accounts ({', '.join(sorted(owners))}). The domain "
        f"controller may encrypt the ticket for any of them, so the server often cannot decrypt it "
        f"(KRB_AP_ERR_MODIFIED) and the logon fails with 401.1. An SPN must belong to exactly one account: "
        f"keep it on {keeper or 'the account that decrypts tickets for this site'} and remove it from the "
        f"other(s).")
    fix = Fix(f"setspn -D {spn.upper().split('/')[0]}/{spn.split('/', 1)[1]} {target}", shell="cmd",
              notes="Run `setspn -X` first to list every duplicate in the domain. iisfleet never runs this.")
    return [make_finding(ctx, cause="kerberos-spn-duplicate",
                         title=f"SPN {spn_text(spn)} is registered on {len(owners)} accounts", severity="high",
                         groups=groups, level="high", reason=f"fleet-wide SPN registrations list {spn_text(spn)} on "
                                              f"{len(owners)} accounts and Negotiate is enabled here",
                         evidence=evidence, explanation=explanation, fix=fix, uses=["spn", "config"])]


def kerberos_kernel_mode_mismatch(ctx: RuleContext) -> list[Finding]:
    """SPN on the custom pool account, but kernel-mode auth decrypts with the machine account."""
    found = _context(ctx)
    if found is None:
        return []
    groups, settings, pool = found
    if not is_custom_account(pool):
        return []
    assert pool is not None
    w = settings.windows
    if not w.use_kernel_mode or w.use_app_pool_credentials:
        return []
    on_pool = wanted_held_by(ctx, pool.user_name)
    if not on_pool:
        return []
    loc = ctx.location(settings.path)
    explanation = (
        f"The HTTP SPN for this site ({on_pool[0]}) is registered on the application pool account "
        f"{pool.user_name}, so clients get tickets encrypted with that account's key. But Windows "
        f"authentication runs in kernel mode without useAppPoolCredentials, which decrypts tickets with the "
        f"machine account's key instead. Decryption fails and Kerberos logons end in 401.1. Turn on "
        f"useAppPoolCredentials (or move the SPN to the machine account if the pool does not need its own).")
    fix = Fix(f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
              f"-section:system.webServer/security/authentication/windowsAuthentication "
              f"/useAppPoolCredentials:true /commit:apphost", notes="iisfleet never runs this.")
    evidence = _windows_items(ctx, settings) + [_pool_item(ctx, pool)] + _spn_items(ctx, pool.user_name) \
        + _directory_items(ctx)
    return [make_finding(ctx, cause="kerberos-kernel-mode-mismatch",
                         title=f"Kernel-mode auth cannot decrypt tickets for {pool.user_name}", severity="high",
                         groups=groups, level="high",
                         reason="SPN on the pool account, useKernelMode=true and useAppPoolCredentials=false",
                         evidence=evidence, explanation=explanation, fix=fix, uses=["spn", "config"],
                         scope=settings.path)]


def decrypting_account(ctx: RuleContext, settings: EffectiveSettings, pool: AppPool | None) -> str:
    """The account whose key decrypts this site's tickets: the custom pool account when
    useAppPoolCredentials is on or kernel mode is off, else the machine account (built-in pool
    identities reach the domain as the machine account either way)."""
    w = settings.windows
    return decrypting_identity(pool.user_name if pool is not None and is_custom_account(pool) else None,
                               use_kernel_mode=w.use_kernel_mode, use_app_pool_credentials=w.use_app_pool_credentials,
                               machine_account=ctx.host.machine_account or "")


def decrypting_identity(pool_account: str | None, *, use_kernel_mode: bool, use_app_pool_credentials: bool,
                        machine_account: str) -> str:
    """The one rule (also the lab's, toolkit/lab/scenarios/causes.py): a custom pool account decrypts when
    useAppPoolCredentials is on or kernel mode is off; otherwise the machine account does."""
    if pool_account and (use_app_pool_credentials or not use_kernel_mode):
        return pool_account
    return machine_account


SETSPN_LISTINGS = "setspn -L on the web servers"


def _holders(ctx: RuleContext, spn: str) -> tuple[frozenset[str], str]:
    """Accounts holding ``spn`` and where that was read: the directory when it was asked (it lists every
    holder), else the setspn listings the fleet's hosts collected."""
    directory = ctx.fleet.directory if ctx.fleet.has_directory else None
    if directory is not None and spn in directory.spn_holders:
        return directory.spn_holders[spn], directory.source()
    return ctx.fleet.spn_owners.get(spn, frozenset()), SETSPN_LISTINGS


def kerberos_spn_misplaced(ctx: RuleContext) -> list[Finding]:
    """The site's HTTP SPN is on exactly one account, and it is not the one that decrypts the tickets."""
    found = _context(ctx)
    if found is None:
        return []
    groups, settings, pool = found
    keeper = decrypting_account(ctx, settings, pool)
    if not keeper or (keeper != ctx.host.machine_account and not is_domain_account(keeper, ctx.host.facts)):
        return []  # a local pool account cannot hold an SPN: kerberos-spn-missing's and the logon rules' ground
    misplaced = []
    for spn in wanted_spns(ctx.host, ctx.site):
        holders, where = _holders(ctx, spn)
        if len(holders) == 1 and not same_principal(ctx.host, next(iter(holders)), keeper):
            misplaced.append((spn, next(iter(holders)), where))
    if not misplaced:
        return []
    spn, holder, where = misplaced[0]
    w = settings.windows
    mode = (f"useAppPoolCredentials={str(w.use_app_pool_credentials).lower()}, "
            f"useKernelMode={str(w.use_kernel_mode).lower()}")
    if keeper == ctx.host.machine_account:
        why = (f"the pool identity is {(pool.user_name or pool.identity_type) if pool else 'unknown'} and {mode}, "
               f"so the machine account {keeper} decrypts tickets")
    else:
        why = f"the application pool runs as {keeper} and {mode}, so that account's key decrypts tickets"
    explanation = (
        f"Clients ask the domain for a ticket for {spn_text(spn)}. That name is registered on exactly one "
        f"account, {holder} ({where}), so the domain controller encrypts the ticket with {holder}'s key. But "
        f"{why}. The server cannot decrypt the ticket (KRB_AP_ERR_MODIFIED) and Kerberos logons fail with 401.1, "
        f"or fall back to NTLM where that is allowed. Move the SPN: remove it from {holder} and register it on "
        f"{keeper}.")
    spns = ", ".join(spn_text(s) for s, _h, _w in misplaced)
    commands = [f"setspn -D {spn_text(s)} {h}" for s, h, _w in misplaced]
    commands += [f"setspn -S {spn_text(s)} {keeper}" for s, _h, _w in misplaced]
    fix = Fix(" && ".join(commands), shell="cmd",
              notes="Remove first: setspn -S refuses a name another account still holds. Clients keep cached "
                    "tickets until they expire (klist purge on a test client). iisfleet never runs this.")
    evidence = _windows_items(ctx, settings) + ([_pool_item(ctx, pool)] if pool else [])
    from_directory = all(w_ != SETSPN_LISTINGS for _s, _h, w_ in misplaced)
    evidence += [EvidenceItem("spn", ctx.host.name, f"{spn_text(s)} is registered only on {h} ({w_})")
                 for s, h, w_ in misplaced if w_ == SETSPN_LISTINGS]  # the directory's answer is cited below
    evidence += _spn_items(ctx, holder) + _directory_items(ctx)
    return [make_finding(ctx, cause="kerberos-spn-misplaced",
                         title=f"SPN {spn_text(spn)} is on {holder}, not on {keeper}", severity="high",
                         groups=groups, level="high" if from_directory else "medium",
                         reason=f"{spns} held only by {holder} ({where}); {keeper} decrypts ({mode})",
                         evidence=evidence, explanation=explanation, fix=fix, uses=["spn", "config"],
                         scope=settings.path)]


def kerberos_spn_missing(ctx: RuleContext) -> list[Finding]:
    """Negotiate with a custom domain pool identity and no HTTP SPN for the host name on that account."""
    found = _context(ctx)
    if found is None:
        return []
    groups, settings, pool = found
    if not is_custom_account(pool) or not is_domain_account(pool.user_name, ctx.host.facts):
        return []
    assert pool is not None
    wanted = wanted_spns(ctx.host, ctx.site)
    on_pool = wanted_held_by(ctx, pool.user_name)
    if on_pool:
        return []
    missing = []
    level, reason = "high", f"no {', '.join(spn_text(w) for w in wanted)} on {pool.user_name}"
    asked = ctx.fleet.has_directory and all(w in ctx.fleet.directory.spn_holders for w in wanted)
    if asked:
        reason += f" ({ctx.fleet.directory.source()})"
    elif not _queried(ctx.host, pool.user_name):
        missing.append(f"setspn -L was not run for {pool.user_name}")
        level, reason = "low", f"the SPNs of {pool.user_name} were not collected"
    name = wanted[-1].split("/", 1)[1] if wanted else ctx.host.name
    explanation = (
        f"Windows authentication offers Negotiate, and the application pool runs as the domain account "
        f"{pool.user_name}. No HTTP service principal name for {', '.join(w.split('/', 1)[1] for w in wanted)} is "
        f"registered on that account, so the tickets clients obtain (or fail to obtain) do not match the key "
        f"the site decrypts with, and Kerberos logons fail with 401.1 (or silently fall back to NTLM where "
        f"that is allowed). Register the SPNs on the pool account, and make sure useAppPoolCredentials is on.")
    fix = Fix(f"setspn -S HTTP/{name} {pool.user_name}", shell="cmd",
              notes=f"Register every name clients use (short name and FQDN). Then: appcmd set config "
                    f"{q(ctx.location(settings.path))} -section:system.webServer/security/authentication/"
                    f"windowsAuthentication /useAppPoolCredentials:true /commit:apphost. iisfleet never runs this.")
    evidence = _windows_items(ctx, settings) + [_pool_item(ctx, pool)] + _directory_items(ctx)
    evidence.append(EvidenceItem("spn", ctx.host.name,
                                 f"SPNs on {pool.user_name}: {', '.join(spns_on(ctx.host, pool.user_name)) or 'none'}"))
    return [make_finding(ctx, cause="kerberos-spn-missing", title=f"No HTTP SPN on {pool.user_name}",
                         severity="high", groups=groups, level=level, reason=reason, evidence=evidence,
                         explanation=explanation, fix=fix, uses=["spn", "config"], extra_missing=missing,
                         scope=settings.path)]


def clock_skew(ctx: RuleContext) -> list[Finding]:
    """The host clock is too far from the domain's for Kerberos (default tolerance 5 minutes)."""
    offset = ctx.fleet.clock_offsets.get(ctx.host.name)
    skewed = offset is not None and abs(offset) > ctx.fleet.max_skew_s
    groups = any_of(ctx.groups, S.TIME_SKEW)
    skew_events = ctx.failures(lambda f: S.nt(f.reason) in S.NT_TIME_SKEW or S.nt(f.status) in S.NT_TIME_SKEW)
    if skewed:
        groups += [g for g in any_of(ctx.groups, S.KERBEROS_FAILURE) if g not in groups]
    if not groups or not (skewed or skew_events or any(g.win32 in S.TIME_SKEW for g in groups)):
        return []
    evidence = event_evidence(ctx.host.name, skew_events)
    settings = ctx.settings(groups)
    if settings is not None:
        evidence += _windows_items(ctx, settings)
    facts = ctx.host.facts or {}
    if offset is not None:
        evidence.append(EvidenceItem("host", ctx.host.name, f"host clock {facts.get('utc_now', '?')} is "
                                     f"{offset:+.0f} s from the {ctx.fleet.clock_reference or 'reference'}"))
    level = "high" if skewed and any(g.win32 in S.TIME_SKEW for g in groups) else "medium"
    reason = ("sc-win32-status SEC_E_TIME_SKEW" if any(g.win32 in S.TIME_SKEW for g in groups)
              else "Kerberos failures on a host whose clock is off")
    if offset is not None:
        reason += f"; clock offset {offset:+.0f} s (tolerance {ctx.fleet.max_skew_s:.0f} s)"
    explanation = (
        "Kerberos tickets carry timestamps, and a server accepts them only when its clock is within the "
        "domain's tolerance (5 minutes by default). "
        + (f"This server's clock is {abs(offset):.0f} seconds {'ahead' if offset > 0 else 'behind'}, so "
           if offset is not None else "The logon failures report a time skew, so ")
        + "Kerberos logons fail with 401.1. Resynchronise the clock with the domain hierarchy and check "
          "why the time service drifted (a VM host clock, a blocked NTP port, a manual time source).")
    fix = Fix("w32tm /resync /rediscover; w32tm /query /status", notes="iisfleet never runs this.")
    return [make_finding(ctx, cause="clock-skew", title=f"Clock skew on {ctx.host.name}", severity="high",
                         groups=groups, level=level, reason=reason, evidence=evidence, explanation=explanation,
                         fix=fix, uses=["facts"])]


def _security_log(host: HostEvidence):
    for log in host.event_logs:
        if log.name.lower() == "security":
            return log
    return None


def security_log_full(ctx: RuleContext) -> list[Finding]:
    """A full Security log with CrashOnAuditFail: only administrators may log on, so IIS logons fail."""
    coaf = ctx.host.crash_on_audit_fail
    log = _security_log(ctx.host)
    full = bool(log and log.is_full)
    blocked = coaf == 2 or (coaf == 1 and full)
    full_events = [e for e in ctx.host.events if int(e.get("id") or 0) == 1104]
    if not blocked:
        return []
    groups = [g for g in ctx.groups if g.win32 not in S.HANDSHAKE_CODES]
    if not groups:
        return []
    evidence = [EvidenceItem("host", ctx.host.name,
                             f"CrashOnAuditFail={coaf} (HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa)")]
    if log is not None:
        evidence.append(EvidenceItem("event", ctx.host.name,
                                     f"Security log {log.file_size_bytes}/{log.max_size_bytes} bytes, "
                                     f"full={log.is_full}, retention={log.retention or '?'}"))
    for e in full_events[:2]:
        evidence.append(EvidenceItem("event", ctx.host.name, f"1104 The security log is now full ({e.get('time_utc')})",
                                     EvidenceSource(file=str(e.get("log") or "Security"),
                                                    record_id=e.get("record_id"))))
    explanation = (
        "The policy 'Audit: Shut down system immediately if unable to log security audits' (CrashOnAuditFail) "
        + ("has already fired: its value is 2, which means only administrators can log on until the Security "
           "log is cleared and the value is reset. " if coaf == 2 else
           "is on and the Security log is full with a retention that does not overwrite. ")
        + "IIS cannot log on IUSR, the anonymous account or any user, so requests fail with 401.1. Archive and "
          "clear the Security log, set CrashOnAuditFail back to 1, and give the log room (a larger size or "
          "overwrite as needed).")
    fix = Fix("wevtutil epl Security C:\\Windows\\Temp\\Security-backup.evtx; wevtutil cl Security; "
              "Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa -Name CrashOnAuditFail -Value 1",
              notes="Keep the exported log if audits matter. iisfleet never runs this.")
    return [make_finding(ctx, cause="security-log-full", title="Security log full: non-admin logons blocked",
                         severity="critical", groups=groups, level="high" if coaf == 2 or full_events else "medium",
                         reason=f"CrashOnAuditFail={coaf}" + ("; Security log is full" if full else ""),
                         evidence=evidence, explanation=explanation, fix=fix, uses=["events"])]


def kerberos_groups(groups: Sequence[LogGroup]) -> list[LogGroup]:
    return any_of(groups, S.KERBEROS_FAILURE)
