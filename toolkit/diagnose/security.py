"""Identity, right and ACL questions the rules ask, answered from one host's evidence.

The parsers own the real logic (``toolkit.parsers.rights.check_right``,
``toolkit.parsers.sddl.effective_access``/``sids_for_identity``); this module calls them and keeps a
small name-based fallback for when they are unavailable or cannot resolve a SID, so that a
diagnosis never fails because one helper is missing. Names are compared case-insensitively, with
or without their domain part.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.identity import is_domain_account, same_account, short_name
from toolkit.parsers.types import AppPool, Principal, SecurityDescriptor

__all__ = ["is_domain_account", "same_account", "short_name"]  # re-exported: the rules import them from here

WELL_KNOWN: dict[str, str] = {
    "iusr": "S-1-5-17",
    "nt authority\\iusr": "S-1-5-17",
    "everyone": "S-1-1-0",
    "guests": "S-1-5-32-546",
    "builtin\\guests": "S-1-5-32-546",
    "users": "S-1-5-32-545",
    "builtin\\users": "S-1-5-32-545",
    "iis_iusrs": "S-1-5-32-568",
    "builtin\\iis_iusrs": "S-1-5-32-568",
    "authenticated users": "S-1-5-11",
    "nt authority\\authenticated users": "S-1-5-11",
    "nt authority\\network service": "S-1-5-20",
    "nt authority\\system": "S-1-5-18",
    "nt authority\\local service": "S-1-5-19",
    "administrators": "S-1-5-32-544",
    "builtin\\administrators": "S-1-5-32-544",
}
SID_NAMES: dict[str, str] = {
    "S-1-5-17": "IUSR", "S-1-1-0": "Everyone", "S-1-5-32-546": "Guests", "S-1-5-32-545": "Users",
    "S-1-5-32-568": "IIS_IUSRS", "S-1-5-11": "Authenticated Users", "S-1-5-20": "NETWORK SERVICE",
    "S-1-5-18": "SYSTEM", "S-1-5-19": "LOCAL SERVICE", "S-1-5-32-544": "Administrators",
}
#: Everyone and the built-in groups every non-anonymous logon token carries.
IMPLICIT_SIDS = {"S-1-1-0"}
AUTHENTICATED_IMPLICIT = {"S-1-5-11", "S-1-5-32-545"}

READ_BITS = 0x1 | 0x80000000 | 0x10000000  # FILE_READ_DATA | GENERIC_READ | GENERIC_ALL
WRITE_BITS = 0x2 | 0x40000000 | 0x10000000  # FILE_WRITE_DATA | GENERIC_WRITE | GENERIC_ALL


def is_builtin_anonymous(user_name: str) -> bool:
    return short_name(user_name) == "iusr"


def is_custom_account(pool: AppPool | None) -> bool:
    return pool is not None and pool.identity_type == "SpecificUser" and bool(pool.user_name)


@dataclass(frozen=True)
class Membership:
    group: str
    sid: str


def memberships(identity: str, groups: Sequence[Mapping[str, Any]], identity_sid: str | None = None) \
        -> list[Membership]:
    """Local groups (from Get-LocalUserRight) that list ``identity`` as a member."""
    out = []
    sid = identity_sid or WELL_KNOWN.get(identity.strip().lower()) or WELL_KNOWN.get(
        "nt authority\\" + short_name(identity))
    for g in groups:
        for m in g.get("members") or []:
            if (sid and str(m.get("sid") or "") == sid) or same_account(str(m.get("name") or ""), identity):
                out.append(Membership(str(g.get("name") or ""), str(g.get("sid") or "")))
                break
    return out


def identity_sids(identity: str, groups: Sequence[Mapping[str, Any]]) -> set[str]:
    """SIDs a token for ``identity`` would carry, as far as this host's evidence tells."""
    try:
        from toolkit.parsers.sddl import sids_for_identity
    except ImportError:
        sids_for_identity = None
    sids: set[str] = set()
    if sids_for_identity is not None:
        try:
            sids |= set(sids_for_identity(identity, groups))
        except Exception:  # noqa: BLE001 - fall back to what we can resolve by name
            pass
    if short_name(identity) in ("iusr", "network service", "system", "local service"):
        sids.add(WELL_KNOWN["nt authority\\" + short_name(identity)])
    elif identity.strip().lower().startswith("iis apppool\\"):
        sids.add(app_pool_sid(identity.split("\\", 1)[1]))
    sids |= {m.sid for m in memberships(identity, groups) if m.sid}
    # The host shows a domain account's own SID where it lists it as a group member.
    for g in groups:
        for m in g.get("members") or []:
            if m.get("sid") and same_account(str(m.get("name") or ""), identity):
                sids.add(str(m["sid"]))
    sids |= IMPLICIT_SIDS
    if not is_builtin_anonymous(identity):
        sids |= AUTHENTICATED_IMPLICIT
    return sids


def identity_names(identity: str, groups: Sequence[Mapping[str, Any]]) -> list[str]:
    names = [identity] + [m.group for m in memberships(identity, groups)] + ["Everyone"]
    if not is_builtin_anonymous(identity):
        names += ["Authenticated Users", "Users"]
    return names


@dataclass(frozen=True)
class RightAnswer:
    right: str
    holds: bool
    via: str | None
    via_group: bool  # held through a group rather than the identity itself


def check_right(identity: str, right: str, rights: Mapping[str, tuple[Principal, ...]],
                groups: Sequence[Mapping[str, Any]]) -> RightAnswer:
    """Does ``identity`` hold ``right`` (directly or via a group)?"""
    principals = rights.get(right, ())
    try:
        from toolkit.parsers.rights import check_right as parser_check
    except ImportError:
        parser_check = None
    if parser_check is not None:
        try:
            result = parser_check(identity, right, rights, groups)
        except Exception:  # noqa: BLE001 - fall back to name matching below
            result = None
        if result is not None:
            via = result.via or identity
            return RightAnswer(right, bool(result.holds), via if result.holds else None,
                               bool(result.holds) and not same_account(via, identity))
    sids = identity_sids(identity, groups)
    names = identity_names(identity, groups)
    for p in principals:
        pname = p.name or SID_NAMES.get(p.sid or "", "") or (p.sid or "")
        if (p.sid and p.sid in sids) or any(same_account(pname, n) for n in names if p.name):
            return RightAnswer(right, True, pname, not (same_account(pname, identity)
                                                        or (p.sid and p.sid == WELL_KNOWN.get(identity.lower()))))
    return RightAnswer(right, False, None, False)


@dataclass(frozen=True)
class AclAnswer:
    read: bool
    deciding_ace: str  # a one-line description of the ACE that decided it ("" when nothing matched)
    trustees_with_read: tuple[str, ...]


def app_pool_sid(pool: str) -> str:
    """``IIS APPPOOL\\<pool>``'s virtual-account SID (SHA-1 of the lower-case name in UTF-16LE)."""
    digest = hashlib.sha1(pool.lower().encode("utf-16-le")).digest()
    return "S-1-5-82-" + "-".join(str(part) for part in struct.unpack("<5I", digest))


def _ace_trustee(ace: Any, names: Mapping[str, str] | None = None) -> str:
    return (ace.trustee_name or SID_NAMES.get(ace.trustee_sid, "") or (names or {}).get(ace.trustee_sid, "")
            or ace.trustee_sid)


def _ace_text(ace: Any, names: Mapping[str, str] | None = None) -> str:
    kind = "Deny" if ace.ace_type.upper().startswith("D") else "Allow"
    return f"{kind} {_ace_trustee(ace, names)} mask 0x{ace.rights:08X}{' (inherited)' if ace.inherited else ''}"


def _ace_matches(ace: Any, sids: set[str], names: list[str]) -> bool:
    if ace.trustee_sid in sids:
        return True
    trustee = ace.trustee_name or SID_NAMES.get(ace.trustee_sid, "")
    return bool(trustee) and any(same_account(trustee, n) for n in names)


def read_access(sd: SecurityDescriptor | None, identity: str, groups: Sequence[Mapping[str, Any]],
                pools: Sequence[str] = ()) -> AclAnswer | None:
    """Can ``identity`` read through ``sd``? None when there is no descriptor to judge by.

    ``pools`` are application pool names, used only to print their virtual-account SIDs by name.
    """
    if sd is None:
        return None
    sid_names = {app_pool_sid(p): f"IIS APPPOOL\\{p}" for p in pools}
    for g in groups:  # the host named these SIDs for us in its group listing
        if g.get("sid") and g.get("name"):
            sid_names.setdefault(str(g["sid"]), str(g["name"]))
        for m in g.get("members") or []:
            if m.get("sid") and m.get("name"):
                sid_names.setdefault(str(m["sid"]), str(m["name"]))
    with_read = tuple(sorted({_ace_trustee(a, sid_names) for a in sd.dacl
                              if not a.ace_type.upper().startswith("D") and a.rights & READ_BITS}))
    if not sd.dacl_present:
        return AclAnswer(True, "no DACL (everyone has access)", with_read)
    sids = identity_sids(identity, groups)
    names = identity_names(identity, groups)
    try:
        from toolkit.parsers.sddl import effective_access
    except ImportError:
        effective_access = None
    if effective_access is not None:
        try:
            check = effective_access(sd, sids)
            if check.denied_by is not None:
                return AclAnswer(False, _ace_text(check.denied_by, sid_names), with_read)
            if check.read:
                return AclAnswer(True, _ace_text(check.granted_by[0], sid_names) if check.granted_by else "",
                                 with_read)
        except Exception:  # noqa: BLE001
            pass
    # Name-aware walk (catches trustees the parser could only name, e.g. IIS APPPOOL\x).
    for ace in sd.dacl:
        if not (ace.rights & READ_BITS) or not _ace_matches(ace, sids, names):
            continue
        if ace.ace_type.upper().startswith("D"):
            return AclAnswer(False, _ace_text(ace, sid_names), with_read)
        return AclAnswer(True, _ace_text(ace, sid_names), with_read)
    return AclAnswer(False, "", with_read)


def write_access(sd: SecurityDescriptor | None, identity: str, groups: Sequence[Mapping[str, Any]]) -> AclAnswer | None:
    """Can ``identity`` write (FILE_WRITE_DATA) through ``sd``? The first ACE of the DACL that is about writing
    and names one of the identity's SIDs or names decides, as in the Windows access check on a canonical
    DACL; inherit-only ACEs do not apply to the object itself. None without a descriptor."""
    if sd is None:
        return None
    with_write = tuple(sorted({_ace_trustee(a) for a in sd.dacl
                               if not a.ace_type.upper().startswith("D") and a.rights & WRITE_BITS}))
    if not sd.dacl_present:
        return AclAnswer(True, "no DACL (everyone has access)", with_write)
    sids, names = identity_sids(identity, groups), identity_names(identity, groups)
    for ace in sd.dacl:
        inherit_only = "IO" in [ace.flags.upper()[i:i + 2] for i in range(0, len(ace.flags), 2)]
        if inherit_only or not (ace.rights & WRITE_BITS) or not _ace_matches(ace, sids, names):
            continue
        return AclAnswer(not ace.ace_type.upper().startswith("D"), _ace_text(ace), with_write)
    return AclAnswer(False, "", with_write)


@dataclass(frozen=True)
class UncAccess:
    """What an identity may do with content on a share: Windows checks the share's permissions and the NTFS
    ACL and grants only what both allow. ``*_decided_by`` names the descriptor(s) that refused ("share",
    "NTFS", "share and NTFS"), "" when the access is granted or nothing was collected to judge by."""

    read: bool | None
    write: bool | None
    read_decided_by: str
    write_decided_by: str
    ntfs_read: AclAnswer | None
    share_read: AclAnswer | None
    ntfs_write: AclAnswer | None
    share_write: AclAnswer | None


def _refused_by(ntfs: AclAnswer | None, share: AclAnswer | None) -> tuple[bool | None, str]:
    known = [a for a in (ntfs, share) if a is not None]
    if not known:
        return None, ""
    refusing = [name for name, a in (("share", share), ("NTFS", ntfs)) if a is not None and not a.read]
    return not refusing, " and ".join(refusing)


def unc_access(ntfs_sd: SecurityDescriptor | None, share_sd: SecurityDescriptor | None, identity: str,
               groups: Sequence[Mapping[str, Any]], pools: Sequence[str] = ()) -> UncAccess:
    """Read and write for ``identity`` through both descriptors of a UNC path (either may be missing)."""
    ntfs_read, share_read = read_access(ntfs_sd, identity, groups, pools), read_access(share_sd, identity, groups, pools)
    ntfs_write, share_write = write_access(ntfs_sd, identity, groups), write_access(share_sd, identity, groups)
    read, read_by = _refused_by(ntfs_read, share_read)
    write, write_by = _refused_by(ntfs_write, share_write)
    return UncAccess(read, write, read_by, write_by, ntfs_read, share_read, ntfs_write, share_write)
