"""401.4 / 401.5 / 401.501-504: something other than IIS authentication refused the request.

401.4 comes from an ISAPI filter, 401.5 from an ISAPI extension or CGI (the handler mapped to the
URL's extension, or a wildcard mapping in front of it), 401.501-504 from (dynamic) IP restrictions
whose ``denyAction`` is ``Unauthorized``. IIS cannot say why a filter or extension refused: the
finding names the component so the admin knows whom to ask.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import ntpath

from toolkit.diagnose.model import EvidenceItem, EvidenceSource, Finding, Fix
from toolkit.diagnose.rules.base import RuleContext, config_item, deciding_items, make_finding, q
from toolkit.diagnose.rules.methods import freb_items
from toolkit.parsers.freb import refusing_filter
from toolkit.parsers.types import HandlerMapping, IpRule, IsapiFilter


def _filter_named(filters: list[IsapiFilter], freb_name: str) -> IsapiFilter | None:
    """The configured filter a trace's FilterName (a DLL path, or a name) refers to."""
    wanted = freb_name.strip().lower()
    base = ntpath.basename(wanted)
    for f in filters:
        path = f.path.lower()
        if wanted in (f.name.lower(), path) or (base and base == ntpath.basename(path)):
            return f
    return None


def isapi_filter_denied(ctx: RuleContext) -> list[Finding]:
    """An ISAPI filter answered 401.4: the trace's FILTER_START/FILTER_END events say which one was running
    when the status was set; without a trace, the filters loaded for the site are named."""
    if not ctx.groups:
        return []
    settings = ctx.settings(ctx.groups)
    filters = [f for f in (settings.isapi_filters if settings else ()) if f.enabled]
    if settings is None and ctx.host.config is not None:
        filters = [f for f in ctx.host.config.global_isapi_filters if f.enabled]
    traces = ctx.freb(4)
    verdicts = [(t, v) for t in traces if (v := refusing_filter(t)) is not None]
    evidence = [config_item(ctx.host.name, f"ISAPI filter {f.name} ({f.scope}): {f.path}", f.source) for f in filters]
    evidence += freb_items(ctx, traces)
    for trace, verdict in verdicts[:3]:
        how = "was running when the 401.4 was set" if verdict.running else "was the last filter to run before the 401.4"
        evidence.append(EvidenceItem("freb", ctx.host.name,
                                     f"FILTER_START {verdict.name} {how} (filters in the trace: "
                                     f"{', '.join(verdict.started)})",
                                     EvidenceSource(file=trace.file, line=verdict.start.line, element="FILTER_START")))

    def label(name: str) -> str:
        configured = _filter_named(filters, name)
        return configured.name if configured is not None else ntpath.basename(name) or name

    running = sorted({label(v.name) for _t, v in verdicts if v.running})
    last_only = sorted({label(v.name) for _t, v in verdicts if not v.running})
    names = ", ".join(f.name for f in filters) or "none found in the configuration"
    missing = [] if traces else [ctx.freb_missing_reason() or "no Failed Request Trace"]
    if traces and not verdicts:
        missing.append("the Failed Request Traces show no FILTER_START event (trace the ISAPI filter area)")
    culprits: list[str] = []
    if len(running) == 1:
        culprits = running
        level, reason = "high", f"the Failed Request Trace shows {running[0]} running when the 401.4 was set"
    elif running:
        culprits = running
        level, reason = "medium", f"traces show different filters running at the 401.4: {', '.join(running)}"
    elif last_only:
        culprits = last_only
        level, reason = "medium", (f"the trace shows {', '.join(last_only)} as the last filter to run before the "
                                   f"401.4; a filter that ran earlier is not ruled out")
    elif len(filters) == 1:
        level, reason = "high", f"the configuration loads one ISAPI filter for the site: {filters[0].name}"
    elif filters:
        level, reason = "medium", f"{len(filters)} ISAPI filters are loaded and nothing collected says which refused"
    else:
        level, reason = "low", "401.4 means an ISAPI filter refused, but no filter was found in the configuration"
    refusing = ", ".join(culprits)
    explanation = (
        f"401.4 means an ISAPI filter looked at the request and refused it itself. IIS has no say in why. "
        + (f"The Failed Request Trace names {refusing} as the filter that refused. " if culprits else "")
        + f"The filters loaded for {ctx.site} are: {names}. The reason lies in the filter's own rules or "
        f"configuration (often a single sign-on, URL scanning or custom authentication product): check its "
        f"logs and documentation, or disable it to confirm it is the one.")
    first = culprits[0] if culprits else (filters[0].name if filters else "<filter name>")
    fix = Fix(f"& $env:windir\\system32\\inetsrv\\appcmd.exe list config {q(ctx.site)} "
              f"-section:system.webServer/isapiFilters",
              notes=f"To confirm, disable the filter on a test server: appcmd set config {q(ctx.site)} "
                    f"-section:system.webServer/isapiFilters /[name='{first}'].enabled:false. "
                    f"iisfleet never runs this.")
    return [make_finding(ctx, cause="isapi-filter-denied",
                         title=f"ISAPI filter {refusing} refused requests" if culprits
                         else f"ISAPI filter refused requests ({names})",
                         severity="medium", groups=ctx.groups, level=level, reason=reason, evidence=evidence,
                         explanation=explanation, fix=fix, uses=["config"], extra_missing=missing)]


def handler_for(handlers: tuple[HandlerMapping, ...], url: str) -> tuple[HandlerMapping | None, HandlerMapping | None]:
    """(wildcard ISAPI/CGI mapping in scope, the handler that matches the URL's file name)."""
    name = url.rsplit("/", 1)[-1].lower() or url.lower()
    wildcard = None
    specific = None
    for h in handlers:
        if h.is_wildcard and any(m in h.modules for m in ("IsapiModule", "CgiModule")):
            wildcard = wildcard or h
            continue
        if h.path != "*" and fnmatch.fnmatch(name, h.path.lower()):
            specific = specific or h
    return wildcard, specific


def isapi_extension_denied(ctx: RuleContext) -> list[Finding]:
    """An ISAPI extension/CGI or a wildcard mapping answered 401 (401.5); names it for the URL."""
    if not ctx.groups:
        return []
    url = (ctx.uris() or ["/"])[0]
    settings = ctx.settings(ctx.groups)
    handlers = settings.handlers if settings else ()
    wildcard, specific = handler_for(handlers, url)
    traces = ctx.freb(5)
    module = next((t.failing_module for t in traces if t.failing_module), "")
    evidence: list[EvidenceItem] = []
    culprit = wildcard or specific
    if wildcard:
        evidence.append(config_item(ctx.host.name, f"wildcard mapping {wildcard.name} path=* modules={wildcard.modules} "
                                                   f"scriptProcessor={wildcard.script_processor}", wildcard.source))
    if specific:
        evidence.append(config_item(ctx.host.name, f"handler {specific.name} path={specific.path} "
                                                   f"modules={specific.modules} scriptProcessor={specific.script_processor}",
                                    specific.source))
    evidence += freb_items(ctx, traces)
    missing = [] if traces else [ctx.freb_missing_reason() or "no Failed Request Trace"]
    if culprit is None:
        level, reason = "low", f"no ISAPI/CGI handler for {url} found in the configuration"
        what = "an ISAPI extension or CGI application"
    else:
        level = "high" if (wildcard is None or specific is None or module) else "medium"
        reason = (f"{'the wildcard mapping' if wildcard else 'the handler'} {culprit.name} serves {url}"
                  + (f"; FREB names module {module}" if module else ""))
        what = f"{culprit.name} ({culprit.script_processor or culprit.modules})"
    static_note = ""
    if wildcard and (specific is None or specific.modules in ("StaticFileModule", "")):
        static_note = (" A 401.5 on a file that is normally static (like .html) is the mark of a wildcard "
                       "mapping doing its own authentication.")
    explanation = (
        f"401.5 means the ISAPI extension or CGI program that handled {url} refused the request itself. For "
        f"this URL that is {what}.{static_note} IIS cannot tell why; the reason is in that application's own "
        f"rules or configuration, so check its logs or ask its vendor.")
    fix = Fix(f"& $env:windir\\system32\\inetsrv\\appcmd.exe list config {q(ctx.location(settings.path if settings else '/'))} "
              f"-section:system.webServer/handlers",
              notes=f"Shows the handler order for the URL's scope; the refusing component is "
                    f"{culprit.name if culprit else 'the first ISAPI/CGI mapping that matches'}. "
                    f"iisfleet never runs this.")
    return [make_finding(ctx, cause="isapi-extension-denied",
                         title=f"ISAPI/CGI {culprit.name if culprit else 'application'} refused {url}",
                         severity="medium", groups=ctx.groups, level=level, reason=reason, evidence=evidence,
                         explanation=explanation, fix=fix, uses=["config"], extra_missing=missing)]


_IP_TEXT = {
    501: ("dynamicIpSecurity", "too many concurrent requests from one address"),
    502: ("dynamicIpSecurity", "too many requests per interval from one address"),
    503: ("ipSecurity", "the client address is on the deny list"),
    504: ("ipSecurity", "the client host name is on the deny list"),
}


def _matching_rule(client: str, rules: list[IpRule]) -> IpRule | None:
    """The deny entry whose address/mask covers ``client`` (None if none does or an address is invalid)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return None
    for rule in rules:
        if not rule.ip_address:
            continue
        try:
            network = ipaddress.ip_network(f"{rule.ip_address}/{rule.subnet_mask or '255.255.255.255'}", strict=False)
        except ValueError:
            continue
        if address.version == network.version and address in network:
            return rule
    return None


def ip_restriction(ctx: RuleContext) -> list[Finding]:
    """IP / dynamic IP restrictions with denyAction=Unauthorized (401.501-504)."""
    if not ctx.groups or ctx.substatus not in _IP_TEXT:
        return []
    section, what = _IP_TEXT[ctx.substatus]
    settings = ctx.settings(ctx.groups)
    clients: dict[str, int] = {}
    for g in ctx.groups:
        for ip, n in g.top_clients:
            clients[ip] = clients.get(ip, 0) + n
    top = [ip for ip, _ in sorted(clients.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
    evidence: list[EvidenceItem] = []
    level, reason = "high", f"substatus {ctx.substatus} is set only by {section} with denyAction=Unauthorized"
    if settings is not None:
        ip = settings.ip_security
        rules = [r for r in ip.rules if not r.allowed]
        # Each value cites the element that decided it: a location's <dynamicIpSecurity> is not the
        # server's <ipSecurity>, even when both are in the same file.
        if section == "dynamicIpSecurity":
            action = ip.dynamic_deny_action
            limit = "dynamic_concurrent" if ctx.substatus == 501 else "dynamic_rate"
            values = [("ip_security.dynamic_deny_action", "denyAction", action),
                      (f"ip_security.{limit}", "denyByConcurrentRequests.enabled" if ctx.substatus == 501
                       else "denyByRequestRate.enabled", ip.dynamic_enabled)]
        else:
            action = ip.deny_action
            values = [("ip_security.deny_action", "denyAction", action),
                      ("ip_security.allow_unlisted", "allowUnlisted", ip.allow_unlisted)]
        evidence += deciding_items(ctx.host.name, settings, section, values, ip.source)
        if rules and section == "ipSecurity":
            evidence.append(config_item(ctx.host.name, "deny entries: " + ", ".join(
                r.ip_address or r.domain_name for r in rules[:5]), settings.source_of("ip_security.rules", ip.source)))
        for client in top[:3]:
            rule = _matching_rule(client, rules)
            if rule is not None:
                evidence.append(config_item(ctx.host.name, f"{client} falls under the deny entry {rule.ip_address}"
                                            f"/{rule.subnet_mask or '255.255.255.255'}", rule.source or ip.source))
        if action != "Unauthorized":
            level, reason = "medium", f"{reason}, but the collected configuration says denyAction={action}"
    if top:
        evidence.append(EvidenceItem("log", ctx.host.name, f"refused clients: {', '.join(top)}"))
    loc = ctx.location(settings.path if settings else "/")
    if section == "ipSecurity" and top:
        command = (f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
                   f"-section:system.webServer/security/ipSecurity /+\"[ipAddress='{top[0]}',allowed='true']\" "
                   f"/commit:apphost")
        notes = ("Only if this client should get in. If the block is intended, set denyAction to Forbidden so "
                 "browsers stop prompting for credentials (/denyAction:Forbidden). iisfleet never runs this.")
    else:
        command = (f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
                   f"-section:system.webServer/security/{section} /denyAction:Forbidden /commit:apphost")
        notes = ("Reports the block as 403 instead of a 401 that makes browsers prompt for credentials; raise "
                 "the limits if legitimate clients are caught. iisfleet never runs this.")
    explanation = (
        f"These 401s are not authentication failures: IIS refused the requests because {what} "
        f"({section}), and the site is configured to report refusals as 401 Unauthorized "
        f"(denyAction=Unauthorized), which makes browsers prompt for credentials that cannot help. "
        f"Decide whether the clients ({', '.join(top) or 'see the log'}) should be allowed; either way, "
        f"reporting the refusal as 403 is clearer.")
    return [make_finding(ctx, cause="ip-restriction", title=f"IP restriction refused clients (401.{ctx.substatus})",
                         severity="low", groups=ctx.groups, level=level, reason=reason, evidence=evidence,
                         explanation=explanation, fix=Fix(command, notes=notes), uses=["config"])]
