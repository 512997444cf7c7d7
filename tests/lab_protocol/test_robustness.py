"""Garbage on the wire gets an HTTP error or a closed connection, never a dead listener."""

from __future__ import annotations

import os
import socket

import pytest
import requests

from toolkit.lab.winrm.auth import NtlmUserStore

from .conftest import Lab
from .test_winrm_psrp import run_echo, wsman

GARBAGE = [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"POST /wsman HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /wsman HTTP/1.1\r\nContent-Length: 4\r\nAuthorization: Negotiate !!notbase64!!\r\n\r\nabcd",
    b"POST /wsman HTTP/1.1\r\nContent-Length: 4\r\nAuthorization: Negotiate TlRMTVNTUAADAAAA\r\n\r\nabcd",
    b"POST /wsman HTTP/1.1\r\nContent-Length: 4\r\nAuthorization: Basic Zm9v\r\n\r\nabcd",
    b"POST /wsman HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
]


@pytest.mark.parametrize("payload", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_answered_or_dropped_and_the_host_keeps_serving(lab: Lab, payload: bytes) -> None:
    endpoint = lab.endpoint("web03")
    with socket.create_connection((endpoint["address"], endpoint["http_port"]), timeout=5) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply == b"" or reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 401"))
    assert run_echo(wsman(lab, "web03"), {"still": "alive"}).output


def test_unauthenticated_soap_and_wrong_paths(lab: Lab) -> None:
    endpoint = lab.endpoint("web03")
    base = f"http://{endpoint['address']}:{endpoint['http_port']}"
    no_proxy = {"http": None, "https": None}
    answer = requests.post(f"{base}/wsman", data=b"<x/>", proxies=no_proxy, timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Negotiate"  # no Basic over plain HTTP
    assert requests.get(f"{base}/wsman", proxies=no_proxy, timeout=5).status_code in (401, 405)
    assert requests.post(f"{base}/other", proxies=no_proxy, timeout=5).status_code == 404


def test_https_ntlm_with_encryption_always(lab: Lab) -> None:
    ps = run_echo(wsman(lab, "web03", https=True, encryption="always"), {"sealed": True})
    assert ps.output and not ps.had_errors


def test_ntlm_user_file_lines_are_reference_counted(lab: Lab) -> None:
    NtlmUserStore.add([":probe:pw", ":probe:pw"])
    NtlmUserStore.remove([":probe:pw"])
    path = os.environ["NTLM_USER_FILE"]
    assert ":probe:pw\n" in open(path, encoding="utf-8").read()
    NtlmUserStore.remove([":probe:pw"])
    text = open(path, encoding="utf-8").read()
    assert ":probe:pw\n" not in text and "LAB:admin:" in text  # the running lab's accounts stay


def test_a_port_already_in_use_is_a_clear_error_and_leaks_nothing(lab: Lab, tmp_path) -> None:
    from toolkit.errors import UsageError
    from toolkit.lab.backend import LabHostSpec
    from toolkit.lab.server import LabServer
    from toolkit.lab.ssh.powershell_standin import EchoBackend

    taken = lab.endpoint("web01")
    spec = LabHostSpec(
        name="clash",
        address=taken["address"],
        http_port=0,
        https_port=taken["https_port"],
        ssh_port=0,
        users={"u": "p"},
    )
    server = LabServer([(spec, EchoBackend())], state_dir=tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(UsageError, match=f"cannot listen on {taken['address']}:{taken['https_port']}"):
        server.start()
    assert len(os.listdir("/proc/self/fd")) <= before
    assert run_echo(wsman(lab, "web01"), {}).output  # the running lab is untouched
