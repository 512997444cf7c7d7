"""Windows account names, normalised in one place.

The same account reaches iisfleet spelled many ways: ``CONTOSO\\WEB01$`` (a computer account in
``setspn``/LDAP), ``WEB01$``, ``web01.contoso.com`` (its dNSHostName), ``IIS APPPOOL\\Shop``,
``ApplicationPoolIdentity``, ``NETWORK SERVICE``/``LocalSystem`` (all of which reach the network *as the
computer account*), a gMSA ``svc_web$``, a UPN ``svc_web@contoso.com`` or a SID. Every rule and every
directory lookup compares names through :func:`account_key`, :func:`same_account` and
:func:`network_account`, so that an SPN correctly held by ``WEB01$`` is never "another account" than
the ``WEB01`` a collector queried.

Two views of an identity matter:

* the *local* one (``IIS APPPOOL\\Shop`` has its own SID in ACLs and user rights on the host);
* the *network* one (what the domain controller sees): virtual accounts, NETWORK SERVICE, SYSTEM
  and ApplicationPoolIdentity all authenticate as ``<COMPUTER>$``; LOCAL SERVICE presents anonymous
  credentials. Kerberos (SPNs, ticket keys) and directory lookups use the network view.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_SID_RE = re.compile(r"^S-1-\d+(-\d+)*$", re.IGNORECASE)

#: Local identities that reach the network as the computer account (lower-case, with and without authority).
_AS_MACHINE = {
    "networkservice", "network service", "nt authority\\network service",
    "localsystem", "system", "local system", "nt authority\\system",
    "applicationpoolidentity", "s-1-5-18", "s-1-5-20",
}
#: Local identities that present no credentials to the network (a null session).
_AS_ANONYMOUS = {"localservice", "local service", "nt authority\\local service", "s-1-5-19"}
#: Domain parts that name the local machine or a Windows authority, never an Active Directory domain.
_LOCAL_DOMAINS = {"", ".", "nt authority", "builtin", "nt service", "iis apppool", "window manager",
                  "font driver host", "nt virtual machine"}


@dataclass(frozen=True)
class AccountKey:
    """A comparable account: ``name`` is the lower-case sAMAccountName (computer accounts and gMSAs keep
    their ``$``), ``domain`` the lower-case domain as written (NetBIOS or DNS; ``""`` when not given),
    ``sid`` when the spelling was a SID."""

    name: str
    domain: str = ""
    sid: str = ""

    @property
    def is_machine(self) -> bool:
        """A computer account or a (g)MSA: both end in ``$``."""
        return self.name.endswith("$")

    def text(self) -> str:
        if self.sid:
            return self.sid
        return f"{self.domain}\\{self.name}" if self.domain else self.name


def is_sid(text: str) -> bool:
    return bool(_SID_RE.match((text or "").strip()))


def machine_account(computer_name: str) -> str:
    """``WEB01`` / ``web01.contoso.com`` / ``WEB01$`` → ``WEB01$`` (the computer's sAMAccountName)."""
    name = (computer_name or "").strip()
    if "\\" in name:
        name = name.rsplit("\\", 1)[1]
    if "." in name and not name.endswith("$"):
        name = name.split(".", 1)[0]
    name = name.upper()
    return name if not name or name.endswith("$") else name + "$"


def account_key(text: str) -> AccountKey:
    """Normalise one spelling of an account (no host context: see :func:`network_account` for that).

    ``CONTOSO\\svc`` → (svc, contoso); ``svc@contoso.com`` → (svc, contoso.com); ``WEB01$`` → (web01$);
    ``web01.contoso.com`` (a host name: dots, no ``@`` or ``\\``) → (web01$, contoso.com);
    ``S-1-5-21-…`` → the SID; anything else → its lower-case self.
    """
    raw = (text or "").strip()
    if is_sid(raw):
        return AccountKey(name=raw.upper(), sid=raw.upper())
    low = raw.lower()
    if "\\" in low:
        domain, name = low.rsplit("\\", 1)
        return AccountKey(name=name, domain=domain)
    if "@" in low:
        name, domain = low.split("@", 1)
        return AccountKey(name=name, domain=domain)
    if "." in low and " " not in low and not low.endswith("$") and re.match(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$", low):
        host, domain = low.split(".", 1)
        return AccountKey(name=host + "$", domain=domain)
    return AccountKey(name=low)


def _domains_compatible(a: str, b: str) -> bool:
    """Same domain, or one side gave none, or one is a NetBIOS name and the other a DNS name (which
    cannot be told apart without the directory: NetBIOS names need not match the first DNS label)."""
    if not a or not b or a == b:
        return True
    if a in (".",) or b in (".",):
        return True
    return ("." in a) != ("." in b)


def same_account(a: str, b: str) -> bool:
    """True when two spellings name the same account.

    Domains are compared only when both sides carry one in the same form; ``NT AUTHORITY\\IUSR`` and
    ``WEB01\\IUSR`` differ, ``.\\x`` is the local machine and matches any ``X\\x``. ``WEB01$`` and
    ``WEB01`` differ here (a user may be called web01): the host context that says a bare computer
    name means its account is applied where the name was read (:func:`network_account`).
    """
    if not (a or "").strip() or not (b or "").strip():
        return False
    ka, kb = account_key(a), account_key(b)
    if ka.sid or kb.sid:
        return bool(ka.sid and kb.sid and ka.sid == kb.sid)
    if ka.name != kb.name:
        return False
    local_a, local_b = ka.domain in _LOCAL_DOMAINS, kb.domain in _LOCAL_DOMAINS
    if ka.domain and kb.domain and local_a and local_b and "." not in (ka.domain, kb.domain):
        return ka.domain == kb.domain
    return _domains_compatible(ka.domain, kb.domain)


def short_name(name: str) -> str:
    """``CONTOSO\\svc`` → ``svc``; ``svc@contoso.com`` → ``svc``; ``WEB01$`` stays ``web01$``; lower case."""
    text = (name or "").strip().lower()
    if "\\" in text:
        text = text.rsplit("\\", 1)[1]
    if "@" in text:
        text = text.split("@", 1)[0]
    return text


def computer_name_of(facts: Mapping[str, Any] | None, fallback: str = "") -> str:
    facts = facts or {}
    return str(facts.get("computer_name") or facts.get("hostname") or fallback or "")


def network_account(identity: str, computer_name: str) -> str | None:
    """The account ``identity`` authenticates as towards the domain, from a host called ``computer_name``.

    Virtual accounts (``IIS APPPOOL\\X``, ApplicationPoolIdentity, ``NT SERVICE\\X``), NETWORK SERVICE
    and SYSTEM → ``<COMPUTER>$``; LOCAL SERVICE → None (anonymous on the network); the bare computer
    name (what ``setspn -L %COMPUTERNAME%`` was given) and its FQDN → ``<COMPUTER>$``; a local account
    of the host (``WEB01\\x``, ``.\\x``) → None (it does not exist in the domain); a domain account →
    itself, as written.
    """
    text = (identity or "").strip()
    low = text.lower()
    machine = machine_account(computer_name) if computer_name else ""
    if low in _AS_ANONYMOUS:
        return None
    if low in _AS_MACHINE or low.startswith("iis apppool\\") or low.startswith("nt service\\"):
        return machine or None
    if not text:
        return None
    key = account_key(text)
    own = machine.lower()
    if own and "@" not in text and (key.name == own or (key.name == own[:-1] and not key.domain)):
        # "WEB01" (what setspn -L %COMPUTERNAME% is given), "WEB01$", "CONTOSO\\WEB01$", "web01.contoso.com"
        if key.domain in _LOCAL_DOMAINS or "." in key.domain:
            return machine
        return f"{key.domain.upper()}\\{machine}"
    if key.domain == "." or (own and key.domain == own[:-1]):
        return None  # a local account of this host: unknown to the domain
    return text


def is_domain_account(name: str, facts: Mapping[str, Any] | None) -> bool:
    """A ``DOMAIN\\user`` or UPN whose domain is not this computer nor a Windows authority."""
    text = (name or "").strip()
    if "@" in text:
        return True
    if "\\" not in text:
        return False
    domain = text.split("\\", 1)[0].lower()
    computer = computer_name_of(facts).lower()
    return domain not in _LOCAL_DOMAINS and domain != computer


def same_network_account(a: str, b: str, computer_name: str) -> bool:
    """Whether ``a`` and ``b`` reach the domain as one account from this host (``IIS APPPOOL\\Shop``,
    ``NETWORK SERVICE``, ``WEB01`` and ``CONTOSO\\WEB01$`` all do from WEB01)."""
    na, nb = network_account(a, computer_name), network_account(b, computer_name)
    return bool(na and nb and same_account(na, nb))


__all__ = ["AccountKey", "account_key", "computer_name_of", "is_domain_account", "is_sid", "machine_account",
           "network_account", "same_account", "same_network_account", "short_name"]
