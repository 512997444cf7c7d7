"""Does an identity hold (or is it denied) a user right on a host, and through which group.

Inputs are what ``Get-LocalUserRight`` returns, already parsed: ``rights`` from
:func:`toolkit.parsers.secedit.parse_secedit` and ``groups`` (the host's local groups with members).
Membership is followed transitively, and the implicit groups every token carries are added
(Everyone, Authenticated Users, IIS_IUSRS for ``IIS APPPOOL\\x`` identities, the logon-type group).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._identity import is_sid, names_match, normalize_sid, token_members
from .types import Principal, RightCheck

#: The allow/deny pair that governs each logon type (facts.md §4.1).
LOGON_RIGHTS: dict[int, tuple[str, str]] = {
    2: ("SeInteractiveLogonRight", "SeDenyInteractiveLogonRight"),
    3: ("SeNetworkLogonRight", "SeDenyNetworkLogonRight"),
    4: ("SeBatchLogonRight", "SeDenyBatchLogonRight"),
    5: ("SeServiceLogonRight", "SeDenyServiceLogonRight"),
    8: ("SeNetworkLogonRight", "SeDenyNetworkLogonRight"),
    10: ("SeRemoteInteractiveLogonRight", "SeDenyRemoteInteractiveLogonRight"),
}

#: IIS ``logonMethod`` values → the LogonUser logon type (facts.md §3.1).
LOGON_METHOD_TYPES = {"interactive": 2, "batch": 4, "network": 3, "cleartext": 8}


def check_right(identity: str, right: str, rights: Mapping[str, Sequence[Principal]],
                groups: Sequence[dict] = (), identity_sid: str | None = None, *,
                logon_type: int | None = None) -> RightCheck:
    """Whether ``identity`` is among the holders of ``right`` (directly or through a group).

    ``via`` names the holder that matched, as the host shows it (``BUILTIN\\Guests``); ``how`` says
    how the identity counts as that holder (``member of Guests (through NT AUTHORITY\\IUSR)``). A
    right missing from ``rights`` has no holders.
    """
    members, via = token_members(identity, groups, identity_sid_hint=identity_sid, logon_type=logon_type)
    reasons = {name.lower(): reason for name, reason in via}
    best: tuple[int, str, str] | None = None
    for holder in rights.get(right, ()):
        matched_name = _match(holder, members)
        if matched_name is None:
            continue
        how = reasons.get(matched_name.lower(), "")
        # Prefer the most telling match: the identity itself, then a real group, then an implicit one.
        rank = 0 if how == "self" else 2 if how == "implicit" else 1
        if best is None or rank < best[0]:
            best = (rank, holder.name or matched_name or holder.sid or "", how)
    if best is None:
        return RightCheck(right=right, holds=False, via=None)
    return RightCheck(right=right, holds=True, via=best[1], how=best[2])


def _match(holder: Principal, members: dict[str, str]) -> str | None:
    if holder.sid and normalize_sid(holder.sid) in members:
        return members[normalize_sid(holder.sid)]
    if holder.name:
        if is_sid(holder.name) and normalize_sid(holder.name) in members:
            return members[normalize_sid(holder.name)]
        for name in members.values():
            if name and names_match(holder.name, name):
                return name
        if holder.name.lower() in members:
            return members[holder.name.lower()]
    return None


@dataclass(frozen=True)
class LogonCheck:
    """Can ``identity`` log on with ``logon_type``: the allow right, the deny right, the verdict."""

    identity: str
    logon_type: int
    allowed: bool
    allow: RightCheck
    deny: RightCheck

    @property
    def reason(self) -> str:
        if self.deny.holds:
            return f"{self.deny.right} is held by {self.deny.via} ({self.deny.how})"
        if not self.allow.holds:
            return f"{self.allow.right} is not held by {self.identity} or any of its groups"
        return f"{self.allow.right} is held by {self.allow.via} ({self.allow.how})"


def check_logon(identity: str, logon_type: int | str, rights: Mapping[str, Sequence[Principal]],
                groups: Sequence[dict] = (), identity_sid: str | None = None) -> LogonCheck:
    """Both rights for one logon type; deny wins. ``logon_type`` may be an IIS ``logonMethod``."""
    if isinstance(logon_type, str):
        logon_type = LOGON_METHOD_TYPES.get(logon_type.strip().lower(), 8)
    allow_right, deny_right = LOGON_RIGHTS.get(logon_type, LOGON_RIGHTS[3])
    allow = check_right(identity, allow_right, rights, groups, identity_sid, logon_type=logon_type)
    deny = check_right(identity, deny_right, rights, groups, identity_sid, logon_type=logon_type)
    return LogonCheck(identity, logon_type, allowed=allow.holds and not deny.holds, allow=allow, deny=deny)
