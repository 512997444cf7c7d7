"""Turn whatever a client library raised into a categorised ``TransportError``.

pypsrp, requests, urllib3, pyspnego and paramiko each fail in their own vocabulary. An admin sweeping
500 hosts needs one word per host (``dns``, ``connect``, ``tls``, ``auth``, ``timeout``, ``protocol``)
and one line saying what to do. The rules are ordered from the most specific symptom to the most
general; every message passes through ``toolkit.secrets.redact`` because library exception text can
echo request headers or user input.

Category choices worth knowing:

* An unknown or changed SSH host key is ``tls``: like an untrusted certificate, the host's identity
  could not be verified, and the fix is the same kind of trust decision.
* A connection the server dropped mid-exchange is ``connect`` (the network path or a load balancer
  is the suspect), after the transport's one rebuild-and-retry has also failed.
* A connect timeout (no TCP answer at all) is ``connect``; ``timeout`` is kept for a host that
  answered but did not finish in time.
"""

from __future__ import annotations

import re
import socket
import ssl
from typing import Literal

from toolkit.errors import Category, TransportError
from toolkit.secrets import redact

#: Where in the conversation the failure happened; the same HTTP status means different things.
Stage = Literal["connect", "open", "run", "close"]

# WSMan fault codes (unsigned) the rules below recognise.
WSMAN_OPERATION_TIMEOUT = 0x80338029
WSMAN_ACCESS_DENIED = 5
#: "The WS-Management service cannot process the request because the XML is invalid" and friends.
_WSMAN_QUOTA_WORDS = ("quota", "maximum number of", "maxshellsperuser", "maxconcurrentoperations",
                      "maxprocessespershell", "maxmemorypershell")

_MAX_MESSAGE = 400


def _one_line(text: str) -> str:
    text = " ".join(redact(str(text)).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 12:
        seen.append(current)
        current = current.__cause__ or current.__context__
        # urllib3 hides the root cause in MaxRetryError.reason
        reason = getattr(seen[-1], "reason", None)
        if current is None and isinstance(reason, BaseException):
            current = reason
        # requests wraps urllib3 errors in args[0]
        if current is None and seen[-1].args and isinstance(seen[-1].args[0], BaseException):
            current = seen[-1].args[0]
    return seen


def _texts(exc: BaseException, *, lower: bool = True) -> str:
    text = " | ".join(f"{type(e).__name__}: {e}" for e in _chain(exc))
    return text.lower() if lower else text


def _error(category: Category, host: str, message: str, explanation: str) -> TransportError:
    return TransportError(_one_line(message), host=host, category=category, explanation=explanation)


def is_quota_fault(exc: BaseException) -> bool:
    """A WinRM quota/throttling fault: worth one retry on a fresh session."""
    from pypsrp.exceptions import WSManFaultError

    if not isinstance(exc, WSManFaultError):
        return False
    text = f"{exc.reason or ''} {exc.provider_fault or ''}".lower()
    return any(word in text for word in _WSMAN_QUOTA_WORDS)


def is_dropped_connection(exc: BaseException) -> bool:
    """The server or a middlebox closed the connection under us: worth one retry on a fresh session.

    Over HTTP with message encryption a silent drop shows up later as HTTP 400 (the server cannot
    decrypt a body sealed with the previous connection's key), so that counts too.
    """
    import requests
    from pypsrp.exceptions import WinRMTransportError

    if isinstance(exc, WinRMTransportError) and exc.code == 400:
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    for link in _chain(exc):
        if isinstance(link, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                             requests.exceptions.ChunkedEncodingError)):
            return True
        name = type(link).__name__
        if name in ("RemoteDisconnected", "ProtocolError", "IncompleteRead"):
            return True
    text = _texts(exc)
    return "connection aborted" in text or "connection reset" in text or "remote end closed" in text


def winrm_error(exc: BaseException, *, host: str, stage: Stage, scheme: str = "https",
                encryption: str = "auto", auth: str = "negotiate", address: str = "",
                port: int | None = None) -> TransportError:
    """Categorise an exception raised while talking WinRM to ``host``."""
    import requests
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

    if isinstance(exc, TransportError):
        return exc
    where = f"{address or host}:{port}" if port else (address or host)
    text = _texts(exc)
    raw = f"{type(exc).__name__}: {exc}"

    if isinstance(exc, ImportError):
        return _error("config", host, raw, "this authentication method needs an optional package (CredSSP: "
                      "pip install requests-credssp; Kerberos: pip install pyspnego[kerberos])")

    dns = _dns_rule(exc, host, where)
    if dns is not None:
        return dns

    # Kerberos and SPNEGO failures surface from pyspnego before any HTTP status.
    if "server not found in kerberos database" in text or "s_principal_unknown" in text:
        return _error("auth", host, raw, "Kerberos has no SPN for this name: connect by the host's FQDN "
                      "(not an IP or alias) or register the HTTP/WSMAN SPN for it")
    if "clock skew too great" in text or "krb_ap_err_skew" in text:
        return _error("auth", host, raw, "Kerberos refused because the clocks differ by more than 5 "
                      "minutes: fix time sync on the controller or the host")
    if ("no kerberos credentials" in text or "no credentials cache" in text or "credentials cache file" in text
            or "no credentials were supplied" in text):
        return _error("auth", host, raw, "there is no Kerberos ticket to use: run kinit for the account "
                      "or give the credential a password")
    if "cannot find kdc" in text or "cannot contact any kdc" in text:
        return _error("auth", host, raw, "no Kerberos KDC is reachable for the realm: check DNS SRV records "
                      "and krb5.conf")

    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(e, ssl.SSLError) for e in _chain(exc)):
        return _tls_rule(f"{where}: {_ssl_reason(_texts(exc, lower=False))}", text, host)

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _error("connect", host, f"{where}: connect timed out", f"no TCP answer from {where} within the connect timeout: host "
                      "down, wrong address, or a firewall silently dropping the WinRM port")
    if isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(exc, (socket.timeout, TimeoutError)):
        return _error("timeout", host, f"{where}: read timed out", "the host accepted the connection but did not answer within "
                      "the read timeout: it is overloaded or the operation takes longer than allowed")

    if "connection refused" in text or any(isinstance(e, ConnectionRefusedError) for e in _chain(exc)):
        return _error("connect", host, f"{where}: connection refused", f"nothing accepts connections on {where}: the WinRM listener "
                      "is not running for this scheme/port, or a firewall rejects it")
    if "no route to host" in text or "network is unreachable" in text:
        return _error("connect", host, f"{where}: no route to host", f"no network route to {where}")

    if isinstance(exc, AuthenticationError):
        return _error("auth", host, raw, "wrong credentials, or the account is not allowed to use WinRM "
                      "(member of Administrators / Remote Management Users, or the JEA role)")

    if isinstance(exc, WinRMTransportError):
        return _http_status_rule(exc, host=host, stage=stage, scheme=scheme, encryption=encryption,
                                 auth=auth, raw=raw)

    if isinstance(exc, WSManFaultError):
        plain_http = scheme == "http" and (encryption == "never" or auth in ("basic", "certificate"))
        reason = str(getattr(exc, "reason", "") or "").lower()
        if plain_http and ("unencrypted" in reason or str(getattr(exc, "code", "")) == str(WSMAN_ACCESS_DENIED)):
            return _error("protocol", host, raw, "the server refuses unencrypted traffic (AllowUnencrypted=false): "
                          "use HTTPS or message encryption (auth negotiate/ntlm/kerberos with encryption auto)")
        return _wsman_fault_rule(exc, host=host, raw=raw)

    if is_dropped_connection(exc):
        return _error("connect", host, f"{where}: connection reset mid-exchange", "the connection was dropped mid-exchange (keep-alive reset by "
                      "the server, a proxy or a load balancer); retried on a fresh session and failed again")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return _error("connect", host, raw, f"could not connect to {where}")

    name = type(exc).__name__.lower()
    if "spnego" in name or "spnego" in text or "gss" in name:
        return _error("auth", host, raw, "the Negotiate/Kerberos handshake failed: check the account, the "
                      "auth method and, for Kerberos, the SPN and ticket")
    return _error("protocol", host, raw, "the WinRM/PSRP exchange failed in an unexpected way; rerun with "
                  "--verbose and check the host's WinRM event log (Microsoft-Windows-WinRM/Operational)")


def _dns_rule(exc: BaseException, host: str, where: str) -> TransportError | None:
    for link in _chain(exc):
        if isinstance(link, socket.gaierror):
            return _error("dns", host, f"{where}: name does not resolve ({link.strerror or link})",
                          f"the name in {where} does not resolve: check the inventory address and DNS")
    text = _texts(exc)
    if "name or service not known" in text or "nodename nor servname" in text or \
            "failed to resolve" in text or "temporary failure in name resolution" in text or \
            "getaddrinfo failed" in text:
        return _error("dns", host, f"{where}: name does not resolve",
                      f"the name in {where} does not resolve: check the inventory address and DNS")
    return None


_SSL_REASON = re.compile(r"(certificate verify failed: [^()'\"|]+|\[SSL: [A-Z_]+\] [^()'\"|]+|hostname mismatch[^()'\"|]*)",
                         re.IGNORECASE)


def _ssl_reason(text: str) -> str:
    """The OpenSSL reason out of requests' nested exception text."""
    match = _SSL_REASON.search(text)
    return match.group(1).strip(" ,.") if match else "TLS handshake failed"


def _tls_rule(raw: str, text: str, host: str) -> TransportError:
    if "hostname mismatch" in text or "doesn't match" in text or "not valid for" in text:
        return _error("tls", host, raw, "the host's certificate does not name the address you connected "
                      "to: connect by a name in the certificate (CN/SAN)")
    if "certificate has expired" in text or "certificate expired" in text:
        return _error("tls", host, raw, "the host's certificate has expired: renew the WinRM HTTPS "
                      "listener certificate")
    if "certificate verify failed" in text or "self-signed" in text or "unable to get local issuer" in text:
        return _error("tls", host, raw, "the host's certificate is not trusted: pass --ca-bundle (or "
                      "ca_bundle in the inventory) with the issuing CA")
    if "wrong version number" in text or "unknown protocol" in text or "record layer failure" in text:
        return _error("tls", host, raw, "the port did not speak TLS: it is probably the HTTP listener "
                      "(5985); use scheme http or the HTTPS port")
    return _error("tls", host, raw, "the TLS handshake failed: check the listener certificate and the "
                  "TLS versions both sides allow")


def _http_status_rule(exc: BaseException, *, host: str, stage: Stage, scheme: str, encryption: str,
                      auth: str, raw: str) -> TransportError:
    code = getattr(exc, "code", 0)
    raw = f"HTTP {code} from the WinRM listener" + (f" ({_one_line(exc.response_text)[:160]})"
                                                  if getattr(exc, "response_text", "") else "")
    plain_http = scheme == "http" and (encryption == "never" or auth in ("basic", "certificate"))
    if code == 500 and plain_http:
        return _error("protocol", host, raw, "the server refuses unencrypted traffic (AllowUnencrypted=false): "
                      "use HTTPS or message encryption (auth negotiate/ntlm/kerberos with encryption auto)")
    if code == 500 and stage == "open":
        return _error("protocol", host, raw, "the listener rejected the session request: the PowerShell "
                      "endpoint (configuration_name) may be missing or disabled")
    if code == 400:
        return _error("connect", host, raw, "the server could not read an encrypted message: the "
                      "connection was dropped and re-authenticated mid-exchange (keep-alive reset by a "
                      "proxy or load balancer); prefer HTTPS")
    if code == 403:
        return _error("auth", host, raw, "the listener forbids this client (IP filter, or the account is "
                      "not allowed to use this endpoint)")
    if code == 404:
        return _error("protocol", host, raw, "no WinRM endpoint at this URL path: check the listener's "
                      "URLPrefix (default /wsman)")
    if code in (502, 503, 504):
        return _error("connect", host, raw, "a proxy or the HTTP service answered instead of WinRM: the "
                      "WinRM service is stopped or overloaded, or a proxy is in the way")
    return _error("protocol", host, raw, "the WinRM listener answered with an unexpected HTTP status")


def _wsman_fault_rule(exc: BaseException, *, host: str, raw: str) -> TransportError:
    code = getattr(exc, "code", 0) or 0
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = 0
    reason = (getattr(exc, "reason", "") or "").lower()
    if is_quota_fault(exc):
        return _error("protocol", host, raw, "the host's WinRM quotas are exhausted (MaxShellsPerUser/"
                      "MaxConcurrentOperations); retried once on a fresh session: lower --concurrency "
                      "against this host or close stale sessions")
    if code == WSMAN_ACCESS_DENIED or "access is denied" in reason:
        return _error("auth", host, raw, "the account authenticated but may not use this PowerShell "
                      "endpoint (session configuration permissions or JEA role)")
    if "resource uri" in reason or "configuration name" in reason or "not found" in reason:
        return _error("protocol", host, raw, "the PowerShell endpoint does not exist on the host: check "
                      "configuration_name (JEA endpoints have their own name)")
    if code == WSMAN_OPERATION_TIMEOUT:
        return _error("timeout", host, raw, "the WinRM operation timed out on the host")
    return _error("protocol", host, raw, "the WinRM service returned a fault")


def ssh_error(exc: BaseException, *, host: str, address: str = "", port: int | None = None) -> TransportError:
    """Categorise an exception raised while talking SSH to ``host``."""
    import paramiko

    if isinstance(exc, TransportError):
        return exc
    where = f"{address or host}:{port}" if port else (address or host)
    raw = f"{type(exc).__name__}: {exc}"
    text = _texts(exc)

    dns = _dns_rule(exc, host, where)
    if dns is not None:
        return dns
    if isinstance(exc, paramiko.BadHostKeyException):
        return _error("tls", host, raw, "the host's SSH key does NOT match known_hosts: the host was "
                      "rebuilt or someone is intercepting; verify the fingerprint before updating known_hosts")
    if "not found in known_hosts" in text or isinstance(exc, UnknownHostKey):
        return _error("tls", host, raw, "the host's SSH key is not in known_hosts: verify its fingerprint "
                      "and add it (ssh-keyscan), or point ssh.known_hosts at the right file")
    if isinstance(exc, paramiko.AuthenticationException):
        return _error("auth", host, raw, "wrong credentials or key, or the account may not log on over SSH "
                      "(administrators' keys live in C:\\ProgramData\\ssh\\administrators_authorized_keys)")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) or "connection refused" in text or \
            any(isinstance(e, ConnectionRefusedError) for e in _chain(exc)):
        return _error("connect", host, f"{where}: connection refused", f"nothing accepts connections on {where}: sshd is not running "
                      "or a firewall rejects the port")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return _error("connect", host, f"{where}: connect timed out", f"no answer from {where} within the connect timeout: host down "
                      "or a firewall dropping the port")
    if isinstance(exc, (ConnectionResetError, EOFError)) or "connection reset" in text or "eof" in text:
        return _error("connect", host, f"{where}: SSH connection closed ({type(exc).__name__})",
                      "the SSH connection was closed by the server or a middlebox")
    if isinstance(exc, paramiko.SSHException):
        return _error("protocol", host, raw, "the SSH exchange failed")
    if isinstance(exc, OSError):
        return _error("connect", host, raw, f"could not connect to {where}")
    return _error("protocol", host, raw, "the SSH exchange failed in an unexpected way")


class UnknownHostKey(Exception):
    """Raised by iisfleet's host-key policy for a key that is not in known_hosts."""
