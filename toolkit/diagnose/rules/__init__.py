"""The cause catalog: one rule per cause id, registered per 401 substatus in evaluation order.

Order matters inside a substatus: a rule only sees the groups earlier rules did not explain, so the
causes that block *every* logon (security log full, clock skew) and the specific Kerberos and
account-state causes run before the generic credential causes.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.diagnose.model import Confidence, Finding, Fix
from toolkit.diagnose.rules.acl import (
    anonymous_identity_vs_pool_identity,
    content_acl_denied,
    unc_share_acl_mismatch,
)
from toolkit.diagnose.rules.base import EVIDENCE_NAMES, Rule, RuleContext, log_evidence, make_finding, q
from toolkit.diagnose.rules.etypes import kerberos_etype_unsupported
from toolkit.diagnose.rules.isapi import ip_restriction, isapi_extension_denied, isapi_filter_denied
from toolkit.diagnose.rules.kerberos import (
    clock_skew,
    kerberos_kernel_mode_mismatch,
    kerberos_spn_duplicate,
    kerberos_spn_misplaced,
    kerberos_spn_missing,
    security_log_full,
)
from toolkit.diagnose.rules.logon import (
    account_disabled_or_expired,
    account_locked_out,
    anonymous_credentials_invalid,
    logon_right_denied,
    user_credentials_rejected,
)
from toolkit.diagnose.rules.methods import auth_protocol_mismatch, client_certificate_mapping, ntlm_through_proxy
from toolkit.diagnose.signals import code_name

#: cause id → rule (docs/contracts.md §4 cause ids, plus ``application-denied``)
CAUSES: dict[str, Rule] = {
    "security-log-full": security_log_full,
    "clock-skew": clock_skew,
    "kerberos-spn-duplicate": kerberos_spn_duplicate,
    "kerberos-kernel-mode-mismatch": kerberos_kernel_mode_mismatch,
    "kerberos-spn-misplaced": kerberos_spn_misplaced,
    "kerberos-etype-unsupported": kerberos_etype_unsupported,
    "kerberos-spn-missing": kerberos_spn_missing,
    "account-locked-out": account_locked_out,
    "account-disabled-or-expired": account_disabled_or_expired,
    "logon-right-denied": logon_right_denied,
    "anonymous-credentials-invalid": anonymous_credentials_invalid,
    "user-credentials-rejected": user_credentials_rejected,
    "client-certificate-mapping": client_certificate_mapping,
    "ntlm-through-proxy": ntlm_through_proxy,
    "auth-protocol-mismatch": auth_protocol_mismatch,
    "unc-share-acl-mismatch": unc_share_acl_mismatch,
    "anonymous-identity-vs-pool-identity": anonymous_identity_vs_pool_identity,
    "content-acl-denied": content_acl_denied,
    "isapi-filter-denied": isapi_filter_denied,
    "isapi-extension-denied": isapi_extension_denied,
    "ip-restriction": ip_restriction,
}


def application_denied(ctx: RuleContext) -> list[Finding]:
    """401.0: the application itself (ASP.NET [Authorize], Forms auth) answered 401, not IIS."""
    if not ctx.groups:
        return []
    url = (ctx.uris() or ["/"])[0]
    explanation = (
        f"These 401s carry no IIS substatus: IIS authentication let the request through and the application "
        f"behind {ctx.site}{url} refused it itself (for example an [Authorize] attribute, Forms authentication "
        f"or an API token check). The answer is in the application's own logs and configuration, not in IIS.")
    return [make_finding(ctx, cause="application-denied", title=f"The application refused {url} (401.0)",
                         severity="low", groups=ctx.groups, level="medium",
                         reason="substatus 0: no IIS module set the 401", evidence=[], explanation=explanation,
                         fix=Fix(f"Get-ChildItem -Recurse -Filter web.config -Path (Get-Website -Name {q(ctx.site)}).physicalPath "
                                 f"| Select-String -Pattern 'authorization|authentication'",
                                 notes="Finds the application's own authentication settings. iisfleet never runs this."),
                         uses=[])]


CAUSES["application-denied"] = application_denied

RULES_BY_SUBSTATUS: dict[int, tuple[Rule, ...]] = {
    0: (application_denied,),
    1: (security_log_full, clock_skew, kerberos_spn_duplicate, kerberos_kernel_mode_mismatch,
        kerberos_spn_misplaced, kerberos_spn_missing, kerberos_etype_unsupported, account_locked_out, account_disabled_or_expired,
        logon_right_denied,
        client_certificate_mapping, anonymous_credentials_invalid, user_credentials_rejected),
    2: (kerberos_etype_unsupported, client_certificate_mapping, ntlm_through_proxy, auth_protocol_mismatch),
    3: (unc_share_acl_mismatch, anonymous_identity_vs_pool_identity, content_acl_denied),
    4: (isapi_filter_denied,),
    5: (isapi_extension_denied,),
    501: (ip_restriction,),
    502: (ip_restriction,),
    503: (ip_restriction,),
    504: (ip_restriction,),
}


def unexplained(ctx: RuleContext, notes: Sequence[str] = ()) -> Finding:
    """The explicit "we could not tell" finding for terminal groups no rule explained.

    ``notes`` are extra reasons (a rule that failed on this host's data).
    """
    missing = [f"{EVIDENCE_NAMES.get(k, k)}: {v}" for k, v in sorted(ctx.host.missing.items())] + list(notes)
    codes = ", ".join(f"{g.win32} ({code_name(g.win32)})" for g in ctx.groups)
    explanation = (
        f"{sum(g.terminal for g in ctx.groups)} terminal 401.{ctx.substatus} responses on {ctx.site} "
        f"(sc-win32-status {codes}) do not match any known cause with the evidence collected. "
        + ("Missing evidence may be why: " + "; ".join(missing) + ". " if missing else
           "All collectors answered, so this may be a cause iisfleet does not know yet. ")
        + "Look at the cited log rows, enable Failed Request Tracing for 401 on this site and collect again.")
    return Finding(
        cause="unexplained", title=f"Unexplained 401.{ctx.substatus} on {ctx.site}", substatus=f"401.{ctx.substatus}",
        severity="medium", confidence=Confidence("low", "no rule matched the evidence"),
        hosts=(ctx.host.name,), site=ctx.site, scope=ctx.scope(ctx.groups),
        terminal_401=sum(g.terminal for g in ctx.groups),
        evidence=tuple(log_evidence(ctx.host.name, ctx.groups)),
        explanation=explanation,
        fix=Fix(f"& $env:windir\\system32\\inetsrv\\appcmd.exe configure trace {q(ctx.site)} /enablesite; "
                f"& $env:windir\\system32\\inetsrv\\appcmd.exe configure trace {q(ctx.site)} /enable "
                f"/statuscodes:401 /areas:Authentication,Security",
                notes="Turns on Failed Request Tracing for 401s so the next collection can tell. "
                      "iisfleet never runs this."),
        missing_evidence=tuple(missing) or ("no rule matched; see the cited rows",),
        explains=frozenset((g.substatus, g.win32) for g in ctx.groups),
    )


__all__ = ["CAUSES", "RULES_BY_SUBSTATUS", "Rule", "RuleContext", "unexplained"]
