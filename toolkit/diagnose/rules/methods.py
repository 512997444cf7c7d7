"""401.2 causes: the URL requires authentication methods its clients do not (or cannot) complete.

The first round of every Windows-auth handshake is a 401.2 too; those are handshake rows and never
reach a rule. What is left is terminal: the client never came back with credentials that worked.
"""

from __future__ import annotations

from toolkit.diagnose.signals import BAD_CREDENTIALS
from toolkit.diagnose.model import EvidenceItem, EvidenceSource, Finding, Fix
from toolkit.diagnose.rules.base import RuleContext, config_item, deciding_items, make_finding, q
from toolkit.parsers.types import EffectiveSettings, FrebTrace

#: A single address carrying this many different authenticated users is an intermediary (proxy/NAT).
PROXY_MIN_USERS = 3
PROXY_MIN_SHARE = 0.5
PROXY_MIN_AGENTS = 3
#: At most this many terminal 401.2 rows, all from one client, are one abandoned prompt as much as a
#: method the clients cannot use (a user cancelling the credential dialog or closing the tab ends the
#: same way): such a finding is reported with low confidence.
LONE_CHALLENGE_MAX_ROWS = 2
SEC_E_NO_CREDENTIALS = 0x8009030E


def enabled_methods(settings: EffectiveSettings) -> list[str]:
    out = []
    if settings.anonymous.enabled:
        out.append("Anonymous")
    if settings.basic.enabled:
        out.append("Basic")
    if settings.digest.enabled:
        out.append("Digest")
    if settings.windows.enabled:
        out.append("Windows (" + ", ".join(settings.windows.providers) + ")")
    cc = settings.client_certificate
    if cc.iis_mapping_enabled:
        out.append("IIS client certificate mapping")
    if cc.ad_mapping_enabled:
        out.append("AD client certificate mapping")
    return out


#: FREB AuthType values (AUTH_START AuthTypeSupported is a bit mask of these)
FREB_AUTH_TYPES = {1: "anonymous", 2: "basic", 4: "windows", 16: "digest", 64: "passport", 128: "certificate"}
FREB_AUTH_NAMES = {"anonymous": "anonymous", "basic": "basic", "nt": "windows", "digest": "digest",
                   "passport": "passport", "mapclicert": "certificate", "certmap": "certificate"}


def freb_supported(traces: list[FrebTrace]) -> set[str]:
    """Authentication types IIS offered (AUTH_START AuthTypeSupported) in these traces."""
    out: set[str] = set()
    for t in traces:
        for e in t.events:
            if e.name != "AUTH_START":
                continue
            for key, value in e.data:
                if not key.startswith("AuthTypeSupported"):
                    continue
                text = value.strip().lower()
                if text.isdigit():
                    mask = int(text)
                    out |= {name for bit, name in FREB_AUTH_TYPES.items() if mask & bit}
                elif text in FREB_AUTH_NAMES:
                    out.add(FREB_AUTH_NAMES[text])
    return out


def _methods_items(ctx: RuleContext, settings: EffectiveSettings) -> list[EvidenceItem]:
    """Which methods are on at the scope, each switch citing the element that decided it."""
    methods = enabled_methods(settings)
    where = f"authentication at {ctx.site}{'' if settings.path == '/' else settings.path} " \
            f"({', '.join(methods) or 'no method enabled'}):"
    c = settings.client_certificate
    return deciding_items(ctx.host.name, settings, where, [
        ("anonymous.enabled", "anonymous", settings.anonymous.enabled),
        ("windows.enabled", "windows", settings.windows.enabled),
        ("windows.providers", "providers", ",".join(settings.windows.providers)),
        ("basic.enabled", "basic", settings.basic.enabled), ("digest.enabled", "digest", settings.digest.enabled),
        ("client_certificate.iis_mapping_enabled", "iisClientCertificateMapping", c.iis_mapping_enabled),
        ("client_certificate.ad_mapping_enabled", "clientCertificateMapping", c.ad_mapping_enabled)],
        settings.windows.source or settings.anonymous.source or settings.basic.source)


def freb_items(ctx: RuleContext, traces: list[FrebTrace], limit: int = 2) -> list[EvidenceItem]:
    items = []
    for t in traces[:limit]:
        requested = [dict(e.data).get("RequestAuthType", "") for e in t.events if e.name == "AUTH_REQUEST_AUTH_TYPE"]
        supported = [dict(e.data).get("AuthTypeSupported", "") for e in t.events if e.name == "AUTH_START"]
        module = t.failing_module
        items.append(EvidenceItem(
            "freb", ctx.host.name,
            f"{t.url} {t.status_code}.{t.substatus} authenticationType={t.authentication_type or '-'} "
            f"user={t.token_user_name or '-'}"
            + (f" supported={'/'.join(s for s in supported if s)}" if any(supported) else "")
            + (f" requested={'/'.join(r for r in requested if r)}" if any(requested) else "")
            + (f" module={module}" if module else ""),
            EvidenceSource(file=t.file)))
    return items


def client_certificate_mapping(ctx: RuleContext) -> list[Finding]:
    """Certificate mapping authentication is required and the clients' certificates do not map."""
    groups = ctx.groups if ctx.substatus == 2 else [g for g in ctx.groups if g.win32 in BAD_CREDENTIALS]
    if not groups:
        return []
    settings = ctx.settings(groups)
    if settings is None:
        return []
    cc = settings.client_certificate
    if not (cc.iis_mapping_enabled or cc.ad_mapping_enabled):
        return []
    traces = ctx.freb(2)
    certmap_seen = any(dict(e.data).get("RequestAuthType", "").lower() in ("certmap", "128")
                       for t in traces for e in t.events if e.name == "AUTH_REQUEST_AUTH_TYPE")
    kind = "IIS (one-to-one/many-to-one)" if cc.iis_mapping_enabled else "Active Directory"
    evidence = [config_item(ctx.host.name, f"{'iisClientCertificateMappingAuthentication' if cc.iis_mapping_enabled else 'clientCertificateMappingAuthentication'} "
                                           f"enabled; oneToOne={cc.one_to_one_mappings} manyToOne={cc.many_to_one_mappings} "
                                           f"sslFlags={cc.ssl_flags or '-'}", cc.source),
                *_methods_items(ctx, settings)] + freb_items(ctx, traces)
    missing = [] if traces else [ctx.freb_missing_reason() or "no Failed Request Trace"]
    level, reason = ("high", "certificate mapping is enabled at the scope and FREB shows the client presenting "
                             "a certificate that produced no user") if certmap_seen else \
                    ("medium", "certificate mapping is enabled at the scope and requests end in 401.2")
    section = ("iisClientCertificateMappingAuthentication" if cc.iis_mapping_enabled
               else "clientCertificateMappingAuthentication")
    explanation = (
        f"This URL authenticates clients by mapping their TLS client certificate to a Windows account "
        f"({kind} mapping). The failing clients either send no certificate or a certificate that matches no "
        f"mapping rule (for example a newly issued certificate from a different intermediate CA, or a "
        f"different certificate on the smart card), so no user is produced and IIS answers 401.2. Compare "
        f"the failing clients' certificate (issuer, subject) with the mapping rules and add or correct a rule.")
    fix = Fix(f"Get-WebConfiguration -PSPath 'MACHINE/WEBROOT/APPHOST' -Location {q(ctx.location(settings.path))} "
              f"-Filter 'system.webServer/security/authentication/{section}' | Format-List *",
              notes="Lists the mapping rules to compare with the failing clients' certificates; add a rule "
                    "for their issuer/subject. iisfleet never runs this.")
    # A mapped account whose logon then fails shows as 401.1 right after the 401.2: same cause, one
    # finding (reported under 401.2, the substatus of the mapping failure itself).
    return [make_finding(ctx, cause="client-certificate-mapping",
                         title="Client certificates do not map to an account", severity="medium",
                         groups=groups, level=level, reason=reason, evidence=evidence,
                         explanation=explanation, fix=fix, uses=["config"], extra_missing=missing,
                         scope=settings.path, substatus=2)]


def ntlm_through_proxy(ctx: RuleContext) -> list[Finding]:
    """Connection-based auth (NTLM) broken by an intermediary: many users behind one address."""
    if not ctx.groups:
        return []
    settings = ctx.settings(ctx.groups)
    if settings is None or not settings.windows.enabled:
        return []
    providers = [p.lower() for p in settings.windows.providers]
    if not any(p == "ntlm" or p.startswith("negotiate") for p in providers):
        return []
    clients: dict[str, int] = {}
    for g in ctx.groups:
        for ip, n in g.top_clients:
            clients[ip] = clients.get(ip, 0) + n
    terminal = sum(g.terminal for g in ctx.groups)
    rows = sum(clients.values())
    if not clients or not terminal:
        return []
    top_ip, top_n = sorted(clients.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    share = top_n / rows
    profile = ctx.host.log.clients.get(top_ip)
    users = sorted(profile.users) if profile else []
    agents = sorted(profile.user_agents) if profile else []
    # NTLM's challenge round (401.1 SEC_E_NO_CREDENTIALS) from the same address: the handshake started
    ntlm_round = any(g.site == ctx.site and g.substatus == 1 and g.win32 == SEC_E_NO_CREDENTIALS
                     and any(ip == top_ip for ip, _ in g.top_clients) for g in ctx.host.log.groups)
    many_users = len(users) >= PROXY_MIN_USERS
    many_agents = len(agents) >= PROXY_MIN_AGENTS
    if share < PROXY_MIN_SHARE or not (many_users or (many_agents and ntlm_round)):
        return []
    behind = (f"{len(users)} different authenticated users ({', '.join(users[:5])}{' ...' if len(users) > 5 else ''})"
              if many_users else f"{len(agents)} different browsers")
    evidence = [*_methods_items(ctx, settings),
                EvidenceItem("log", ctx.host.name, f"{top_n} of {rows} 401.2 rows come from {top_ip}, "
                                                   f"which carries {behind}"
                                                   + ("; the NTLM challenge round (401.1 SEC_E_NO_CREDENTIALS) "
                                                      "from it is followed by a fresh 401.2" if ntlm_round else ""),
                             rank=0)]
    explanation = (
        f"NTLM authenticates a TCP connection, not a request. {behind.split(' (')[0].capitalize()} reach this "
        f"site through the single address {top_ip}, which is a proxy, load balancer or other intermediary that "
        f"pools or re-multiplexes connections. Requests of an already authenticated client arrive on a "
        f"different, unauthenticated connection and get 401.2 that the client does not expect to answer. "
        f"Prefer Kerberos (Negotiate with working SPNs), configure the intermediary to keep client "
        f"connections pinned (or to pre-authenticate), or publish the site without the intermediary.")
    loc = ctx.location(settings.path)
    fix = Fix(f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
              f"-section:system.webServer/security/authentication/windowsAuthentication "
              f"/-\"providers.[value='NTLM']\" /commit:apphost",
              notes=f"Only after Kerberos works for these clients (otherwise they lose access). The lasting fix "
                    f"is on the intermediary at {top_ip}: connection pinning or pre-authentication. "
                    f"iisfleet never runs this.")
    return [make_finding(ctx, cause="ntlm-through-proxy",
                         title=f"NTLM broken by an intermediary at {top_ip}", severity="medium", groups=ctx.groups,
                         level="high" if share >= 0.8 else "medium",
                         reason=f"{share:.0%} of the 401.2 rows from one address carrying {behind.split(' (')[0]}; "
                                f"Windows auth with NTLM/Negotiate", evidence=evidence,
                         explanation=explanation, fix=fix, uses=["config", "w3c"], scope=settings.path)]


def auth_protocol_mismatch(ctx: RuleContext) -> list[Finding]:
    """The URL requires authentication methods its clients do not use (anonymous off, Windows-only...)."""
    if not ctx.groups:
        return []
    settings = ctx.settings(ctx.groups)
    if settings is None:
        return []
    methods = enabled_methods(settings)
    deny_anonymous = [r for r in settings.authorization if r.access_type.lower() == "deny" and "?" in r.users]
    traces = ctx.freb(2)
    offered = freb_supported(traces)
    # FREB records what IIS actually offered; it wins over a configuration we could only partly read
    freb_says_no_anonymous = bool(offered) and "anonymous" not in offered
    conflict = settings.anonymous.enabled and freb_says_no_anonymous
    if settings.anonymous.enabled and not deny_anonymous and not freb_says_no_anonymous:
        return []  # anonymous would have produced a user: something else is going on
    if conflict:
        methods = [m for m in methods if m != "Anonymous"] or [f"{m.capitalize()} (per FREB)" for m in sorted(offered)]
    evidence = _methods_items(ctx, settings) + freb_items(ctx, traces)
    if conflict:
        evidence.append(EvidenceItem("freb", ctx.host.name, f"IIS offered only {', '.join(sorted(offered))} "
                                     f"(AUTH_START), although the parsed configuration enables anonymous "
                                     f"authentication"))
        if "config-warnings" in ctx.host.missing:
            evidence.append(EvidenceItem("config", ctx.host.name, ctx.host.missing["config-warnings"][:300]))
    for rule in deny_anonymous[:1]:
        evidence.append(config_item(ctx.host.name, f"authorization deny users=\"{rule.users}\"", rule.source))
    required = [m for m in methods if m != "Anonymous"]
    named = sum(g.named_terminal for g in ctx.groups)
    level = "high" if (traces or named == 0) else "medium"
    if conflict:
        level = "medium"
    terminal = sum(g.terminal for g in ctx.groups)
    clients = {ip for g in ctx.groups for ip, _ in g.top_clients}
    lone = terminal <= LONE_CHALLENGE_MAX_ROWS and len(clients) <= 1
    if lone:
        level = "low"
    windows_only = settings.windows.enabled and not (settings.basic.enabled or settings.digest.enabled)
    explanation = (
        f"{ctx.site}{'' if settings.path == '/' else settings.path} does not let anonymous requests through "
        f"and requires {', '.join(required) or 'an authentication method that is not enabled at all'}. The "
        f"failing clients never answered the challenge with one of these methods, so IIS ends with 401.2 "
        f"(logon failed due to server configuration). "
        + ("With Windows authentication only, clients outside the domain or browsers not set up for "
           "integrated auth (non-intranet zone, non-Windows clients, API clients) cannot log on. " if windows_only
           else "")
        + "Either enable a method these clients support (for example Basic over HTTPS), or allow anonymous "
          "access where the content is public.")
    loc = ctx.location(settings.path)
    if not required:
        command = (f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
                   f"-section:system.webServer/security/authentication/anonymousAuthentication /enabled:true "
                   f"/commit:apphost")
    else:
        command = (f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
                   f"-section:system.webServer/security/authentication/basicAuthentication /enabled:true "
                   f"/commit:apphost")
    fix = Fix(command, notes="Enable Basic only over HTTPS; if the content is public, enable anonymous "
                             "authentication instead. iisfleet never runs this.")
    return [make_finding(ctx, cause="auth-protocol-mismatch",
                         title=f"Clients do not use the method {ctx.site}{'' if settings.path == '/' else settings.path} requires",
                         severity="medium", groups=ctx.groups, level=level,
                         reason=(f"anonymous {'denied' if deny_anonymous else 'disabled'}"
                                 + (" (per FREB; the parsed configuration disagrees)" if conflict else "")
                                 + f"; enabled: {', '.join(methods) or 'none'}; "
                                 + (f"only {terminal} unanswered challenge(s) from one client: an abandoned prompt "
                                    f"looks the same" if lone else "the clients never completed a challenge")),
                         evidence=evidence, explanation=explanation, fix=fix,
                         # when FREB settled what IIS offered, an unreadable config part no longer matters
                         uses=[] if conflict else ["config"], scope=settings.path)]
