"""Windows identities: well-known SIDs, IIS virtual accounts and local group membership.

Shared by ``rights`` (user-rights checks) and ``sddl`` (ACL checks). ``groups`` is always the
``Get-LocalUserRight`` collector's list: ``[{"name", "sid", "members": [{"name", "sid"}]}]``.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence

EVERYONE = "S-1-1-0"
AUTHENTICATED_USERS = "S-1-5-11"
ANONYMOUS_LOGON = "S-1-5-7"
IUSR = "S-1-5-17"
IIS_IUSRS = "S-1-5-32-568"
GUESTS = "S-1-5-32-546"
USERS = "S-1-5-32-545"

#: SID -> the name Windows shows (facts.md §4.4 plus the common BUILTIN and NT AUTHORITY ones).
WELL_KNOWN_SIDS: dict[str, str] = {
    "S-1-0-0": "NULL SID",
    "S-1-1-0": "Everyone",
    "S-1-2-0": "LOCAL",
    "S-1-3-0": "CREATOR OWNER",
    "S-1-3-1": "CREATOR GROUP",
    "S-1-3-4": "OWNER RIGHTS",
    "S-1-5-1": "NT AUTHORITY\\DIALUP",
    "S-1-5-2": "NT AUTHORITY\\NETWORK",
    "S-1-5-3": "NT AUTHORITY\\BATCH",
    "S-1-5-4": "NT AUTHORITY\\INTERACTIVE",
    "S-1-5-6": "NT AUTHORITY\\SERVICE",
    "S-1-5-7": "NT AUTHORITY\\ANONYMOUS LOGON",
    "S-1-5-9": "NT AUTHORITY\\ENTERPRISE DOMAIN CONTROLLERS",
    "S-1-5-10": "NT AUTHORITY\\SELF",
    "S-1-5-11": "NT AUTHORITY\\Authenticated Users",
    "S-1-5-12": "NT AUTHORITY\\RESTRICTED",
    "S-1-5-13": "NT AUTHORITY\\TERMINAL SERVER USER",
    "S-1-5-14": "NT AUTHORITY\\REMOTE INTERACTIVE LOGON",
    "S-1-5-15": "NT AUTHORITY\\This Organization",
    "S-1-5-17": "NT AUTHORITY\\IUSR",
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-5-19": "NT AUTHORITY\\LOCAL SERVICE",
    "S-1-5-20": "NT AUTHORITY\\NETWORK SERVICE",
    "S-1-5-32-544": "BUILTIN\\Administrators",
    "S-1-5-32-545": "BUILTIN\\Users",
    "S-1-5-32-546": "BUILTIN\\Guests",
    "S-1-5-32-547": "BUILTIN\\Power Users",
    "S-1-5-32-548": "BUILTIN\\Account Operators",
    "S-1-5-32-549": "BUILTIN\\Server Operators",
    "S-1-5-32-550": "BUILTIN\\Print Operators",
    "S-1-5-32-551": "BUILTIN\\Backup Operators",
    "S-1-5-32-554": "BUILTIN\\Pre-Windows 2000 Compatible Access",
    "S-1-5-32-555": "BUILTIN\\Remote Desktop Users",
    "S-1-5-32-559": "BUILTIN\\Performance Log Users",
    "S-1-5-32-568": "BUILTIN\\IIS_IUSRS",
    "S-1-5-80-0": "NT SERVICE\\ALL SERVICES",
    "S-1-5-90-0": "Window Manager\\Window Manager Group",
}

#: Short names people and tools write without the authority prefix.
_NAME_TO_SID: dict[str, str] = {}
for _sid, _name in WELL_KNOWN_SIDS.items():
    _NAME_TO_SID[_name.lower()] = _sid
    _NAME_TO_SID[_name.rsplit("\\", 1)[-1].lower()] = _sid
_NAME_TO_SID.update({"iusr_anonymous": IUSR, "anonymous": ANONYMOUS_LOGON, "localsystem": "S-1-5-18",
                     "networkservice": "S-1-5-20", "localservice": "S-1-5-19"})

#: The logon-type groups Windows adds to a token (logon type -> SID).
LOGON_TYPE_GROUPS = {2: "S-1-5-4", 3: "S-1-5-2", 4: "S-1-5-3", 5: "S-1-5-6", 8: "S-1-5-2", 10: "S-1-5-4"}

_SID_RE = re.compile(r"^S-1-\d+(-\d+)*$", re.IGNORECASE)
APP_POOL_PREFIX = "iis apppool\\"


def is_sid(text: str) -> bool:
    return bool(_SID_RE.match(text.strip()))


def app_pool_sid(pool_name: str) -> str:
    """The ``IIS APPPOOL\\<pool>`` virtual-account SID (S-1-5-82-…), the same on every machine.

    Derived as SHA-1 over the lower-cased pool name in UTF-16LE, read as five little-endian
    32-bit sub-authorities; checked against the DefaultAppPool value in facts.md §4.4.
    """
    digest = hashlib.sha1(pool_name.lower().encode("utf-16-le")).digest()
    return "S-1-5-82-" + "-".join(str(part) for part in struct.unpack("<5I", digest))


def normalize_sid(text: str) -> str:
    return text.strip().upper()


def name_for_sid(sid: str) -> str:
    return WELL_KNOWN_SIDS.get(normalize_sid(sid), "")


def well_known_sid(name: str) -> str | None:
    """SID for a well-known or IIS virtual-account name, else None."""
    key = name.strip().lower()
    if key.startswith(APP_POOL_PREFIX):
        return app_pool_sid(name.strip()[len(APP_POOL_PREFIX):])
    return _NAME_TO_SID.get(key)


def names_match(a: str, b: str) -> bool:
    """Account names equal, allowing one side to leave out the domain (``IUSR`` = ``NT AUTHORITY\\IUSR``).

    One rule for the whole toolkit: :func:`toolkit.identity.same_account`.
    """
    from toolkit.identity import same_account

    return same_account(a, b)


def identity_sid(identity: str, groups: Sequence[dict] = (), explicit: str | None = None) -> str | None:
    """The SID of ``identity``: the one given, a well-known one, or one the host's group lists show."""
    if explicit:
        return normalize_sid(explicit)
    if is_sid(identity):
        return normalize_sid(identity)
    known = well_known_sid(identity)
    if known:
        return known
    for group in groups or ():
        if isinstance(group, dict) and names_match(str(group.get("name") or ""), identity) and group.get("sid"):
            return normalize_sid(str(group["sid"]))
        for member in _members(group):
            if names_match(str(member.get("name") or ""), identity) and member.get("sid"):
                return normalize_sid(str(member["sid"]))
    return None


def _members(group: object) -> list[dict]:
    if not isinstance(group, dict):
        return []
    return [m for m in group.get("members") or () if isinstance(m, dict)]


def token_members(identity: str, groups: Sequence[dict] = (), *, identity_sid_hint: str | None = None,
                  logon_type: int | None = None) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """What the identity's token would hold on this host.

    Returns ``(sid_or_name -> display name, via)``: every SID (or, where the host gave no SID, the
    lower-cased name) the identity counts as, and the path that put each group there, as
    ``(group display name, reason)``. Reasons: ``self``, ``implicit`` (Everyone, Authenticated
    Users, IIS_IUSRS for pool identities, the logon-type group) or ``member of X``.
    """
    own_sid = identity_sid(identity, groups, identity_sid_hint)
    display = name_for_sid(own_sid) if own_sid and not identity.strip() else identity.strip()
    members: dict[str, str] = {}
    via: list[tuple[str, str]] = []

    def add(key: str, name: str, reason: str) -> bool:
        key = normalize_sid(key) if is_sid(key) else key.lower()
        if key in members:
            return False
        members[key] = name
        via.append((name, reason))
        return True

    add(own_sid or identity, display, "self")
    if own_sid != ANONYMOUS_LOGON:
        # Everyone leaves out ANONYMOUS LOGON unless the EveryoneIncludesAnonymous policy is set.
        add(EVERYONE, "Everyone", "implicit")
        add(AUTHENTICATED_USERS, WELL_KNOWN_SIDS[AUTHENTICATED_USERS], "implicit")
    if identity.strip().lower().startswith(APP_POOL_PREFIX) or (own_sid or "").startswith("S-1-5-82-"):
        # Worker processes get IIS_IUSRS added at runtime unless manualGroupMembership is set.
        add(IIS_IUSRS, WELL_KNOWN_SIDS[IIS_IUSRS], "implicit")
    if logon_type in LOGON_TYPE_GROUPS:
        sid = LOGON_TYPE_GROUPS[logon_type]
        add(sid, WELL_KNOWN_SIDS[sid], "implicit")

    # Transitive closure over the host's local groups (local groups may hold other groups).
    changed = True
    while changed:
        changed = False
        for group in groups or ():
            if not isinstance(group, dict):
                continue
            gname = str(group.get("name") or "")
            gsid = str(group.get("sid") or "")
            gkey = normalize_sid(gsid) if gsid else gname.lower()
            if not gkey or gkey in members:
                continue
            for member in _members(group):
                msid = normalize_sid(str(member.get("sid") or "")) if member.get("sid") else ""
                mname = str(member.get("name") or "")
                if (msid and msid in members) or any(names_match(mname, n) for n in members.values() if n):
                    shown = gname or name_for_sid(gsid) or gsid
                    add(gsid or gname, shown, f"member of {shown} (through {mname or msid})")
                    changed = True
                    break
    return members, via
