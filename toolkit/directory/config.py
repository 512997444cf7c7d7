"""The inventory's ``directory:`` section: which domain controllers to ask, how to log on, what to trust.

```yaml
directory:
  dcs: [dc1.contoso.com, dc2.contoso.com]   # tried in order until one answers
  auth: kerberos              # kerberos (the ticket cache) | ntlm (signed and sealed) | simple (LDAPS only)
  credential: ops             # a credentials: entry (ntlm, simple); kerberos needs none
  scheme: ldaps               # ldaps (636, default) | ldap (389; kerberos/ntlm seal the session there)
  ca_bundle: /etc/pki/corp-ca.pem
  base_dn: DC=contoso,DC=com  # default: the DC's defaultNamingContext
  domain: contoso.com         # Kerberos realm / NTLM domain; default: from base_dn
  tls_name: dc1.contoso.com   # name to check the certificate against when dcs are addresses
  global_catalog: true        # SPN holders forest-wide through the global catalog (3269/3268)
  timeout: 10
```

In an Ansible inventory the same mapping is the variable ``iisfleet_directory`` (``all`` vars), with the
credential written inline: ``credential: {username: CONTOSO\\svc, password: {env: NAME}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from toolkit.errors import InventoryError
from toolkit.inventory.credentials import CredentialRef

DirectoryAuth = Literal["kerberos", "ntlm", "simple"]
KEYS = {"dcs", "auth", "credential", "scheme", "port", "ca_bundle", "base_dn", "domain", "tls_name",
        "global_catalog", "timeout"}


@dataclass(frozen=True)
class DirectoryConfig:
    dcs: tuple[str, ...]
    auth: DirectoryAuth = "kerberos"
    credential: CredentialRef | None = None
    scheme: Literal["ldaps", "ldap"] = "ldaps"
    port: int | None = None
    ca_bundle: str | None = None
    base_dn: str = ""
    domain: str = ""
    tls_name: str = ""
    global_catalog: bool = True
    timeout: float = 10.0
    path: str | None = None
    line: int | None = None

    @property
    def ldap_port(self) -> int:
        return self.port or (636 if self.scheme == "ldaps" else 389)

    @property
    def gc_port(self) -> int:
        return 3269 if self.scheme == "ldaps" else 3268

    def realm(self, base_dn: str = "") -> str:
        """The Kerberos realm / DNS domain: ``domain:``, else derived from the base DN."""
        if self.domain:
            return self.domain.upper()
        parts = [p.split("=", 1)[1] for p in (base_dn or self.base_dn).split(",") if p.strip().lower().startswith("dc=")]
        return ".".join(parts).upper()

    def describe(self) -> dict[str, Any]:
        """Secret-free, for the run directory."""
        return {"dcs": list(self.dcs), "auth": self.auth, "scheme": self.scheme, "port": self.ldap_port,
                "base_dn": self.base_dn, "domain": self.domain, "ca_bundle": self.ca_bundle,
                "global_catalog": self.global_catalog,
                "credential": self.credential.describe() if self.credential else None}


def parse_directory(section: Any, *, path: str, line: int | None,
                    credential_ref: Callable[[Any, str], CredentialRef | None],
                    key_line: Callable[[str], int | None] | None = None) -> DirectoryConfig:
    """Validate a ``directory:`` mapping. ``credential_ref(value, field)`` turns the ``credential`` value
    into a reference (a name in iisfleet inventories, an inline mapping in Ansible ones); ``key_line(key)``
    gives the line of one key of the section, for messages."""
    def bad(message: str, field: str) -> InventoryError:
        where = (key_line(field) if key_line and field else None) or line
        return InventoryError(message, path=path, line=where, field=f"directory.{field}" if field else "directory")

    if not isinstance(section, Mapping):
        raise bad("expected a mapping (dcs, auth, credential, ...)", "")
    for key in section:
        if key not in KEYS:
            raise bad(f"unknown key {key!r} (expected one of {', '.join(sorted(KEYS))})", str(key))
    dcs = section.get("dcs")
    if isinstance(dcs, str):
        dcs = [dcs]
    if not isinstance(dcs, list) or not dcs or not all(isinstance(d, str) and d.strip() for d in dcs):
        raise bad("expected a list of domain controller names or addresses", "dcs")
    auth = section.get("auth", "kerberos")
    if auth not in ("kerberos", "ntlm", "simple"):
        raise bad("expected kerberos, ntlm or simple", "auth")
    scheme = section.get("scheme", "ldaps")
    if scheme not in ("ldaps", "ldap"):
        raise bad("expected ldaps or ldap", "scheme")
    if auth == "simple" and scheme != "ldaps":
        raise bad("a simple bind sends the password as it is: it is allowed only with scheme: ldaps", "auth")
    port = section.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise bad("expected a TCP port number", "port")
    for key in ("ca_bundle", "base_dn", "domain", "tls_name"):
        value = section.get(key)
        if value is not None and not isinstance(value, str):
            raise bad("expected a string", key)
    gc = section.get("global_catalog", True)
    if not isinstance(gc, bool):
        raise bad("expected true or false", "global_catalog")
    timeout = section.get("timeout", 10)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise bad("expected a number of seconds", "timeout")
    credential = credential_ref(section.get("credential"), "directory.credential") \
        if section.get("credential") is not None else None
    if auth in ("ntlm", "simple") and (credential is None or credential.kind in ("kerberos", "none")):
        raise bad(f"auth: {auth} needs a credential with a user name and password", "credential")
    return DirectoryConfig(dcs=tuple(d.strip() for d in dcs), auth=auth, credential=credential, scheme=scheme,
                           port=port, ca_bundle=section.get("ca_bundle"), base_dn=section.get("base_dn") or "",
                           domain=section.get("domain") or "", tls_name=section.get("tls_name") or "",
                           global_catalog=gc, timeout=float(timeout), path=path, line=line)
