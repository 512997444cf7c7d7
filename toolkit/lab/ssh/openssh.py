"""A real OpenSSH ``sshd`` on loopback whose ``powershell`` is the lab's stand-in.

Tests use it to prove the SSH path against a server nobody here wrote: Debian's ``openssh-server``
with its own config (key-only logons, its own host key, ``SetEnv PATH=`` pointing at the stand-in), so
``powershell.exe -EncodedCommand <bootstrap>`` runs the stand-in, which answers from a lab host model.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from toolkit.lab.ssh.powershell_standin import install_standin


def find_sshd() -> str | None:
    """The sshd binary, or None when openssh-server is not installed."""
    found = shutil.which("sshd")
    if found:
        return found
    return "/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None


class SshdUnavailable(RuntimeError):
    """sshd is missing or did not start; the message says why (for a test's skip reason)."""


@dataclass(frozen=True)
class RealSshd:
    port: int
    host_public_key: str  # "ssh-ed25519 AAAA..." as in a known_hosts line

    def known_hosts_line(self, address: str = "127.0.0.1") -> str:
        return f"[{address}]:{self.port} {self.host_public_key}\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def real_sshd(root: Path, *, authorized_keys: list[str], standin_env: dict[str, str]) -> Iterator[RealSshd]:
    """Run sshd on 127.0.0.1 with state under ``root`` until the block ends.

    ``authorized_keys`` are OpenSSH public-key lines allowed for the current user; ``standin_env`` are the
    defaults the stand-in ``powershell`` exports (``IISFLEET_LAB_FLEET`` + ``IISFLEET_LAB_HOST`` to answer
    from a fleet directory). Raises ``SshdUnavailable`` when sshd is missing or does not come up.
    """
    sshd = find_sshd()
    if sshd is None:
        raise SshdUnavailable("OpenSSH sshd is not installed (apt-get install openssh-server)")
    root.mkdir(parents=True, exist_ok=True)
    standin = install_standin(root / "bin", standin_env)
    host_key = root / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    (root / "authorized_keys").write_text("".join(line.rstrip("\n") + "\n" for line in authorized_keys))
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
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    raise SshdUnavailable(f"sshd did not start: {error.strip()[:300]}") from None
                time.sleep(0.05)
        public = (root / "host_key.pub").read_text().split()
        yield RealSshd(port=port, host_public_key=f"{public[0]} {public[1]}")
    finally:
        process.terminate()
        process.wait(timeout=10)
