"""Each ProtocolFaults knob gives the error a client sees from a real, misbehaving server."""

from __future__ import annotations

import json
import socket
import time

import paramiko
import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from .conftest import DOMAIN_USER, PASSWORD, Lab, ssh_connect


def run(lab: Lab, host: str, *, https: bool = False, **kwargs) -> list:
    endpoint = lab.endpoint(host)
    options = dict(
        auth="negotiate",
        no_proxy=True,
        connection_timeout=3,
        read_timeout=10,
        cert_validation=str(lab.server.ca_cert_path),
    )
    options.update(kwargs)
    port = endpoint["https_port"] if https else endpoint["http_port"]
    connection = WSMan(
        endpoint["address"], port=port, ssl=https, username=DOMAIN_USER, password=PASSWORD, **options
    )
    with RunspacePool(connection) as pool:
        ps = PowerShell(pool)
        ps.add_script("# lab-echo echo\n").add_parameters({"p": 1})
        return ps.invoke()


@pytest.mark.parametrize("https", [False, True])
def test_refused_port(lab: Lab, https: bool) -> None:
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        run(lab, "refused", https=https)
    assert "Connection refused" in str(caught.value)


def test_refused_ssh_port(lab: Lab) -> None:
    endpoint = lab.endpoint("refused")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((endpoint["address"], endpoint["ssh_port"]), timeout=2)


def test_unknown_ca_fails_certificate_validation(lab: Lab) -> None:
    with pytest.raises(requests.exceptions.SSLError) as caught:
        run(lab, "rogue", https=True)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    # Without validation the host works, which is what a careless client would do.
    assert json.loads(run(lab, "rogue", https=True, cert_validation=False)[0])["host"] == "rogue"


@pytest.mark.parametrize("https", [False, True])
def test_reset_mid_exchange(lab: Lab, https: bool) -> None:
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        run(lab, "reset", https=https)
    assert "reset" in str(caught.value).lower() or "aborted" in str(caught.value).lower()


@pytest.mark.parametrize("https,auth", [(False, "negotiate"), (True, "basic")])
def test_auth_failure(lab: Lab, https: bool, auth: str) -> None:
    with pytest.raises(AuthenticationError):
        run(lab, "locked", https=https, auth=auth)


def test_latency_is_added_to_every_response(lab: Lab) -> None:
    started = time.monotonic()
    assert run(lab, "slow")
    # 3 auth legs + Create, Receive, Command, Receive, Delete = 8 responses of 0.3 s each.
    assert time.monotonic() - started >= 8 * 0.3


def test_allow_unencrypted_accepts_plain_http_and_basic(lab: Lab) -> None:
    assert run(lab, "plain", encryption="never")
    assert run(lab, "plain", auth="basic", encryption="never")


def test_unencrypted_http_is_rejected_when_not_allowed(lab: Lab) -> None:
    with pytest.raises((WSManFaultError, WinRMTransportError)) as caught:
        run(lab, "web01", encryption="never")
    assert "AllowUnencrypted" in str(caught.value)
    # Basic is not even offered over plain HTTP there.
    with pytest.raises(AuthenticationError):
        run(lab, "web01", auth="basic", encryption="never")


def test_ssh_auth_failure_and_reset(lab: Lab) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        ssh_connect(lab, "locked", verify_host_key=False)

    client = ssh_connect(lab, "reset", verify_host_key=False)
    try:
        # The exec request is acknowledged, then the TCP connection is reset: no output, no exit
        # status (paramiko reports -1) and a dead transport, as with a real mid-session reset.
        _stdin, stdout, _stderr = client.exec_command("hostname", timeout=5)
        assert stdout.read() == b""
        assert stdout.channel.recv_exit_status() == -1
        assert not client.get_transport().is_active()
    finally:
        client.close()


def test_ssh_latency(lab: Lab) -> None:
    client = ssh_connect(lab, "slow")
    try:
        started = time.monotonic()
        _stdin, stdout, _stderr = client.exec_command("hostname", timeout=5)
        assert stdout.read() == b"SLOW\r\n"
        assert time.monotonic() - started >= 0.3
    finally:
        client.close()
