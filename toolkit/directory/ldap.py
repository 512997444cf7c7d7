"""LDAP sessions to a domain controller, with the run's credentials.

One small interface (:class:`LdapSession`: ``search``, ``close``) over two libraries, chosen by what
was measured against a real Samba AD DC (docs/directory.md):

* ``auth: ntlm`` → **msldap**: NTLM inside SASL GSS-SPNEGO with signing and sealing, on 389 and 636.
  (ldap3's NTLM is Microsoft's "Sicily" bind, which Samba does not implement: the DC drops the session.)
* ``auth: kerberos`` → **ldap3** SASL GSSAPI through python-gssapi, i.e. the system's MIT Kerberos and its
  ticket cache (``kinit`` first). msldap's own Kerberos (minikerberos) was refused by Samba's KDC both
  from a ccache (KRB_AP_ERR_INAPP_CKSUM) and with a password (unknown PA-DATA 655). ldap3 cannot seal a
  GSSAPI session, so Kerberos goes over LDAPS unless ``scheme: ldap`` is chosen for a DC that allows
  unsigned binds.
* ``auth: simple`` → ldap3 simple bind, over LDAPS only (the config refuses anything else).

Certificates are always checked (``ca_bundle`` or the system store). Attribute values are normalised
here, whatever library read them: SIDs as ``S-1-…`` strings, integers and FILETIMEs as ``int``, text as
``str``. Errors become :class:`DirectoryError` with a category and never carry a password.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from toolkit.directory.config import DirectoryConfig
from toolkit.errors import ToolkitError
from toolkit.models import Credential

#: Attributes whose values are binary SIDs.
SID_ATTRIBUTES = {"objectsid", "tokengroups", "sidhistory"}
#: Attributes whose values are integers (flags and FILETIMEs).
INT_ATTRIBUTES = {"useraccountcontrol", "msds-user-account-control-computed", "msds-supportedencryptiontypes",
                  "lockouttime", "pwdlastset", "accountexpires", "badpwdcount", "badpasswordtime",
                  "samaccounttype", "primarygroupid", "lockoutthreshold", "maxpwdage", "lockoutduration"}
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)


class DirectoryError(ToolkitError):
    """A directory query failed. ``category``: dns, connect, tls, auth, timeout, protocol."""

    def __init__(self, message: str, *, kind: str = "protocol", dc: str = "") -> None:
        super().__init__(message)
        self.category = kind  # type: ignore[assignment]
        self.kind = kind
        self.dc = dc


@dataclass(frozen=True)
class Entry:
    dn: str
    attributes: dict[str, list[Any]] = field(default_factory=dict)

    def first(self, name: str, default: Any = None) -> Any:
        values = self.attributes.get(name.lower()) or []
        return values[0] if values else default

    def all(self, name: str) -> list[Any]:
        return list(self.attributes.get(name.lower()) or [])


class LdapSession(Protocol):
    dc: str
    port: int

    def search(self, base: str, ldap_filter: str, attributes: Sequence[str], scope: str = "subtree") -> list[Entry]:
        ...

    def close(self) -> None:
        ...


def sid_from_bytes(data: bytes) -> str:
    if len(data) < 8:
        raise ValueError("a SID is at least 8 bytes")
    revision, count = data[0], data[1]
    if len(data) < 8 + 4 * count:
        raise ValueError("SID shorter than its sub-authority count")
    authority = int.from_bytes(data[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", data, 8)
    return f"S-{revision}-{authority}" + "".join(f"-{s}" for s in subs)


def _plain(name: str, value: Any) -> Any:
    """One attribute value in the normal form (see module docstring)."""
    key = name.lower()
    if isinstance(value, (bytes, bytearray)):
        if key in SID_ATTRIBUTES:
            return sid_from_bytes(bytes(value))
        text = bytes(value).decode("utf-8", errors="replace")
        if key in INT_ATTRIBUTES:
            try:
                return int(text)
            except ValueError:
                return text
        return text
    if isinstance(value, dt.datetime):  # msldap decodes FILETIMEs; keep the wire's integer form
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return int((stamp - _FILETIME_EPOCH).total_seconds() * 10_000_000)
    if isinstance(value, dt.timedelta):
        return int(value.total_seconds() * 10_000_000)
    if key in INT_ATTRIBUTES and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def normalise(dn: str, attributes: dict[str, Any]) -> Entry:
    out: dict[str, list[Any]] = {}
    for name, values in (attributes or {}).items():
        if not isinstance(values, list):
            values = [values]
        out[str(name).lower()] = [_plain(str(name), v) for v in values if v is not None]
    return Entry(dn=str(dn), attributes=out)


def _split(dc: str, default_port: int) -> tuple[str, int]:
    if dc.startswith("[") and "]" in dc:
        host, _, rest = dc[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if dc.count(":") == 1:
        host, port = dc.split(":")
        return host, int(port)
    return dc, default_port


def _ssl_context(config: DirectoryConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle \
        else ssl.create_default_context()
    return context


def open_session(config: DirectoryConfig, dc: str, credential: Credential | None, *,
                 global_catalog: bool = False) -> LdapSession:
    """Bind to ``dc`` (``host`` or ``host:port``) as ``config.auth`` says. Raises DirectoryError."""
    port = config.gc_port if global_catalog else config.ldap_port
    host, port = _split(dc, port) if not global_catalog else (_split(dc, port)[0], port)
    if config.auth == "ntlm":
        return _MsldapSession(config, host, port, credential)
    return _Ldap3Session(config, host, port, credential)


def _classify(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc}".lower()
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or "timed out" in text or "timeout" in text:
        return "timeout"
    if isinstance(exc, ssl.SSLError) or "certificate" in text or "ssl" in text or "tls" in text:
        return "tls"
    if "name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
        return "dns"
    if isinstance(exc, ConnectionError) or "refused" in text or "unreachable" in text or "socket" in text:
        return "connect"
    if any(w in text for w in ("bind", "credential", "logon", "kerberos", "gss", "password", "invalid",
                               "ticket", "kdc", "auth", "principal")):
        return "auth"
    return "protocol"


def _clean(message: str, credential: Credential | None) -> str:
    from toolkit.secrets import redact

    text = redact(message)
    if credential is not None and credential.password is not None:
        secret = credential.password.reveal()
        if secret:
            text = text.replace(secret, "***")
    return text[:400]


class _Ldap3Session:
    """ldap3: Kerberos (SASL GSSAPI over the ticket cache) or a simple bind over LDAPS."""

    def __init__(self, config: DirectoryConfig, host: str, port: int, credential: Credential | None) -> None:
        import ldap3

        self.dc, self.port = host, port
        use_ssl = config.scheme == "ldaps"
        tls = None
        if use_ssl:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_bundle,
                            valid_names=[n for n in (config.tls_name, host) if n])
        server = ldap3.Server(host, port=port, use_ssl=use_ssl, tls=tls, connect_timeout=int(config.timeout),
                              get_info=ldap3.NONE)
        try:
            if config.auth == "kerberos":
                # The service ticket is for ldap/<DC host name>: tls_name names it when dcs are addresses.
                target = config.tls_name or host
                self.connection = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS,
                                                   sasl_credentials=(target,), receive_timeout=int(config.timeout),
                                                   raise_exceptions=True, read_only=True)
            else:
                assert credential is not None and credential.password is not None
                self.connection = ldap3.Connection(server, user=credential.username,
                                                   password=credential.password.reveal(),
                                                   authentication=ldap3.SIMPLE, receive_timeout=int(config.timeout),
                                                   raise_exceptions=True, read_only=True)
            self.connection.bind()
        except Exception as exc:  # noqa: BLE001 - every library failure becomes one categorised error
            raise DirectoryError(_clean(f"{config.auth} bind to {host}:{port} failed: {exc}", credential),
                                 kind=_classify(exc), dc=host) from None
        self._credential = credential

    def search(self, base: str, ldap_filter: str, attributes: Sequence[str], scope: str = "subtree") -> list[Entry]:
        import ldap3

        level = {"base": ldap3.BASE, "one": ldap3.LEVEL, "subtree": ldap3.SUBTREE}[scope]
        try:
            pages = self.connection.extend.standard.paged_search(
                base, ldap_filter, search_scope=level, attributes=list(attributes), paged_size=500,
                generator=False) if scope != "base" else None
            if pages is None:
                self.connection.search(base, ldap_filter, search_scope=level, attributes=list(attributes))
                pages = self.connection.response or []
        except Exception as exc:  # noqa: BLE001
            text = str(exc)
            if "nosuchobject" in text.replace(" ", "").lower():
                return []
            raise DirectoryError(_clean(f"search {ldap_filter} under {base or '(root)'} failed: {exc}",
                                        self._credential), kind=_classify(exc), dc=self.dc) from None
        out = []
        for item in pages:
            if item.get("type") != "searchResEntry":
                continue
            out.append(normalise(item.get("dn", ""), dict(item.get("raw_attributes") or {})))
        return out

    def close(self) -> None:
        try:
            self.connection.unbind()
        except Exception:  # noqa: BLE001 - closing a dead session is not an error
            pass


def _checking_ssl_class() -> type:
    from asysocks.unicomm.common.unissl import UniSSL

    class CheckingSSL(UniSSL):  # type: ignore[misc]
        def __init__(self, config: DirectoryConfig) -> None:
            super().__init__(verify=True)
            self.config = config

        def get_ssl_context(self, protocol: Any = None) -> ssl.SSLContext:
            return _ssl_context(self.config)

    return CheckingSSL


def _CheckingSSL(config: DirectoryConfig) -> Any:  # noqa: N802 - reads as the class it builds
    return _checking_ssl_class()(config)


class _MsldapSession:
    """msldap: NTLM in SASL GSS-SPNEGO, signed and sealed (or inside TLS on LDAPS)."""

    def __init__(self, config: DirectoryConfig, host: str, port: int, credential: Credential | None) -> None:
        from asyauth.common.constants import asyauthSecret
        from asyauth.common.credentials.ntlm import NTLMCredential
        from asysocks.unicomm.common.target import UniProto
        from msldap.client import MSLDAPClient
        from msldap.commons.target import MSLDAPTarget

        self.dc, self.port = host, port
        self._credential = credential
        self._loop = asyncio.new_event_loop()
        assert credential is not None and credential.password is not None and credential.username
        domain, _, user = credential.username.rpartition("\\")
        if not domain and "@" in user:
            user, _, domain = user.partition("@")
        ssl_ctx = None
        protocol = UniProto.CLIENT_TCP
        if config.scheme == "ldaps":
            protocol = UniProto.CLIENT_SSL_TCP
            # asysocks' own context (UniSSL(verify=True)) loads the CA but leaves verify_mode at CERT_NONE
            # (measured: a certificate from an unrelated CA was accepted), so hand it a checking one.
            ssl_ctx = _CheckingSSL(config)
        target = MSLDAPTarget(host, port=port, protocol=protocol, hostname=config.tls_name or host,
                              domain=domain or config.realm(), timeout=int(config.timeout), ssl_ctx=ssl_ctx)
        cred = NTLMCredential(credential.password.reveal(), user, domain, asyauthSecret.PASSWORD)
        self.client = MSLDAPClient(target, cred)
        try:
            _, err = self._run(self.client.connect())
            if err is not None:
                raise err
        except Exception as exc:  # noqa: BLE001
            self._loop.close()
            raise DirectoryError(_clean(f"ntlm bind to {host}:{port} failed: {exc}", credential),
                                 kind=_classify(exc), dc=host) from None

    def _run(self, coroutine: Any) -> Any:
        return self._loop.run_until_complete(asyncio.wait_for(coroutine, timeout=120))

    def search(self, base: str, ldap_filter: str, attributes: Sequence[str], scope: str = "subtree") -> list[Entry]:
        level = {"base": 0, "one": 1, "subtree": 2}[scope]

        async def collect() -> list[Entry]:
            out = []
            if level == 0:  # base-scope reads (rootDSE, tokenGroups) are not paged
                results = self.client._con.search(base, ldap_filter, [a.encode() for a in attributes],
                                                  search_scope=0)
            else:
                results = self.client.pagedsearch(ldap_filter, list(attributes), tree=base, search_scope=level)
            async for entry, err in results:
                if err is not None:
                    raise err
                if not entry or (entry.get("objectName") == "" and entry.get("attributes") == ""):
                    continue  # a referral
                out.append(normalise(entry.get("objectName", ""), dict(entry.get("attributes") or {})))
            return out
        try:
            return self._run(collect())
        except Exception as exc:  # noqa: BLE001
            if "nosuchobject" in str(exc).replace(" ", "").lower():
                return []
            raise DirectoryError(_clean(f"search {ldap_filter} under {base or '(root)'} failed: {exc}",
                                        self._credential), kind=_classify(exc), dc=self.dc) from None

    def close(self) -> None:
        try:
            self._run(self.client.disconnect())
        except Exception:  # noqa: BLE001
            pass
        finally:
            self._loop.close()
