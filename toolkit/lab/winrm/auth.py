"""HTTP authentication for the lab's WinRM listeners: Negotiate/NTLM (pyspnego), Basic, CBT, encryption.

pyspnego's pure-Python NTLM acceptor validates against the file named by ``NTLM_USER_FILE``. That
variable is process-global and read again for every logon, so every ``LabServer`` in the process shares
one store (:class:`NtlmUserStore`). The store's domain match is exact, while a Windows host accepts a
local account as ``user``, ``.\\user`` and ``HOST\\user``: one line is written per spelling.
A credential file line cannot tell hosts apart, so after NTLM succeeds the host checks again that the
account is one of *its* accounts (a user of web01 does not log on to web02).
"""

from __future__ import annotations

import base64
import os
import re
import struct
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
_BOUNDARY = b"--Encrypted Boundary"


class NtlmUserStore:
    """The process-wide ``NTLM_USER_FILE``: the union of the accounts of every running lab host."""

    _lock = threading.Lock()
    _lines: Counter[str] = Counter()
    _path: Path | None = None

    @classmethod
    def add(cls, lines: list[str]) -> None:
        with cls._lock:
            cls._lines.update(lines)
            cls._write()

    @classmethod
    def remove(cls, lines: list[str]) -> None:
        with cls._lock:
            cls._lines.subtract(lines)
            cls._lines = Counter({line: n for line, n in cls._lines.items() if n > 0})
            cls._write()

    @classmethod
    def _write(cls) -> None:
        if not cls._lines:
            # The last lab stopped: remove the file and our environment entry (if still ours).
            if cls._path is not None:
                if os.environ.get("NTLM_USER_FILE") == str(cls._path):
                    del os.environ["NTLM_USER_FILE"]
                cls._path.unlink(missing_ok=True)
                cls._path = None
            return
        if cls._path is None:
            handle, name = tempfile.mkstemp(prefix="iisfleet-lab-ntlm-", suffix=".txt")
            os.close(handle)
            cls._path = Path(name)
            cls._path.chmod(0o600)
        # Write a complete new file and rename it in place: a logon in progress on another thread
        # must never read a half-written store. mkstemp creates it 0600 under an unguessable name:
        # the rename keeps the new file's mode, and the store holds the lab's passwords.
        handle, temp = tempfile.mkstemp(prefix=f"{cls._path.stem}-", suffix=".tmp", dir=cls._path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write("".join(f"{line}\n" for line in cls._lines))
            os.replace(temp, cls._path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        os.environ["NTLM_USER_FILE"] = str(cls._path)


def account_spellings(account: str, host_name: str, fqdn: str) -> list[tuple[str, str]]:
    """The (domain, user) pairs under which a Windows host accepts ``account``.

    ``user`` is a local account: also ``.\\user`` and ``HOST\\user``. ``DOMAIN\\user`` is a domain
    account: also its DNS domain when the host's FQDN names one, and ``user@domain``.
    """
    if "\\" in account:
        domain, user = account.split("\\", 1)
        pairs = [(domain, user)]
        dns_domain = fqdn.split(".", 1)[1] if "." in fqdn else ""
        if dns_domain:
            pairs.append((dns_domain, user))
            pairs.append(("", f"{user}@{dns_domain}"))
        pairs.append(("", f"{user}@{domain}"))
        return pairs
    if "@" in account:
        user, domain = account.split("@", 1)
        return [("", account), (domain, user), (domain.split(".")[0], user)]
    return [("", account), (".", account), (host_name.upper(), account), (host_name, account)]


def ntlm_store_lines(users: dict[str, str], host_name: str, fqdn: str) -> list[str]:
    lines = []
    for account, password in users.items():
        if ":" in password or "\n" in password:
            continue  # the Heimdal line format cannot carry these; Basic auth still works for them
        for domain, user in account_spellings(account, host_name, fqdn):
            lines.append(f"{domain}:{user}:{password}")
    return lines


def normalise_principal(principal: str) -> tuple[str, str]:
    """``DOMAIN\\user`` / ``user@domain`` / ``user`` → (domain, user), both upper-cased for matching."""
    if "\\" in principal:
        domain, user = principal.split("\\", 1)
    elif "@" in principal:
        user, domain = principal.split("@", 1)
    else:
        domain, user = "", principal
    return domain.upper(), user.upper()


class AccountTable:
    """One host's accounts, matched the lenient way Windows matches local and domain spellings."""

    def __init__(self, users: dict[str, str], host_name: str, fqdn: str) -> None:
        self._passwords: dict[tuple[str, str], str] = {}
        for account, password in users.items():
            for domain, user in account_spellings(account, host_name, fqdn):
                self._passwords.setdefault(
                    normalise_principal(f"{domain}\\{user}" if domain else user), password
                )
                self._passwords.setdefault((domain.upper(), user.upper()), password)

    def knows(self, principal: str) -> bool:
        return normalise_principal(principal) in self._passwords

    def check_password(self, principal: str, password: str) -> bool:
        expected = self._passwords.get(normalise_principal(principal))
        return expected is not None and _constant_time_equal(expected, password)


def _constant_time_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass
class BasicCredentials:
    principal: str
    password: str


def parse_basic(value: str) -> BasicCredentials | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    principal, sep, password = decoded.partition(":")
    return BasicCredentials(principal, password) if sep else None


def use_keytab(keytab: str | os.PathLike[str], krb5_conf: str | os.PathLike[str] | None = None):
    """Let the lab's Negotiate acceptor take Kerberos: GSSAPI reads the service keys from ``KRB5_KTNAME``
    (and the realm from ``KRB5_CONFIG``), both process-wide like ``NTLM_USER_FILE``. The keytab is the one
    a domain controller exported for the hosts' ``HTTP/<fqdn>`` SPNs (toolkit/lab/addc). Returns a function
    that puts the previous values back."""
    saved = {key: os.environ.get(key) for key in ("KRB5_KTNAME", "KRB5_CONFIG")}
    os.environ["KRB5_KTNAME"] = f"FILE:{keytab}"
    if krb5_conf is not None:
        os.environ["KRB5_CONFIG"] = str(krb5_conf)

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return restore


def new_acceptor() -> spnego.ContextProxy:
    """A Negotiate acceptor that never consults real system accounts (``use_negotiate``)."""
    return spnego.server(
        protocol="negotiate",
        options=spnego.NegotiateOptions.wrapping_winrm | spnego.NegotiateOptions.use_negotiate,
    )


def channel_bindings_for(certificate_hash: bytes) -> GssChannelBindings:
    return GssChannelBindings(application_data=b"tls-server-end-point:" + certificate_hash)


def client_sent_channel_bindings(token: bytes) -> bool:
    """Whether an NTLM AUTHENTICATE (raw or inside SPNEGO) carries a non-empty channel-binding hash.

    WinRM's default ``CbtHardeningLevel=Relaxed`` checks bindings only when the client sends them, while
    pyspnego checks whenever the acceptor has them; peeking at the token lets the lab decide per logon.
    Uses pyspnego's NTLM message classes (private module; any failure means "assume sent", which only
    makes the check stricter).
    """
    try:
        from spnego._ntlm_raw.messages import Authenticate, AvId, NTClientChallengeV2

        offset = token.find(b"NTLMSSP\x00")
        if offset < 0:
            return True
        auth = Authenticate.unpack(token[offset:])
        response = auth.nt_challenge_response or b""
        if len(response) <= 24:
            return False  # NTLMv1 responses carry no AV pairs at all
        pairs = NTClientChallengeV2.unpack(response[16:]).av_pairs
        value = pairs.get(AvId.channel_bindings) if AvId.channel_bindings in pairs else None
        return bool(value) and value != b"\x00" * 16
    except Exception:  # noqa: BLE001 - see docstring
        return True


def unwrap_encrypted(context: spnego.ContextProxy, body: bytes) -> bytes:
    """Decrypt a ``multipart/encrypted`` WinRM body (the SPNEGO session-encrypted framing)."""
    parts = [p for p in re.split(re.escape(_BOUNDARY) + rb"(?:--)?\s*\r\n", body) if p.strip()]
    message = b""
    for index in range(0, len(parts) - 1, 2):
        header, payload = parts[index], parts[index + 1]
        match = re.search(rb"Length=(\d+)", header)
        if match is None:
            raise ValueError("encrypted part without OriginalContent length")
        expected_length = int(match.group(1))
        payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
        if payload.endswith(_BOUNDARY + b"--\r\n"):
            payload = payload[: -len(_BOUNDARY + b"--\r\n")]
        (signature_length,) = struct.unpack("<I", payload[:4])
        signature = payload[4 : 4 + signature_length]
        sealed = payload[4 + signature_length :]
        plain = context.unwrap_winrm(signature, sealed)
        if len(plain) != expected_length:
            raise ValueError(f"decrypted length {len(plain)} does not match the declared {expected_length}")
        message += plain
    if not parts:
        raise ValueError("no encrypted parts in the body")
    return message


def wrap_encrypted(context: spnego.ContextProxy, message: bytes) -> tuple[str, bytes]:
    """Encrypt a SOAP reply the way Windows does; returns (content type header, body)."""
    signature, sealed, padding = context.wrap_winrm(message)
    body = (
        b"\r\n".join(
            [
                _BOUNDARY,
                f"\tContent-Type: {SPNEGO_ENCRYPTED}".encode(),
                "\tOriginalContent: type=application/soap+xml;charset=UTF-8;"
                f"Length={len(message) + padding}".encode(),
                _BOUNDARY,
                b"\tContent-Type: application/octet-stream",
                b"",
            ]
        )
        + struct.pack("<I", len(signature))
        + signature
        + sealed
        + _BOUNDARY
        + b"--\r\n"
    )
    content_type = f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="Encrypted Boundary"'
    return content_type, body


__all__ = [
    "AccountTable",
    "use_keytab",
    "NtlmUserStore",
    "SpnegoError",
    "channel_bindings_for",
    "client_sent_channel_bindings",
    "new_acceptor",
    "ntlm_store_lines",
    "parse_basic",
    "unwrap_encrypted",
    "wrap_encrypted",
]
