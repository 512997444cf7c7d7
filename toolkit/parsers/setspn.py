"""``setspn -L <account>`` output → the SPNs registered on that account.

The output is a header line ``Registered ServicePrincipalNames for CN=…:`` followed by one
indented SPN per line. When the account cannot be found, setspn prints an error instead
(``Could not find account …``, ``FindDomainForAccount: … failed``); that is a result, not garbage:
:func:`parse_setspn_result` reports it, :func:`parse_setspn` returns no records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from toolkit.errors import InputError

from .types import Source, SpnRecord

MAX_OUTPUT_CHARS = 2 * 1024 * 1024
MAX_SPNS = 10_000
_HEADER_RE = re.compile(r"^Registered ServicePrincipalNames for (?P<dn>.+?):\s*$", re.IGNORECASE)
_SPN_RE = re.compile(r"^[A-Za-z0-9._-]+/[^\s/][^\s]*$")
_ERROR_MARKERS = ("could not find account", "finddomainforaccount", "no such account", "failed with return value",
                  "unable to locate account", "ldap_", "dsgetdcname")


@dataclass(frozen=True)
class SetspnResult:
    """One ``setspn -L`` answer: the account's DN and SPNs, or why there are none."""

    account: str
    account_dn: str
    records: tuple[SpnRecord, ...]
    found: bool  # False: setspn could not find (or reach) the account
    error: str = ""  # setspn's own error line(s), when ``found`` is False


def parse_setspn_result(output: str, account: str, *, source: str = "") -> SetspnResult:
    """Parse the text one ``setspn -L`` printed. ``source`` names where it came from (for citations)."""
    if not isinstance(output, str):
        raise InputError("setspn output is not text", path=source or None, field=account)
    if len(output) > MAX_OUTPUT_CHARS:
        raise InputError(f"setspn output longer than {MAX_OUTPUT_CHARS} characters", path=source or None)
    dn = ""
    header_seen = False
    records: list[SpnRecord] = []
    errors: list[str] = []
    for number, raw in enumerate(output.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _HEADER_RE.match(line)
        if match:
            header_seen = True
            dn = match.group("dn").strip()
            continue
        if header_seen and _SPN_RE.match(line) and raw[:1] in (" ", "\t"):
            if len(records) < MAX_SPNS:
                records.append(SpnRecord(account=account, account_dn=dn, spn=line,
                                         source=Source(source or f"setspn -L {account}", number)))
            continue
        if any(marker in line.lower() for marker in _ERROR_MARKERS):
            errors.append(line)
            continue
        if header_seen and _SPN_RE.match(line):
            records.append(SpnRecord(account=account, account_dn=dn, spn=line,
                                     source=Source(source or f"setspn -L {account}", number)))
            continue
        raise InputError(f"unexpected setspn line {line[:80]!r}", path=source or f"setspn -L {account}",
                         line=number)
    if not header_seen:
        if errors:
            return SetspnResult(account, "", (), found=False, error="; ".join(errors)[:500])
        if output.strip():
            raise InputError("no 'Registered ServicePrincipalNames for' header", path=source or None)
        return SetspnResult(account, "", (), found=False, error="setspn printed nothing")
    return SetspnResult(account, dn, tuple(records), found=True, error="; ".join(errors)[:500])


def parse_setspn(output: str, account: str) -> tuple[SpnRecord, ...]:
    """The SPN records of one ``setspn -L`` answer (none when the account was not found)."""
    return parse_setspn_result(output, account).records


def spn_map(records: Iterable[SpnRecord]) -> dict[str, tuple[str, ...]]:
    """SPN (lower-cased; SPNs compare case-insensitively) → the accounts that hold it."""
    result: dict[str, dict[str, None]] = {}
    for record in records:
        result.setdefault(record.spn.lower(), {})[record.account_dn or record.account] = None
    return {spn: tuple(accounts) for spn, accounts in sorted(result.items())}


def duplicate_spns(records: Iterable[SpnRecord]) -> dict[str, tuple[str, ...]]:
    """Only the SPNs held by more than one account: the Kerberos duplicate-SPN failure."""
    return {spn: accounts for spn, accounts in spn_map(records).items() if len(accounts) > 1}
