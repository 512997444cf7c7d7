"""``setspn -L <account>`` output → the SPNs registered on that account.

setspn's messages are localized (the header reads ``Registered ServicePrincipalNames for CN=…:`` in
English and differently in German, French, …), so nothing here depends on its words. The parse is by
structure: the header is the one unindented line that carries the account's distinguished name
(``CN=…``/``OU=…``/``DC=…``) and ends with ``:``; each SPN follows on its own indented line
(``class/host[:port][/name]``). Output without such a header is setspn's own error text (account not
found, no domain controller) in whatever language the host speaks: :func:`parse_setspn_result`
reports it as not found, :func:`parse_setspn` returns no records. Markup (a proxy's HTML page) or a
non-SPN line after the header is refused as garbage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from toolkit.errors import InputError

from .types import Source, SpnRecord

MAX_OUTPUT_CHARS = 2 * 1024 * 1024
MAX_SPNS = 10_000
#: An unindented line ending in ``:`` whose last part is a DN; the words before it are setspn's (any language).
_HEADER_RE = re.compile(r"^\S.*?(?<![A-Za-z])(?P<dn>(?:CN|OU|DC)=.+?)\s*:\s*$", re.IGNORECASE)
_SPN_RE = re.compile(r"^[A-Za-z0-9._-]+/[^\s/][^\s]*$")
_MARKUP_RE = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>")


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
    where = source or f"setspn -L {account}"
    if _MARKUP_RE.search(output):
        raise InputError("markup where setspn output was expected", path=source or None)
    for number, raw in enumerate(output.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not header_seen:
            match = _HEADER_RE.match(raw.rstrip())
            if match:
                header_seen = True
                dn = match.group("dn").strip()
            else:
                errors.append(line)  # setspn's own message, in the host's language
            continue
        if _SPN_RE.match(line):
            if len(records) < MAX_SPNS:
                records.append(SpnRecord(account=account, account_dn=dn, spn=line, source=Source(where, number)))
            continue
        raise InputError(f"unexpected setspn line {line[:80]!r}", path=where, line=number)
    if not header_seen:
        if errors:
            return SetspnResult(account, "", (), found=False, error="; ".join(errors)[:500])
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
