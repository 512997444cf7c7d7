"""SDDL strings (``Get-Acl`` ``.Sddl`` of content folders and shares) → ACEs and effective access.

Only what content ACLs need: owner, group, the DACL with its flags, and the ACE types Windows
writes into file-system DACLs (``A``, ``D`` and their object/callback variants). Generic rights are
mapped with the file-object mapping, so ``GR`` counts as FILE_GENERIC_READ.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from toolkit.errors import InputError

from ._identity import is_sid, name_for_sid, normalize_sid, token_members
from .types import AccessCheck, Ace, SecurityDescriptor

#: ASCII only: str.isdigit() accepts "²" and other digits int() refuses.
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]{1,8}")
_DECIMAL_DIGITS = re.compile(r"[0-9]{1,10}")

MAX_SDDL_CHARS = 64 * 1024

#: SDDL two-letter SID aliases (the ones content ACLs use).
SID_ALIASES: dict[str, str] = {
    "AN": "S-1-5-7", "AO": "S-1-5-32-548", "AU": "S-1-5-11", "BA": "S-1-5-32-544", "BG": "S-1-5-32-546",
    "BO": "S-1-5-32-551", "BU": "S-1-5-32-545", "CG": "S-1-3-1", "CO": "S-1-3-0", "IU": "S-1-5-4",
    "LS": "S-1-5-19", "NS": "S-1-5-20", "NU": "S-1-5-2", "OW": "S-1-3-4", "PO": "S-1-5-32-550",
    "PU": "S-1-5-32-547", "RC": "S-1-5-12", "RD": "S-1-5-32-555", "SO": "S-1-5-32-549", "SU": "S-1-5-6",
    "SY": "S-1-5-18", "WD": "S-1-1-0", "PS": "S-1-5-10", "ED": "S-1-5-9", "AC": "S-1-15-2-1",
}

FILE_READ_DATA = 0x1
FILE_EXECUTE = 0x20
FILE_GENERIC_READ = 0x120089
FILE_GENERIC_WRITE = 0x120116
FILE_GENERIC_EXECUTE = 0x1200A0
FILE_ALL_ACCESS = 0x1F01FF
GENERIC_READ, GENERIC_WRITE, GENERIC_EXECUTE, GENERIC_ALL = 0x80000000, 0x40000000, 0x20000000, 0x10000000

RIGHT_STRINGS: dict[str, int] = {
    "GA": GENERIC_ALL, "GR": GENERIC_READ, "GW": GENERIC_WRITE, "GX": GENERIC_EXECUTE,
    "FA": FILE_ALL_ACCESS, "FR": FILE_GENERIC_READ, "FW": FILE_GENERIC_WRITE, "FX": FILE_GENERIC_EXECUTE,
    "RC": 0x20000, "SD": 0x10000, "WD": 0x40000, "WO": 0x80000,
    "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10, "WP": 0x20, "DT": 0x40, "LO": 0x80, "CR": 0x100,
    "KA": 0xF003F, "KR": 0x20019, "KW": 0x20006, "KX": 0x20019,
}
_ACE_FLAGS = ("OI", "CI", "NP", "IO", "ID", "SA", "FA", "TP", "CR")
_ALLOW_TYPES = {"A", "OA", "XA", "ZA"}
_DENY_TYPES = {"D", "OD", "XD"}
_ACE_RE = re.compile(r"\(([^()]*)\)")


def map_generic(mask: int) -> int:
    """Replace generic bits with the file-object rights they stand for."""
    if mask & GENERIC_READ:
        mask |= FILE_GENERIC_READ
    if mask & GENERIC_WRITE:
        mask |= FILE_GENERIC_WRITE
    if mask & GENERIC_EXECUTE:
        mask |= FILE_GENERIC_EXECUTE
    if mask & GENERIC_ALL:
        mask |= FILE_ALL_ACCESS
    return mask & ~(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL)


#: Domain-relative aliases (Domain Users, Domain Admins, ...). The SDDL string does not carry the domain's
#: SID, so they become a placeholder domain (S-1-5-21-0-0-0) with the right RID: parsing succeeds and the
#: ACE is shown, but it cannot match a real account's token, and effective access says so only as far as
#: the other ACEs allow.
DOMAIN_RELATIVE_RIDS: dict[str, int] = {
    "DA": 512, "DU": 513, "DG": 514, "DC": 515, "DD": 516, "CA": 517, "SA": 518, "EA": 519, "PA": 520,
    "CN": 522, "RO": 498,
}
PLACEHOLDER_DOMAIN = "S-1-5-21-0-0-0"


def _sid(token: str) -> str:
    token = token.strip()
    if token.upper() in SID_ALIASES:
        return SID_ALIASES[token.upper()]
    if token.upper() in DOMAIN_RELATIVE_RIDS:
        return f"{PLACEHOLDER_DOMAIN}-{DOMAIN_RELATIVE_RIDS[token.upper()]}"
    if is_sid(token):
        return normalize_sid(token)
    raise InputError(f"unknown trustee {token!r} in SDDL", field="sddl")


def _rights(token: str) -> int:
    token = token.strip()
    if token.lower().startswith("0x"):
        if not _HEX_DIGITS.fullmatch(token[2:]):
            raise InputError(f"access mask {token!r} in SDDL is not a hexadecimal number", field="sddl")
        return int(token, 16)
    if _DECIMAL_DIGITS.fullmatch(token):
        return int(token)
    if token.isdigit():  # other Unicode digits (², ٣) that int() refuses
        raise InputError(f"access mask {token!r} in SDDL is not a decimal number", field="sddl")
    mask = 0
    for i in range(0, len(token), 2):
        part = token[i:i + 2].upper()
        if part not in RIGHT_STRINGS:
            raise InputError(f"unknown access right {part!r} in SDDL", field="sddl")
        mask |= RIGHT_STRINGS[part]
    return mask


def _split_components(text: str) -> dict[str, str]:
    """``O:…G:…D:…S:…`` → component letter → body (parentheses may contain ':' and letters)."""
    components: dict[str, str] = {}
    i, current, start, depth = 0, None, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in "OGDS" and i + 1 < len(text) and text[i + 1] == ":":
            if current is not None:
                components[current] = text[start:i]
            elif i > 0:
                raise InputError(f"text before the first component: {text[:i][:40]!r}", field="sddl")
            current, start = ch, i + 2
            i += 2
            continue
        i += 1
    if current is None:
        raise InputError("no O:, G:, D: or S: component", field="sddl")
    components[current] = text[start:]
    return components


def parse_sddl(text: str, where: str | None = None) -> SecurityDescriptor:
    """Parse an SDDL string. Unknown rights, trustees or ACE syntax raise :class:`InputError`.

    ``where`` (e.g. the content path the SDDL belongs to) is named in the error.
    """
    try:
        return _parse_sddl(text)
    except InputError as exc:
        if where is None:
            raise
        raise InputError(exc.message.removeprefix("sddl: "), path=where, field="sddl") from None


def _parse_sddl(text: str) -> SecurityDescriptor:
    if not isinstance(text, str):
        raise InputError("SDDL is not a string", field="sddl")
    original = text
    text = text.strip()
    if len(text) > MAX_SDDL_CHARS:
        raise InputError(f"SDDL longer than {MAX_SDDL_CHARS} characters", field="sddl")
    parts = _split_components(text)
    owner = _sid(parts["O"]) if parts.get("O") else None
    group = _sid(parts["G"]) if parts.get("G") else None
    dacl_text = parts.get("D")
    if dacl_text is None:
        return SecurityDescriptor(owner=owner, group=group, dacl=(), dacl_present=False, sddl=original)
    first = dacl_text.find("(")
    flags = dacl_text if first < 0 else dacl_text[:first]
    leftover = re.sub(r"NO_ACCESS_CONTROL|AI|AR|P", "", flags.upper()).strip()
    if leftover:
        raise InputError(f"unknown DACL flags {flags[:40]!r}", field="sddl")
    if "NO_ACCESS_CONTROL" in flags.upper():
        # A NULL DACL: everyone gets full access. Modelled as one allow-all ACE for Everyone.
        null_ace = Ace("A", "", FILE_ALL_ACCESS, "S-1-1-0", "Everyone")
        return SecurityDescriptor(owner, group, (null_ace,), dacl_protected="P" in flags.replace("NO_ACCESS_CONTROL", ""),
                                  dacl_present=True, sddl=original)
    body = "" if first < 0 else dacl_text[first:]
    if _ACE_RE.sub("", body).strip():
        raise InputError("text between ACEs in the DACL", field="sddl")
    aces = []
    for ace_text in _ACE_RE.findall(body):
        fields = ace_text.split(";")
        if len(fields) < 6:
            raise InputError(f"ACE ({ace_text[:60]}) has {len(fields)} fields, expected 6", field="sddl")
        ace_type, ace_flags, rights, _object, _inherit_object, trustee = fields[:6]
        ace_type = ace_type.strip().upper()
        if ace_type not in _ALLOW_TYPES | _DENY_TYPES | {"AU", "AL", "ML", "OU", "OL", "SP", "RA", "SD"}:
            raise InputError(f"unknown ACE type {ace_type!r}", field="sddl")
        flag_text = ace_flags.strip().upper()
        for i in range(0, len(flag_text), 2):
            if flag_text[i:i + 2] not in _ACE_FLAGS:
                raise InputError(f"unknown ACE flag {flag_text[i:i + 2]!r}", field="sddl")
        sid = _sid(trustee)
        aces.append(Ace(
            ace_type="A" if ace_type in _ALLOW_TYPES else "D" if ace_type in _DENY_TYPES else ace_type,
            flags=flag_text, rights=_rights(rights), trustee_sid=sid, trustee_name=name_for_sid(sid),
            inherited="ID" in [flag_text[i:i + 2] for i in range(0, len(flag_text), 2)],
        ))
    return SecurityDescriptor(owner=owner, group=group, dacl=tuple(aces), dacl_protected="P" in flags.upper(),
                              dacl_present=True, sddl=original)


def _applies_to_object(ace: Ace) -> bool:
    return "IO" not in [ace.flags[i:i + 2] for i in range(0, len(ace.flags), 2)]


def effective_access(sd: SecurityDescriptor, sids: Collection[str]) -> AccessCheck:
    """Read (FILE_READ_DATA) and execute (FILE_EXECUTE) for a token holding ``sids``.

    Walks the DACL in order like the Windows access check: for each right the first ACE that
    speaks about it (for one of ``sids``) decides. Windows writes explicit denies first and
    inherited ACEs last, so on such a DACL a deny beats any allow at its level. Inherit-only ACEs
    are skipped; a missing DACL (``dacl_present=False`` from a descriptor without ``D:``) grants all.
    """
    wanted = {normalize_sid(sid) for sid in sids if is_sid(sid)}
    if not sd.dacl_present:
        return AccessCheck(read=True, execute=True)
    decided: dict[int, tuple[bool, Ace]] = {}
    for ace in sd.dacl:
        if not _applies_to_object(ace) or normalize_sid(ace.trustee_sid) not in wanted:
            continue
        mask = map_generic(ace.rights)
        for bit in (FILE_READ_DATA, FILE_EXECUTE):
            if bit in decided or not mask & bit:
                continue
            if ace.ace_type == "D":
                decided[bit] = (False, ace)
            elif ace.ace_type == "A":
                decided[bit] = (True, ace)
    read = decided.get(FILE_READ_DATA, (False, None))
    execute = decided.get(FILE_EXECUTE, (False, None))
    granted = tuple(dict.fromkeys(ace for ok, ace in (read, execute) if ace is not None and ok))
    return AccessCheck(read=read[0], execute=execute[0],
                       denied_by=read[1] if read[1] is not None and not read[0] else None,
                       granted_by=granted,
                       execute_denied_by=execute[1] if execute[1] is not None and not execute[0] else None)


def sids_for_identity(identity: str, groups: Sequence[dict] = (), *, identity_sid: str | None = None,
                      logon_type: int | None = None) -> set[str]:
    """Every SID a token for ``identity`` holds on this host, as far as the evidence shows.

    Knows ``IUSR`` (S-1-5-17), ``IIS APPPOOL\\<pool>`` (derived S-1-5-82 SID, plus IIS_IUSRS),
    NETWORK SERVICE and the other built-in accounts, the implicit Everyone and Authenticated
    Users, the logon-type group when ``logon_type`` is given, and the host's local groups
    (``Get-LocalUserRight`` ``groups``) transitively. A domain user whose SID the host did not show
    contributes only its groups.
    """
    members, _ = token_members(identity, groups, identity_sid_hint=identity_sid, logon_type=logon_type)
    return {key for key in members if is_sid(key)}


__all__ = ["parse_sddl", "effective_access", "sids_for_identity", "map_generic", "SID_ALIASES"]
