"""The SSH bootstrap against a real OpenSSH sshd (Debian ``openssh-server``) with the stand-in powershell.

The sshd runs on loopback with its own config, key-only logons, and ``SetEnv PATH=`` pointing at the
stand-in; it proves the client side of the bootstrap works against a server nobody here wrote.
"""

from __future__ import annotations

import getpass
import json
from typing import Iterator

import paramiko
import pytest

from toolkit.lab.ssh.openssh import SshdUnavailable, find_sshd, real_sshd

from .conftest import bootstrap_command, encoded

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_sshd() is None, reason="OpenSSH sshd is not installed (apt-get install openssh-server)"),
]


@pytest.fixture(scope="module")
def real_sshd_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, paramiko.PKey]]:
    client_key = paramiko.ECDSAKey.generate(bits=256)
    try:
        with real_sshd(tmp_path_factory.mktemp("real-sshd"),
                       authorized_keys=[f"{client_key.get_name()} {client_key.get_base64()} lab-test"],
                       standin_env={"IISFLEET_LAB_HOST": "realhost"}) as server:
            yield server.port, client_key
    except SshdUnavailable as error:
        pytest.skip(str(error))


def _connect(port: int, key: paramiko.PKey) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=port,
        username=getpass.getuser(),
        pkey=key,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def test_bootstrap_through_a_real_sshd(real_sshd_key: tuple[int, paramiko.PKey]) -> None:
    port, key = real_sshd_key
    client = _connect(port, key)
    try:
        stdin, stdout, stderr = client.exec_command(bootstrap_command(), timeout=30)
        stdin.write(json.dumps({"script": "# lab-echo echo\n", "parameters": {"Site": "Default Web Site"}}))
        stdin.channel.shutdown_write()
        out, err = stdout.read(), stderr.read()
        assert stdout.channel.recv_exit_status() == 0, err
        answer = json.loads(out.decode("utf-8"))
        assert answer == {"host": "realhost", "parameters": {"Site": "Default Web Site"}, "script_length": 16}

        _, stdout, stderr = client.exec_command(
            "powershell.exe -NoProfile -NonInteractive -EncodedCommand " + encoded("# lab-echo fail\n"),
            timeout=30,
        )
        err = stderr.read()
        assert stdout.channel.recv_exit_status() == 1
        assert err.startswith(b"#< CLIXML") and b"simulated terminating error on realhost" in err
    finally:
        client.close()
