"""401.1 causes about the account IIS logs on with: credentials, rights, lockout, disabled/expired.

The sc-win32-status of the terminal rows says *what* failed (1326 bad password, 1385 logon type not
granted, 1909 locked out, 1331/1793/1330/1907 disabled or expired); the 4625 records say *who*; the
configuration, the local accounts and the secedit export say *why* and what to change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.diagnose import signals as S
from toolkit.diagnose.evidence import LogGroup
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
from toolkit.diagnose.security import (
    check_right,
    is_builtin_anonymous,
    is_domain_account,
    memberships,
    same_account,
    short_name,
)
from toolkit.parsers.types import LogonFailure


@dataclass(frozen=True)
class Identity:
    name: str
    how: str  # how we know: "4625 records", "anonymous configuration", "log user names"
    is_anonymous_identity: bool


def _account(f: LogonFailure) -> str:
    return f"{f.target_domain}\\{f.target_user}" if f.target_domain and f.target_domain != "-" else f.target_user


def anonymous_identity(ctx: RuleContext, groups: Sequence[LogGroup]) -> str | None:
    """The account anonymous requests run as at the failing scope (None if anonymous is off/unknown)."""
    settings = ctx.settings(groups)
    if settings is None or not settings.anonymous.enabled:
        return None
    if settings.anonymous.user_name == "":
        pool = ctx.pool()
        return pool.identity if pool else None
    return settings.anonymous.user_name


def failing_identity(ctx: RuleContext, groups: Sequence[LogGroup], reasons: frozenset[str]) \
        -> tuple[Identity | None, list[LogonFailure]]:
    failures = ctx.failures(lambda f: S.nt(f.reason) in reasons or S.nt(f.status) in reasons)
    anon = anonymous_identity(ctx, groups)
    anon_rows = sum(g.anonymous_terminal for g in groups)
    named_rows = sum(g.named_terminal for g in groups)
    if failures:
        counts = Counter(_account(f) for f in failures)
        if anon and any(same_account(a, anon) for a in counts) and anon_rows >= named_rows:
            return Identity(anon, "4625 records and the anonymous configuration", True), \
                [f for f in failures if same_account(_account(f), anon)]
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        return Identity(top, "4625 records", bool(anon and same_account(top, anon))), \
            [f for f in failures if _account(f) == top]
    if anon and anon_rows >= named_rows and anon_rows > 0:
        return Identity(anon, "the anonymous configuration (the failing requests carry no user name)", True), []
    users = Counter()
    for g in groups:
        users.update(g.real_users)
    if users:
        top = sorted(users.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        return Identity(top, "the user names on the failing log rows", False), []
    return None, []


def failing_subject(ctx: RuleContext, win32_codes: Iterable[int], nt_reasons: frozenset[str]) \
        -> tuple[list[LogGroup], Identity, list[LogonFailure]] | None:
    """The terminal groups whose sc-win32-status is one of ``win32_codes`` and the account they fail for.

    None when no group matches or nobody can be named as the failing account: the rule has nothing to say.
    """
    groups = any_of(ctx.groups, win32_codes)
    if not groups:
        return None
    identity, failures = failing_identity(ctx, groups, nt_reasons)
    if identity is None:
        return None
    return groups, identity, failures


def user_record(ctx: RuleContext, name: str) -> Mapping[str, Any] | None:
    for user in ctx.host.users:
        if same_account(str(user.get("name") or ""), name) or short_name(str(user.get("name") or "")) == \
                short_name(name) and not is_domain_account(name, ctx.host.facts):
            return user
    return None


def directory_item(ctx: RuleContext, record: Mapping[str, Any]) -> EvidenceItem:
    """The account's state as the domain controller reported it (one line, attributes as read)."""
    return EvidenceItem("directory", ctx.host.name, f"domain account {record.get('summary')}",
                        EvidenceSource(file=f"LDAP {record.get('dc') or ''}".strip(),
                                       element=f"(sAMAccountName={short_name(str(record.get('name') or ''))})"))


def _anon_config_item(ctx: RuleContext, groups: Sequence[LogGroup]) -> list[EvidenceItem]:
    settings = ctx.settings(groups)
    if settings is None:
        return []
    a = settings.anonymous
    user = a.user_name if a.user_name else "(empty: the application pool identity)"
    return deciding_items(ctx.host.name, settings, "anonymousAuthentication",
                          [("anonymous.enabled", "enabled", a.enabled), ("anonymous.user_name", "userName", user
                                                                         + (" (password stored, encrypted)"
                                                                            if a.password_present else ""))],
                          a.source)


#: logonMethod → (allow right, deny right) that decide a LogonUser call of that type
RIGHTS_FOR_METHOD = {
    "ClearText": ("SeNetworkLogonRight", "SeDenyNetworkLogonRight"),
    "Network": ("SeNetworkLogonRight", "SeDenyNetworkLogonRight"),
    "Interactive": ("SeInteractiveLogonRight", "SeDenyInteractiveLogonRight"),
    "Batch": ("SeBatchLogonRight", "SeDenyBatchLogonRight"),
    "Service": ("SeServiceLogonRight", "SeDenyServiceLogonRight"),
}
LOGON_TYPE_METHOD = {2: "Interactive", 3: "Network", 4: "Batch", 5: "Service", 8: "ClearText"}
RIGHT_NAMES = {
    "SeNetworkLogonRight": "Access this computer from the network",
    "SeDenyNetworkLogonRight": "Deny access to this computer from the network",
    "SeInteractiveLogonRight": "Allow log on locally",
    "SeDenyInteractiveLogonRight": "Deny log on locally",
    "SeBatchLogonRight": "Log on as a batch job",
    "SeDenyBatchLogonRight": "Deny log on as a batch job",
    "SeServiceLogonRight": "Log on as a service",
    "SeDenyServiceLogonRight": "Deny log on as a service",
}


def anonymous_credentials_invalid(ctx: RuleContext) -> list[Finding]:
    """401.1 + 1326: the anonymous identity is a specific account whose stored password no longer works."""
    groups = any_of(ctx.groups, S.BAD_CREDENTIALS)
    if not groups:
        return []
    anon = anonymous_identity(ctx, groups)
    settings = ctx.settings(groups)
    if anon is None or settings is None or settings.anonymous.user_name == "" or is_builtin_anonymous(anon):
        return []
    failures = ctx.failures(lambda f: S.nt(f.reason) in S.NT_BAD_CREDENTIALS)
    anon_failures = [f for f in failures if same_account(_account(f), anon)]
    anon_rows = sum(g.anonymous_terminal for g in groups)
    named_rows = sum(g.named_terminal for g in groups)
    if not anon_failures and anon_rows <= named_rows:
        return []  # real users failing: user-credentials-rejected decides
    mine = [g for g in groups if g.anonymous_terminal >= g.named_terminal]
    if not mine:
        return []
    if anon_failures:
        level, reason = "high", (f"the failing requests are anonymous and 4625 records show {anon} "
                                 f"failing with {S.nt(anon_failures[0].reason)}")
    else:
        level, reason = "medium", (f"the failing requests are anonymous and anonymous authentication logs on "
                                   f"as {anon}; no 4625 record confirms the password failure")
    no_such = any(S.nt(f.reason) == "0xC0000064" for f in anon_failures)
    detail = "does not exist" if no_such else "rejects the password IIS has stored for it"
    loc = ctx.location(settings.path)
    explanation = (
        f"Anonymous authentication on {ctx.site}{'' if settings.path == '/' else settings.path} does not use the "
        f"built-in IUSR account but the specific account {anon}, with a password saved in the IIS "
        f"configuration. Windows {detail}, so IIS cannot obtain a token for anonymous visitors and answers "
        f"every anonymous request with 401.1 (sc-win32-status 1326). This typically happens after the "
        f"account's password was changed or the account was renamed. Either run anonymous requests as the "
        f"application pool identity (userName empty) or store the account's current password.")
    fix = Fix(f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
              f"-section:system.webServer/security/authentication/anonymousAuthentication "
              f"/userName:\"\" /commit:apphost",
              notes=f"Makes anonymous requests run as the application pool identity. To keep {anon}, set its "
                    f"current password instead (/userName:{q(anon)} /password:<current password>). "
                    f"iisfleet never runs this.")
    evidence = _anon_config_item(ctx, groups) + event_evidence(ctx.host.name, anon_failures)
    return [make_finding(ctx, cause="anonymous-credentials-invalid",
                         title=f"Anonymous identity {anon} cannot log on", severity="high", groups=mine,
                         level=level, reason=reason, evidence=evidence, explanation=explanation, fix=fix,
                         uses=["config", "events", "security-log"], scope=settings.path)]


def user_credentials_rejected(ctx: RuleContext) -> list[Finding]:
    """401.1 + 1326 from real, named users: people typing wrong passwords. Informational."""
    groups = [g for g in any_of(ctx.all_groups, S.BAD_CREDENTIALS)
              if g.named_terminal > g.anonymous_terminal or g in ctx.groups]
    if not groups:
        return []
    anon = anonymous_identity(ctx, groups)
    failures = ctx.failures(lambda f: S.nt(f.reason) in S.NT_BAD_CREDENTIALS)
    users = Counter()
    for g in groups:
        users.update(g.real_users)
    anon_accounts = {short_name(e.anonymous.user_name) for e in (ctx.host.config.effective if ctx.host.config else ())
                     if e.anonymous.user_name and not is_builtin_anonymous(e.anonymous.user_name)}
    event_users = {_account(f) for f in failures if not (anon and same_account(_account(f), anon))
                   and short_name(f.target_user) not in anon_accounts}
    distinct = {short_name(u) for u in users} | {short_name(u) for u in event_users}
    if anon:
        distinct.discard(short_name(anon))
    anon_involved = bool(anon and not is_builtin_anonymous(anon)
                         and any(same_account(_account(f), anon) for f in failures))
    named_rows = sum(g.named_terminal for g in groups)
    anon_rows = sum(g.anonymous_terminal for g in groups)
    if not distinct or (anon_involved and anon_rows > named_rows):
        return []
    mine = [g for g in groups if g.named_terminal > 0 or g in ctx.groups]
    level = "high" if len(distinct) >= 3 else "medium"
    reason = f"{len(distinct)} distinct user name(s) fail with bad-password codes; the anonymous identity is " \
             f"not involved"
    names = ", ".join(sorted(distinct)[:5]) + (" ..." if len(distinct) > 5 else "")
    explanation = (
        f"Named users ({names}) are sending credentials that Windows rejects as a wrong user name or "
        f"password. The server and its configuration are working as intended: this is people (or scripts "
        f"with stale saved passwords) failing to log on. It is listed for completeness; look at it only if "
        f"one account dominates (a stale saved password or a service with an old password) or the volume "
        f"suggests password guessing.")
    # 4625 records carry no site: cite those of the users on these rows (or, without names, of anyone
    # who is not an anonymous identity configured on this host)
    logged = {short_name(u) for u in users}
    other_failures = [f for f in failures
                      if (short_name(f.target_user) in logged if logged else short_name(f.target_user) not in anon_accounts)]
    return [make_finding(ctx, cause="user-credentials-rejected",
                         title=f"{len(distinct)} user(s) sent wrong credentials", severity="info", groups=mine,
                         level=level, reason=reason, evidence=event_evidence(ctx.host.name, other_failures),
                         explanation=explanation,
                         fix=Fix("Get-WinEvent -FilterHashtable @{LogName='Security'; Id=4625} -MaxEvents 50 | "
                                 "Format-List TimeCreated, Message",
                                 notes="Nothing to fix on the server; this lists the recent failed logons to "
                                       "see who is affected. iisfleet never runs this."),
                         uses=["events", "security-log"])]


def logon_right_denied(ctx: RuleContext) -> list[Finding]:
    """401.1 + 1385 / 4625 0xC000015B: the logon type is not granted (or explicitly denied)."""
    subject = failing_subject(ctx, S.LOGON_TYPE_NOT_GRANTED, S.NT_LOGON_TYPE)
    if subject is None:
        return []
    groups, identity, failures = subject
    logon_type = failures[0].logon_type if failures else None
    method = LOGON_TYPE_METHOD.get(logon_type or 8, "ClearText")
    # The pair for the logon type seen first, then the network pair (IIS' usual logon), then the rest.
    pairs = list(dict.fromkeys([RIGHTS_FOR_METHOD[method], RIGHTS_FOR_METHOD["Network"],
                                *RIGHTS_FOR_METHOD.values()]))
    allow, deny = pairs[0]
    evidence: list[EvidenceItem] = event_evidence(ctx.host.name, failures)
    evidence += _anon_config_item(ctx, groups) if identity.is_anonymous_identity else []
    rights = ctx.host.rights
    culprit = ""
    fix: Fix | None = None
    level, reason = "medium", f"sc-win32-status 1385 (logon type not granted) for {identity.name}"
    if rights is not None:
        denied = allowed = None
        for pair_allow, pair_deny in pairs:
            check = check_right(identity.name, pair_deny, rights, ctx.host.groups)
            if check.holds:
                denied, allow, deny = check, pair_allow, pair_deny
                break
        allowed = check_right(identity.name, allow, rights, ctx.host.groups)
        if denied is not None:
            via = denied.via or identity.name
            if denied.via_group:
                culprit = (f"{deny} ({RIGHT_NAMES[deny]}) is held by {via}, and {identity.name} is a member "
                           f"of {via}")
                fix = Fix(f"Remove-LocalGroupMember -Group {q(via)} -Member {q(identity.name)}",
                          notes=f"Or take {via} off '{RIGHT_NAMES[deny]}' in the policy (secpol.msc or the GPO "
                                f"that sets it; ntrights -u {q(via)} -r {deny}). If a GPO sets the right, change "
                                f"the GPO, or it comes back. iisfleet never runs this.")
            else:
                culprit = f"{deny} ({RIGHT_NAMES[deny]}) is held by {identity.name} itself"
                fix = Fix(f"ntrights -u {q(identity.name)} -r {deny}",
                          shell="cmd", notes="ntrights.exe (Windows Resource Kit) or secpol.msc / the GPO that "
                                             "sets the right. iisfleet never runs this.")
            evidence.append(EvidenceItem("right", ctx.host.name, culprit))
            level = "high"
            reason = f"{reason}, and the secedit export shows {deny} applying to it via {via}"
        elif not allowed.holds:
            culprit = f"{identity.name} does not hold {allow} ({RIGHT_NAMES[allow]}), directly or via a group"
            holders = ", ".join(sorted((p.name or p.sid or "") for p in rights.get(allow, ()))) or "nobody"
            evidence.append(EvidenceItem("right", ctx.host.name, f"{culprit}; holders: {holders}"))
            fix = Fix(f"ntrights -u {q(identity.name)} +r {allow}", shell="cmd",
                      notes="Or add the account (or a group it is in) to the right with secpol.msc or the GPO "
                            "that sets it. iisfleet never runs this.")
            level = "high"
            reason = f"{reason}, and the secedit export shows it lacks {allow}"
        elif (unexpanded := _unexpanded_domain_holders(rights.get(deny, ()), ctx.host.groups)) and \
                is_domain_account(identity.name, ctx.host.facts):
            # A domain account, and the deny right names domain groups nobody here could expand: only the
            # domain knows whether the account is in them (an inventory directory: asks it, tokenGroups).
            evidence.append(EvidenceItem("right", ctx.host.name,
                                         f"{deny} ({RIGHT_NAMES[deny]}) is held by {', '.join(unexpanded)}: domain "
                                         f"group(s) whose members the host's data does not list"))
            level = "medium"
            reason = (f"{reason}; {deny} names domain group(s) {', '.join(unexpanded)} that may contain "
                      f"{identity.name} (membership not read: no directory)")
        else:
            evidence.append(EvidenceItem("right", ctx.host.name,
                                         f"{identity.name} holds {allow} and no {deny}: the local export does not "
                                         f"explain the denial (a domain GPO applied later, logon hours or "
                                         f"workstation restrictions may)"))
            level = "low"
            reason = f"{reason}, but the local rights export does not show the denial"
    if fix is None:
        fix = Fix(f"secedit /export /areas USER_RIGHTS /cfg $env:TEMP\\rights.inf; "
                  f"Select-String -Path $env:TEMP\\rights.inf -Pattern '{allow}|{deny}'",
                  notes="Shows who holds the logon rights, to compare with the account's groups. "
                        "iisfleet never runs this.")
    member_of = [m.group for m in memberships(identity.name, ctx.host.groups)]
    explanation = (
        f"IIS logs on {identity.name} (known from {identity.how}), and Windows refuses "
        f"the logon type on this server (ERROR_LOGON_TYPE_NOT_GRANTED, 1385). "
        + (f"{culprit}. " if culprit else "")
        + (f"{identity.name} is a member of {', '.join(member_of)}. " if member_of and not culprit else "")
        + f"Until the account holds '{RIGHT_NAMES[allow]}' and is not covered by '{RIGHT_NAMES[deny]}', every "
          f"request that needs this logon fails with 401.1. Deny rights often arrive with a security baseline "
          f"or GPO, so check where the setting comes from.")
    return [make_finding(ctx, cause="logon-right-denied",
                         title=f"{identity.name} is denied the logon IIS needs ({RIGHT_NAMES[deny] if culprit.startswith(deny) else RIGHT_NAMES[allow]})", severity="high",
                         groups=groups, level=level, reason=reason, evidence=evidence, explanation=explanation,
                         fix=fix, uses=["rights", "events", "security-log"])]


def _unexpanded_domain_holders(principals: Iterable[Any], groups: Sequence[Mapping[str, Any]]) -> list[str]:
    """Holders of a right that are domain SIDs (S-1-5-21-…) no known group entry describes."""
    known = {str(g.get("sid") or "") for g in groups}
    return sorted({p.sid for p in principals
                   if p.sid and p.sid.startswith("S-1-5-21-") and not p.name and p.sid not in known})


def account_locked_out(ctx: RuleContext) -> list[Finding]:
    """401.1 + 1909 / 4625 0xC0000234: the account IIS logs on with is locked out."""
    subject = failing_subject(ctx, S.LOCKED_OUT, S.NT_LOCKED)
    if subject is None:
        return []
    groups, identity, failures = subject
    record = user_record(ctx, identity.name)
    evidence = event_evidence(ctx.host.name, failures) + (_anon_config_item(ctx, groups)
                                                          if identity.is_anonymous_identity else [])
    level, reason = "medium", f"sc-win32-status 1909 (account locked out) for {identity.name}"
    if record is not None and record.get("source") == "directory":
        evidence.append(directory_item(ctx, record))
        if record.get("locked_out"):
            level, reason = "high", reason + f"; the domain controller reports {record.get('name')} locked out"
    elif record is not None and record.get("locked_out"):
        evidence.append(EvidenceItem("host", ctx.host.name, f"local account {record.get('name')} locked_out=True"))
        level, reason = "high", reason + "; the local account is locked out"
    elif failures:
        level, reason = "high", reason + "; 4625 Status 0xC0000234 confirms it"
    domain = is_domain_account(identity.name, ctx.host.facts)
    personal = identity.is_anonymous_identity and not is_builtin_anonymous(identity.name)
    explanation = (
        f"The account {identity.name} is locked out, so every logon IIS attempts with it fails "
        f"(ERROR_ACCOUNT_LOCKED_OUT, 1909) and requests get 401.1. "
        + ("It is configured as the anonymous identity: if its stored password is stale, IIS itself keeps "
           "locking it out with failed logons as soon as it is unlocked, so fix the stored password (or stop "
           "using a personal account for anonymous access) before unlocking. " if personal else "")
        + "Unlock the account after removing whatever keeps sending the bad password.")
    command = (f"Unlock-ADAccount -Identity {q(short_name(identity.name))}" if domain
               else f"net user {q(short_name(identity.name))} /active:yes")
    notes = "iisfleet never runs this."
    if personal:
        loc = ctx.location(ctx.scope(groups))
        notes = (f"Then make anonymous requests use the pool identity instead: appcmd set config {q(loc)} "
                 f"-section:system.webServer/security/authentication/anonymousAuthentication /userName:\"\" "
                 f"/commit:apphost. iisfleet never runs this.")
    return [make_finding(ctx, cause="account-locked-out", title=f"{identity.name} is locked out",
                         severity="high", groups=groups, level=level, reason=reason, evidence=evidence,
                         explanation=explanation, fix=Fix(command, notes=notes),
                         uses=["events", "security-log"] + ([] if domain else ["rights"]))]


_STATE_TEXT = {
    S.ERROR_ACCOUNT_DISABLED: "disabled", S.STATUS_ACCOUNT_DISABLED: "disabled",
    S.ERROR_ACCOUNT_EXPIRED: "expired", S.STATUS_ACCOUNT_EXPIRED: "expired",
    S.ERROR_PASSWORD_EXPIRED: "password expired", S.STATUS_PASSWORD_EXPIRED: "password expired",
    S.ERROR_PASSWORD_MUST_CHANGE: "must change password", S.STATUS_PASSWORD_MUST_CHANGE: "must change password",
}


def account_disabled_or_expired(ctx: RuleContext) -> list[Finding]:
    """401.1 + 1331/1793/1330/1907: the account is disabled, expired, its password expired or must change."""
    subject = failing_subject(ctx, S.DISABLED_OR_EXPIRED, S.NT_DISABLED_OR_EXPIRED)
    if subject is None:
        return []
    groups, identity, failures = subject
    state = _STATE_TEXT.get(max(groups, key=lambda g: g.terminal).win32, "disabled or expired")
    record = user_record(ctx, identity.name)
    evidence = event_evidence(ctx.host.name, failures) + (_anon_config_item(ctx, groups)
                                                          if identity.is_anonymous_identity else [])
    level, reason = "medium", f"sc-win32-status says the account is {state}"
    if record is not None and record.get("source") == "directory":
        evidence.append(directory_item(ctx, record))
        problems = [p for p in record.get("problems") or () if p != "locked out"]
        if problems:
            state = problems[0] if state == "disabled or expired" or state not in problems else state
            level, reason = "high", reason + f"; the domain controller reports {record.get('name')}: " \
                f"{', '.join(problems)}"
    elif record is not None:
        flags = {k: record.get(k) for k in ("enabled", "password_expired", "account_expires")}
        evidence.append(EvidenceItem("host", ctx.host.name, f"local account {record.get('name')}: "
                                     + ", ".join(f"{k}={v}" for k, v in flags.items())))
        if record.get("enabled") is False or record.get("password_expired") or record.get("account_expires"):
            level, reason = "high", reason + "; the local account record agrees"
    elif failures:
        level, reason = "high", reason + f"; 4625 Status {S.nt(failures[0].reason)} confirms it"
    domain = is_domain_account(identity.name, ctx.host.facts)
    name = short_name(identity.name)
    if state == "disabled":
        command = f"Enable-ADAccount -Identity {q(name)}" if domain else f"Enable-LocalUser -Name {q(name)}"
    elif state == "expired":
        command = (f"Set-ADAccountExpiration -Identity {q(name)} -DateTime $null" if domain
                   else f"Set-LocalUser -Name {q(name)} -AccountNeverExpires")
    else:
        command = (f"Set-ADAccountPassword -Identity {q(name)} -Reset" if domain
                   else f"Set-LocalUser -Name {q(name)} -Password (Read-Host -AsSecureString)")
    explanation = (
        f"IIS logs on {identity.name} (known from {identity.how}), and Windows refuses the logon because "
        f"the account is {state}. Every request that needs this account fails with 401.1 until the account "
        f"is usable again; if the password is reset, update it wherever IIS stores it (anonymous identity, "
        f"application pool or virtual directory connect-as).")
    return [make_finding(ctx, cause="account-disabled-or-expired", title=f"{identity.name}: {state}",
                         severity="high", groups=groups, level=level, reason=reason, evidence=evidence,
                         explanation=explanation, fix=Fix(command, notes="iisfleet never runs this."),
                         uses=["events", "security-log"] + ([] if domain else ["rights"]))]
