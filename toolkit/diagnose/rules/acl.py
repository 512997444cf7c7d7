"""401.3 causes: the identity the request runs as cannot read the content.

The identity is decided first (for anonymous requests: IUSR, the pool identity when the anonymous
userName is empty, or the configured account; for UNC content with a connect-as user: that user;
otherwise the authenticated user), then read access is checked against the NTFS descriptor and, for
UNC content, the share descriptor.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.diagnose.evidence import ContentPath, LogGroup
from toolkit.diagnose.model import EvidenceItem, EvidenceSource, Finding, Fix
from toolkit.diagnose.rules.base import RuleContext, config_item, make_finding, q
from toolkit.diagnose.security import AclAnswer, read_access, unc_access
from toolkit.parsers.freb import AccessDenial, denied_access
from toolkit.parsers.types import AppPool, FrebTrace, VirtualDirectory


def _pools(ctx: RuleContext) -> list[str]:
    return [p.name for p in ctx.host.config.app_pools] if ctx.host.config else []


def content_for(ctx: RuleContext, url: str) -> ContentPath | None:
    best = None
    target = (url or "/").lower()
    for c in ctx.host.content:
        if c.site.lower() != ctx.site.lower():
            continue
        path = c.url_path.rstrip("/").lower()
        if target == path or target.startswith(path + "/") or path == "":
            if best is None or len(c.url_path.rstrip("/")) > len(best.url_path.rstrip("/")):
                best = c
    return best


def vdir_for(ctx: RuleContext, url: str) -> VirtualDirectory | None:
    site = ctx.site_obj
    if site is None:
        return None
    best = None
    target = (url or "/").lower()
    for app in site.applications:
        for v in app.virtual_directories:
            path = v.url_path.rstrip("/").lower()
            if target == path or target.startswith(path + "/") or path == "":
                if best is None or len(v.url_path.rstrip("/")) > len(best.url_path.rstrip("/")):
                    best = v
    return best


#: HRESULT_FROM_WIN32(ERROR_ACCESS_DENIED), as FREB's ErrorCode renders it
ACCESS_DENIED_HRESULT = "0x80070005"


def _is_anonymous_identity(identity: str, anonymous_user: str, pool: AppPool) -> bool:
    """Whether the identity a trace shows is the one anonymous requests run as."""
    if anonymous_user == "":
        return identity.lower() == (pool.identity or "").lower()
    return _short_identity(identity).lower() == _short_identity(anonymous_user).lower()


def _identities(ctx: RuleContext, groups: Sequence[LogGroup]) -> tuple[str | None, str, AppPool | None]:
    """(identity the failing requests run as, how we know, pool)."""
    pool = ctx.pool()
    settings = ctx.settings(groups)
    anon_rows = sum(g.anonymous_terminal for g in groups)
    named = {}
    for g in groups:
        for u, n in g.real_users.items():
            named[u] = named.get(u, 0) + n
    if anon_rows >= sum(g.named_terminal for g in groups) and settings is not None and settings.anonymous.enabled:
        user = settings.anonymous.user_name
        if user == "":
            return (pool.identity if pool else None), "anonymous requests run as the pool identity (userName empty)", pool
        return ("IUSR" if user.upper() in ("IUSR", "NT AUTHORITY\\IUSR") else user), \
            f"anonymous requests run as {user}", pool
    if named:
        top = sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        return top, "the authenticated user on the failing rows", pool
    return None, "", pool


def _acl_item(ctx: RuleContext, content: ContentPath, answer: AclAnswer | None, identity: str,
              share: bool = False) -> EvidenceItem:
    where = content.share_name if share else content.expanded_path
    kind = "share permissions" if share else "NTFS ACL"
    if answer is None:
        text = f"{where}: no {kind} collected"
    else:
        text = (f"{where} ({kind}): {identity} {'can' if answer.read else 'cannot'} read"
                + (f" ({answer.deciding_ace})" if answer.deciding_ace else "" if answer.read
                   else " (no entry grants it)")
                + f"; read granted to: {', '.join(answer.trustees_with_read) or 'nobody'}")
    source = content.share_sd_source if share else content.sd_source
    if source and answer is not None:
        text += f" [read on the {source}]"
    return EvidenceItem("acl", ctx.host.name, text, EvidenceSource(file=where, element="share" if share else "ntfs"))


def content_for_file(ctx: RuleContext, file: str) -> ContentPath | None:
    """The collected content path that holds ``file`` (longest physical-path prefix, case-insensitive)."""
    target = file.replace("/", "\\").rstrip("\\").lower()
    best = None
    for c in ctx.host.content:
        if c.site.lower() != ctx.site.lower() or not c.expanded_path:
            continue
        root = c.expanded_path.replace("/", "\\").rstrip("\\").lower()
        if target == root or target.startswith(root + "\\"):
            if best is None or len(root) > len(best.expanded_path.rstrip("\\")):
                best = c
    return best


def freb_denial(ctx: RuleContext) -> tuple[FrebTrace, AccessDenial] | None:
    """The first 401.3 trace of the site that names the file it could not open (or at least the module)."""
    for trace in ctx.freb(3):
        denial = denied_access(trace)
        if denial.file or denial.module:
            return trace, denial
    return None


def _freb_denial_item(ctx: RuleContext, trace: FrebTrace, denial: AccessDenial) -> EvidenceItem:
    event = denial.error or denial.file_event
    text = (f"{denial.module or 'a module'} set 401.3"
            + (f" at {denial.error.notification}" if denial.error is not None and denial.error.notification else "")
            + (f" opening {denial.file}" if denial.file else "")
            + (f" as {denial.identity}" if denial.identity else "")
            + f": {denial.error_text or denial.error_code or 'no error code'}")
    return EvidenceItem("freb", ctx.host.name, text,
                        EvidenceSource(file=trace.file, line=event.line if event is not None else None,
                                       element=event.name if event is not None else None))


def _short_identity(identity: str) -> str:
    return "IUSR" if identity.upper() in ("IUSR", "NT AUTHORITY\\IUSR") else identity


def _select(ctx: RuleContext):
    """(url, identity, how we know, pool, content, FREB denial or None). A 401.3 trace, when collected, is
    the best evidence there is: it names the file that could not be opened and the identity it was opened
    as, so it decides both over what the log rows and the URL suggest."""
    if not ctx.groups:
        return None
    url = (ctx.uris() or ["/"])[0]
    identity, how, pool = _identities(ctx, ctx.groups)
    content = content_for(ctx, url)
    denial = freb_denial(ctx)
    if denial is not None:
        trace, found = denial
        if found.file:
            content = content_for_file(ctx, found.file) or content
        if found.identity:
            identity = _short_identity(found.identity)
            how = f"the Failed Request Trace shows the file opened as {found.identity}"
    return url, identity, how, pool, content, denial


def unc_share_acl_mismatch(ctx: RuleContext) -> list[Finding]:
    """UNC content: the share permissions and the NTFS ACL disagree for the identity."""
    selected = _select(ctx)
    if selected is None:
        return []
    url, identity, how, pool, content, denial = selected
    if content is None or not content.is_unc:
        return []
    vdir = vdir_for(ctx, url)
    if vdir is not None and vdir.user_name:
        identity, how = vdir.user_name, f"the virtual directory connects as {vdir.user_name}"
    if identity is None:
        return []
    access = unc_access(content.sd, content.share_sd, identity, ctx.host.groups, _pools(ctx))
    ntfs, share = access.ntfs_read, access.share_read
    if ntfs is None or share is None or ntfs.read == share.read:
        return []
    blocked = access.read_decided_by  # exactly one of the two refuses here
    evidence = [_acl_item(ctx, content, ntfs, identity), _acl_item(ctx, content, share, identity, share=True)]
    if denial is not None:
        evidence.append(_freb_denial_item(ctx, *denial))
    if vdir is not None:
        evidence.append(config_item(ctx.host.name, f"virtualDirectory {vdir.url_path} physicalPath={vdir.physical_path}"
                                                   + (f" userName={vdir.user_name}" if vdir.user_name else ""),
                                    vdir.source))
    explanation = (
        f"The content of {ctx.site}{url} lives on the share {content.share_name or content.physical_path}. "
        f"{identity} ({how}) is allowed by the {'NTFS ACL' if ntfs.read else 'share permissions'} but not by "
        f"the {blocked} {'permissions' if blocked == 'share' else 'ACL'}. Windows requires both to allow the "
        f"access, so reads fail and IIS answers 401.3. Align the two: grant the same identity read on the "
        f"{blocked} side.")
    server_share = content.share_name or content.physical_path
    if blocked == "share":
        name = server_share.rstrip("\\").rsplit("\\", 1)[-1]
        command = (f"Grant-SmbShareAccess -Name {q(name)} -AccountName {q(identity)} -AccessRight Read -Force")
        notes = f"Run on the file server that hosts {server_share}. iisfleet never runs this."
        if share.deciding_ace.startswith("Deny "):  # a share-level deny beats any grant: remove it first
            trustee = share.deciding_ace[len("Deny "):].rsplit(" mask ", 1)[0]
            command = f"Unblock-SmbShareAccess -Name {q(name)} -AccountName {q(trustee)} -Force"
            notes = (f"Removes the share-level deny for {trustee}; if the share then still grants {identity} "
                     f"nothing, also: Grant-SmbShareAccess -Name {q(name)} -AccountName {q(identity)} "
                     f"-AccessRight Read -Force. Run on the file server that hosts {server_share}. "
                     f"iisfleet never runs this.")
    else:
        command = f"icacls {q(content.physical_path)} /grant {q(identity + ':(OI)(CI)RX')}"
        notes = "Run against the file server's path. iisfleet never runs this."
    return [make_finding(ctx, cause="unc-share-acl-mismatch",
                         title=f"Share and NTFS permissions disagree for {identity}", severity="high",
                         groups=ctx.groups, level="high", reason=f"{identity} passes the "
                         f"{'NTFS' if ntfs.read else 'share'} check but fails the {blocked} check, which decides "
                         f"({(share if blocked == 'share' else ntfs).deciding_ace or 'no entry grants read'})",
                         evidence=evidence, explanation=explanation, fix=Fix(command, notes=notes),
                         uses=["acl", "config"])]


def anonymous_identity_vs_pool_identity(ctx: RuleContext) -> list[Finding]:
    """Anonymous uses IUSR while the content grants only the pool identity, or the reverse."""
    selected = _select(ctx)
    if selected is None:
        return []
    url, identity, how, pool, content, denial = selected
    settings = ctx.settings(ctx.groups)
    if content is None or content.sd is None or pool is None or settings is None or identity is None:
        return []
    if not settings.anonymous.enabled or not (how.startswith("anonymous") or (
            denial is not None and _is_anonymous_identity(identity, settings.anonymous.user_name, pool))):
        return []
    anon_is_pool = settings.anonymous.user_name == ""
    other = "IUSR" if anon_is_pool else pool.identity
    if not anon_is_pool and identity != "IUSR" and identity.upper() != "NT AUTHORITY\\IUSR":
        return []  # a specific anonymous account: content-acl-denied covers it
    mine = read_access(content.sd, identity, ctx.host.groups, _pools(ctx))
    theirs = read_access(content.sd, other, ctx.host.groups, _pools(ctx))
    if mine is None or theirs is None or mine.read or not theirs.read:
        return []
    evidence = [config_item(ctx.host.name, f"anonymousAuthentication userName="
                            f"{settings.anonymous.user_name or '(empty: the pool identity)'}",
                            settings.source_of("anonymous.user_name", settings.anonymous.source)),
                config_item(ctx.host.name, f"application pool {pool.name} runs as {pool.identity}", pool.source),
                _acl_item(ctx, content, mine, identity), _acl_item(ctx, content, theirs, other)]
    if denial is not None:
        evidence.append(_freb_denial_item(ctx, *denial))
    loc = ctx.location(settings.path)
    if anon_is_pool:
        command = f"icacls {q(content.expanded_path)} /grant {q(identity + ':(OI)(CI)RX')}"
        notes = (f"Or make anonymous requests run as IUSR again (appcmd set config {q(loc)} "
                 f"-section:system.webServer/security/authentication/anonymousAuthentication /userName:IUSR "
                 f"/commit:apphost). iisfleet never runs this.")
        story = (f"Anonymous requests run as the application pool identity {identity} (anonymous userName is "
                 f"empty), but the folder grants read to IUSR and not to {identity}.")
    else:
        command = (f"& $env:windir\\system32\\inetsrv\\appcmd.exe set config {q(loc)} "
                   f"-section:system.webServer/security/authentication/anonymousAuthentication /userName:\"\" "
                   f"/commit:apphost")
        notes = (f"Makes anonymous requests run as {pool.identity}, which can read the content. Or grant IUSR "
                 f"read: icacls {q(content.expanded_path)} /grant \"IUSR:(OI)(CI)RX\". iisfleet never runs this.")
        story = (f"Anonymous requests run as IUSR, but the content folder only grants read to the custom "
                 f"application pool identity {pool.identity} (typical after switching the pool to a custom "
                 f"account and tightening the folder's ACL).")
    explanation = (f"{story} The static file handler therefore cannot open {content.expanded_path} for "
                   f"anonymous visitors and answers 401.3. Make the anonymous identity and the identity the "
                   f"ACL grants the same: either run anonymous as the pool identity or grant the anonymous "
                   f"identity read and execute.")
    return [make_finding(ctx, cause="anonymous-identity-vs-pool-identity",
                         title=f"Anonymous runs as {identity}, but only {other} can read the content",
                         severity="high", groups=ctx.groups, level="high",
                         reason=f"ACL grants {other} read and not {identity}, the anonymous identity",
                         evidence=evidence, explanation=explanation, fix=Fix(command, notes=notes),
                         uses=["acl", "config"], scope=settings.path)]


def content_acl_denied(ctx: RuleContext) -> list[Finding]:
    """The effective identity lacks read on the physical path."""
    selected = _select(ctx)
    if selected is None:
        return []
    url, identity, how, pool, content, denial = selected
    if identity is None:
        identity, how = "the request's identity", "unknown"
    evidence: list[EvidenceItem] = []
    answer = read_access(content.sd, identity, ctx.host.groups, _pools(ctx)) if content is not None else None
    found = denial[1] if denial is not None else None
    # the trace's file counts as access denied only when its error says so (0x80070005)
    traced = found is not None and bool(found.file) and found.error_code in ("", ACCESS_DENIED_HRESULT)
    extra_missing = []
    path = content.expanded_path if content is not None else "<physical path>"
    if content is None:
        if not traced:
            extra_missing.append(f"no content ACL collected for {ctx.site}{url}")
        level, reason = "low", "401.3 means an ACL denied access, but the ACL of the content was not collected"
    elif answer is None:
        if not traced:
            extra_missing.append(f"no security descriptor for {content.expanded_path}")
        level, reason = "low", "401.3 means an ACL denied access, but no descriptor was collected"
    elif answer.read and not (traced and found.file.rstrip("\\").lower() != path.rstrip("\\").lower()):
        return []  # the ACL we have allows it: leave the rows to the unexplained finding
    elif answer.read:
        # The folder lets the identity read, yet the trace shows the file below it refused: an ACL set on
        # the file (or a subfolder) the collected folder descriptor cannot show.
        evidence.append(_acl_item(ctx, content, answer, identity))
        level, reason = "medium", (f"{content.expanded_path} lets {identity} read, but the Failed Request Trace "
                                   f"shows access denied on {found.file}: an ACL below the folder")
        path = found.file
    else:
        evidence.append(_acl_item(ctx, content, answer, identity))
        level, reason = "high", f"the NTFS ACL of {content.expanded_path} gives {identity} no read access"
        share = read_access(content.share_sd, identity, ctx.host.groups, _pools(ctx)) if content.is_unc else None
        if share is not None:  # both descriptors are checked on a share: say what the other one does
            evidence.append(_acl_item(ctx, content, share, identity, share=True))
            if not share.read:
                reason = (f"both the share permissions of {content.share_name} and the NTFS ACL of "
                          f"{content.expanded_path} refuse {identity} read access")
    if traced and content is None or (traced and answer is None):
        level, reason = "medium", (f"the Failed Request Trace shows {found.module or 'IIS'} denied opening "
                                   f"{found.file} as {found.identity or identity}; the ACL itself was not collected")
        path = found.file
    if denial is not None:
        evidence.append(_freb_denial_item(ctx, *denial))
    explanation = (
        f"Requests for {ctx.site}{url} run as {identity} ({how}), and the file system ACL of {path} does not "
        f"let that identity read the content, so IIS answers 401.3. Grant read and execute to exactly this "
        f"identity (not Everyone) on the content folder, or change the authentication so the request runs as "
        f"an identity that already has access.")
    fix = Fix(f"icacls {q(path)} /grant {q(identity + ':(OI)(CI)RX')}", shell="cmd",
              notes="iisfleet never runs this.")
    return [make_finding(ctx, cause="content-acl-denied", title=f"{identity} cannot read {path}", severity="high",
                         groups=ctx.groups, level=level, reason=reason, evidence=evidence, explanation=explanation,
                         fix=fix, uses=["acl", "config"], extra_missing=extra_missing)]
