"""The SSH bootstrap against a real OpenSSH sshd (Debian ``openssh-server``) with the stand-in powershell.

The sshd runs on loopback with its own config, key-only logons, and ``SetEnv PATH=`` pointing at the
stand-in; it proves the client side of the bootstrap works against a server nobody here wrote.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import paramiko
import pytest

from toolkit.lab.ssh.powershell_standin import install_standin

from .conftest import bootstrap_command, encoded

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SSHD is None, reason="OpenSSH sshd is not installed (apt-get install openssh-server)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def real_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, paramiko.PKey]]:
    root = tmp_path_factory.mktemp("real-sshd")
    standin = install_standin(root / "bin", {"IISFLEET_LAB_HOST": "realhost"})
    host_key = root / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    client_key = paramiko.ECDSAKey.generate(bits=256)
    (root / "authorized_keys").write_text(f"{client_key.get_name()} {client_key.get_base64()} lab-test\n")
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\n"
        f"SetEnv PATH={standin}:/usr/local/bin:/usr/bin:/bin\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    pytest.skip(f"sshd did not start: {error.strip()[:300]}")
                time.sleep(0.05)
        yield port, client_key
    finally:
        process.terminate()
        process.wait(timeout=10)


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


def test_bootstrap_through_a_real_sshd(real_sshd: tuple[int, paramiko.PKey]) -> None:
    port, key = real_sshd
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
