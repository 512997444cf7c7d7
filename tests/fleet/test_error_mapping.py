"""Library exceptions become categorised TransportErrors with a useful one-line explanation."""

from __future__ import annotations

import socket
import ssl

import paramiko
import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from urllib3.exceptions import MaxRetryError, NewConnectionError

from toolkit.secrets import Secret
from toolkit.transports.errors import UnknownHostKey, is_dropped_connection, is_quota_fault, ssh_error, winrm_error


def _refused() -> requests.exceptions.ConnectionError:
    inner = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as root:
            raise inner from root
    except NewConnectionError as exc:
        return requests.exceptions.ConnectionError(MaxRetryError(None, "/wsman", exc))


def _dns() -> requests.exceptions.ConnectionError:
    try:
        raise socket.gaierror(-2, "Name or service not known")
    except socket.gaierror as root:
        return requests.exceptions.ConnectionError(MaxRetryError(None, "/wsman", NewConnectionError(None, str(root))))


CASES = [
    (_refused(), {}, "connect", "listener is not running"),
    (_dns(), {}, "dns", "does not resolve"),
    (requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
                                  "issuer certificate"), {}, "tls", "--ca-bundle"),
    (requests.exceptions.SSLError("hostname mismatch, certificate is not valid for 'x'"), {}, "tls", "CN/SAN"),
    (requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), {}, "tls", "HTTP listener"),
    (AuthenticationError("Failed to authenticate the user bob with ntlm"), {}, "auth", "not allowed to use WinRM"),
    (WinRMTransportError("http", 500, ""), {"scheme": "http", "encryption": "never"}, "protocol",
     "refuses unencrypted traffic"),
    (WinRMTransportError("http", 500, ""), {"scheme": "http", "auth": "basic"}, "protocol", "AllowUnencrypted=false"),
    (WinRMTransportError("http", 400, "bad"), {}, "connect", "keep-alive"),
    (WinRMTransportError("http", 404, ""), {}, "protocol", "URLPrefix"),
    (Exception("SpnegoError: Server not found in Kerberos database"), {}, "auth", "FQDN"),
    (Exception("GSSError: Clock skew too great"), {}, "auth", "5 minutes"),
    (requests.exceptions.ConnectTimeout("timed out"), {}, "connect", "firewall"),
    (requests.exceptions.ReadTimeout("read timed out"), {}, "timeout", "read timeout"),
    (WSManFaultError("2150858843", "m", "The WS-Management service cannot process the request. This user is allowed a "
                     "maximum number of 5 concurrent shells, which has been exceeded.", None, None, None), {},
     "protocol", "quotas"),
    (WSManFaultError("5", "m", "Access is denied.", None, None, None), {}, "auth", "JEA"),
]


@pytest.mark.parametrize(("exc", "options", "category", "hint"), CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_winrm_errors_are_categorised(exc: BaseException, options: dict, category: str, hint: str) -> None:
    error = winrm_error(exc, host="web01", stage="run", **options)
    assert error.category == category
    assert hint in (error.explanation or "")
    assert error.host == "web01"
    assert "\n" not in error.message


def test_quota_and_drop_detection() -> None:
    quota = CASES[-2][0]
    assert is_quota_fault(quota)
    assert not is_quota_fault(CASES[-1][0])
    assert is_dropped_connection(requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer")))
    assert is_dropped_connection(WinRMTransportError("http", 400, ""))
    assert not is_dropped_connection(_refused())


def test_messages_never_carry_a_known_secret() -> None:
    password = Secret("Tr0ub4dor&3-mapping")
    exc = AuthenticationError(f"Failed with password {password.reveal()}")
    error = winrm_error(exc, host="web01", stage="open")
    assert password.reveal() not in error.message
    assert "********" in error.message
    assert password.reveal() not in ssh_error(paramiko.AuthenticationException(password.reveal()), host="h").message


SSH_CASES = [
    (paramiko.AuthenticationException("Authentication failed."), "auth"),
    (UnknownHostKey("host key for 127.0.0.9 not found in known_hosts"), "tls"),
    (paramiko.BadHostKeyException("h", paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)), "tls"),
    (paramiko.ssh_exception.NoValidConnectionsError({("127.0.0.1", 22): ConnectionRefusedError(111, "refused")}),
     "connect"),
    (socket.gaierror(-2, "Name or service not known"), "dns"),
    (socket.timeout("timed out"), "connect"),
    (paramiko.SSHException("Error reading SSH protocol banner"), "protocol"),
]


@pytest.mark.parametrize(("exc", "category"), SSH_CASES, ids=[c[1] + str(i) for i, c in enumerate(SSH_CASES)])
def test_ssh_errors_are_categorised(exc: BaseException, category: str) -> None:
    error = ssh_error(exc, host="web01", address="127.0.0.1", port=2222)
    assert error.category == category
    assert error.explanation


def test_ssl_error_inside_chain_is_tls() -> None:
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
        except ssl.SSLError as root:
            raise requests.exceptions.ConnectionError("wrapped") from root
    except requests.exceptions.ConnectionError as exc:
        assert winrm_error(exc, host="h", stage="open").category == "tls"
