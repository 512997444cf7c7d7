"""401.1/401.2 cause ``kerberos-etype-unsupported``: the account that decrypts the site's tickets has no key of
an encryption type the KDC will use for it.

The KDC encrypts a service ticket with a key the service account *has* and its msDS-SupportedEncryptionTypes
*allows*. Two common ways that set is empty:

- the attribute allows only AES (0x8/0x10) but the account's password was last set before the domain could
  make AES keys: AES keys are derived when a password is set on a Windows Server 2008 or later DC (domain
  functional level 2008+), so a password older than that holds only RC4/DES keys, and no AES ticket can be
  made until it is reset;
- the attribute allows only RC4 (0x4) while the KDC refuses RC4 (hardened since the November 2022 Kerberos
  updates, or RC4 disabled by policy): the KDC answers KDC_ERR_ETYPE_NOSUPP (0xE).

Either way the client gets no ticket; Negotiate falls back to NTLM where it can (the log shows Kerberos
failures next to NTLM logons) and fails with 401.1/401.2 where it cannot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from toolkit.diagnose.model import EvidenceItem, EvidenceSource, Finding, Fix
from toolkit.diagnose.rules.base import RuleContext, make_finding
from toolkit.diagnose.rules.kerberos import _context, _negotiate, _pool_item, _windows_items, decrypting_account
from toolkit.directory.accounts import enctype_names, filetime
from toolkit.identity import short_name

AES_BITS = 0x8 | 0x10
RC4_BIT = 0x4
DES_BITS = 0x1 | 0x2
#: Windows Server 2008, the first DC release able to derive AES keys, was released on 2008-02-27: a password
#: set before that date cannot have AES keys, whatever the domain's history.
FIRST_AES_DC = dt.datetime(2008, 2, 27, tzinfo=dt.timezone.utc)
#: KDC_ERR_ETYPE_NOSUPP as 4769/4771 write it in their Status field
ETYPE_NOSUPP = 0xE


def _status(value: Any) -> int | None:
    try:
        return int(str(value).strip(), 0)
    except ValueError:
        return None


def kdc_refusals(events: Any, account: str) -> list[Mapping[str, Any]]:
    """4769 (service ticket) / 4771 (pre-authentication) records with Status 0xE that name ``account`` as the
    service or the user. They live in a domain controller's Security log: present when the fleet includes a
    DC or an admin exported one next to the logs (iisfleet analyze)."""
    name = short_name(account).rstrip("$").lower()
    out = []
    for e in events:
        if int(e.get("id") or 0) not in (4769, 4771):
            continue
        data = e.get("data") if isinstance(e.get("data"), Mapping) else {}
        if _status(data.get("Status")) != ETYPE_NOSUPP:
            continue
        named = {short_name(str(data.get(k) or "")).split("@")[0].rstrip("$").lower()
                 for k in ("ServiceName", "TargetUserName")}
        if name in named:
            out.append(e)
    return out


def _event_item(host: str, e: Mapping[str, Any]) -> EvidenceItem:
    data = e.get("data") if isinstance(e.get("data"), Mapping) else {}
    who = data.get("ServiceName") or data.get("TargetUserName") or "?"
    return EvidenceItem("event", host, f"{e.get('id')} {e.get('time_utc', '')} {who} Status 0xE "
                        f"(KDC_ERR_ETYPE_NOSUPP) on {e.get('machine') or 'the DC'}",
                        EvidenceSource(file=str(e.get("log") or "Security"), record_id=e.get("record_id")))


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d")


def kerberos_etype_unsupported(ctx: RuleContext) -> list[Finding]:
    """No usable key: AES-only with a password older than the domain's AES keys, or RC4-only and refused."""
    directory = ctx.fleet.directory if ctx.fleet.has_directory else None
    if directory is None:
        return []
    if ctx.substatus == 1:
        found = _context(ctx)
        if found is None:
            return []
        groups, settings, pool = found
    else:  # 401.2: the client had no ticket to offer and NTLM was not accepted either
        settings = ctx.settings(ctx.groups)
        if not _negotiate(settings):
            return []
        assert settings is not None
        groups, pool = list(ctx.groups), ctx.pool()
    keeper = decrypting_account(ctx, settings, pool)
    state = directory.account(keeper) if keeper else None
    if state is None or state.enctypes is None:
        return []
    etypes = state.enctypes
    refusals = kdc_refusals(ctx.host.events, keeper)
    password = filetime(state.pwd_last_set)
    since = getattr(directory, "aes_keys_since", None)
    allowed = ",".join(enctype_names(etypes)) or "none"
    sam = keeper.rsplit("\\", 1)[-1]
    if etypes & AES_BITS and not etypes & (RC4_BIT | DES_BITS):
        if password is None:
            return []
        if since is not None:
            if password >= since:
                return []  # AES-only with AES keys: the correct hardened setup
            level, reason = "high", (f"AES only (0x{etypes:x}) and pwdLastSet {_iso(password)} is before the domain "
                                     f"made AES keys ({_iso(since)})")
        elif password < FIRST_AES_DC:
            level, reason = "high", (f"AES only (0x{etypes:x}) and pwdLastSet {_iso(password)} is before any DC "
                                     f"could make AES keys (Windows Server 2008, {_iso(FIRST_AES_DC)})")
        elif refusals:
            level, reason = "medium", (f"AES only (0x{etypes:x}), the KDC refused with 0xE; the date the domain got "
                                       f"AES keys is not known, so whether pwdLastSet {_iso(password)} predates it "
                                       f"is not")
        else:
            return []
        problem = (f"allows only {allowed}, but its password was last set on {_iso(password)}, before the domain "
                   f"could derive AES keys, so the account holds no AES key")
        remedy = ("Reset the account's password (twice, some time apart, so every DC and the previous-password "
                  "slot hold AES keys) and give the new password to the application pool")
        fix_command = ("Reset-ComputerMachinePassword; Reset-ComputerMachinePassword" if state.is_computer else
                       f"Set-ADAccountPassword -Identity {sam} -Reset; Set-ADAccountPassword -Identity {sam} -Reset")
    elif etypes & RC4_BIT and not etypes & AES_BITS and refusals:
        level, reason = "high", f"RC4 only (0x{etypes:x}) and the KDC refused with 0xE (KDC_ERR_ETYPE_NOSUPP)"
        problem = f"allows only {allowed}, and the KDC refuses RC4"
        remedy = "Allow AES on the account, then reset its password once so AES keys exist"
        fix_command = (f"Set-AD{'Computer' if state.is_computer else 'User'} -Identity {sam.rstrip('$')} "
                       f"-KerberosEncryptionType AES128,AES256")
    else:
        return []
    explanation = (
        f"Tickets for this site are decrypted with the key of {keeper}. In the directory its "
        f"msDS-SupportedEncryptionTypes {problem}. The KDC then has no key it may use to encrypt the service ticket "
        f"and answers KDC_ERR_ETYPE_NOSUPP (0xE; 4769/4771 on the domain controller), so clients get no Kerberos "
        f"ticket: Negotiate falls back to NTLM where it can, and logons fail with 401 where it cannot. {remedy}.")
    evidence = _windows_items(ctx, settings) + ([_pool_item(ctx, pool)] if pool else [])
    evidence.append(EvidenceItem("directory", ctx.host.name, state.summary(directory.queried or
                                                                           dt.datetime.now(dt.timezone.utc)),
                                 EvidenceSource(file=directory.source(), element=state.dn)))
    if since is not None:
        evidence.append(EvidenceItem("directory", ctx.host.name, f"the domain makes AES keys since {_iso(since)}",
                                     EvidenceSource(file=directory.source())))
    evidence += [_event_item(ctx.host.name, e) for e in refusals[:3]]
    fix = Fix(fix_command, notes=("Run Reset-ComputerMachinePassword on the web server itself. "
                                  if state.is_computer else "Each reset asks for the new password. ")
              + "Check with `klist get HTTP/<name>` on a client afterwards. iisfleet never runs this.")
    return [make_finding(ctx, cause="kerberos-etype-unsupported",
                         title=f"No usable Kerberos key on {keeper} ({allowed})", severity="high", groups=groups,
                         level=level, reason=reason, evidence=evidence, explanation=explanation, fix=fix,
                         uses=["config"], scope=settings.path)]
