"""The product's own SSH path (inventory → runner → SSHTransport → bootstrap) against a real OpenSSH sshd.

The sshd is Debian's, started on loopback with key-only logons; its ``powershell`` is the lab's stand-in,
answering from a generated seed-catalog host. iisfleet connects with host-key checking on, exactly as
it would to Windows OpenSSH, and must diagnose that host's planted cause. A second run with an empty
known_hosts must refuse the host as a ``tls`` failure (its identity is unverified) and exit 3.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
import yaml

from toolkit.lab.scenarios import generate
from toolkit.lab.ssh.openssh import SshdUnavailable, find_sshd, real_sshd

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_sshd() is None, reason="OpenSSH sshd is not installed (apt-get install openssh-server)"),
]


def _inventory(path: Path, *, host: str, port: int, key_file: Path, known_hosts: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "credentials": {"key": {"username": getpass.getuser(), "key_file": str(key_file)}},
        "hosts": {host: {"address": "127.0.0.1", "transport": "ssh", "credential": "key",
                         "ssh": {"port": port, "known_hosts": str(known_hosts)}}},
    }), encoding="utf-8")
    return path


def _run(inventory: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "toolkit", "run", "triage-401", "-i", str(inventory),
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=300)


def test_triage_over_real_openssh_finds_the_planted_cause(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    expected = generate("seed-catalog", 12, fleet, seed=0)
    host = next(h for h, causes in sorted(expected["hosts"].items())
                if any(c["cause"] == "logon-right-denied" for c in causes))
    key = paramiko.ECDSAKey.generate(bits=256)
    key_file = tmp_path / "id_ecdsa"
    key.write_private_key_file(str(key_file))
    try:
        with real_sshd(tmp_path / "sshd", authorized_keys=[f"{key.get_name()} {key.get_base64()} iisfleet-test"],
                       standin_env={"IISFLEET_LAB_FLEET": str(fleet), "IISFLEET_LAB_HOST": host}) as sshd:
            known_hosts = tmp_path / "known_hosts"
            known_hosts.write_text(sshd.known_hosts_line(), encoding="utf-8")
            inventory = _inventory(tmp_path / "inventory.yml", host=host, port=sshd.port, key_file=key_file,
                                   known_hosts=known_hosts)
            proc = _run(inventory, tmp_path / "run")
            assert proc.returncode == 0, proc.stderr[-3000:]

            empty = tmp_path / "known_hosts.empty"
            empty.write_text("", encoding="utf-8")
            untrusted = _run(_inventory(tmp_path / "untrusted.yml", host=host, port=sshd.port, key_file=key_file,
                                        known_hosts=empty), tmp_path / "run-untrusted")
    except SshdUnavailable as error:
        pytest.skip(str(error))

    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text(encoding="utf-8"))
    reported = {(f["cause"], f["site"]) for f in report["findings"] if host in f["hosts"]}
    assert reported == {(c["cause"], c["site"]) for c in expected["hosts"][host]}
    host_record = json.loads((tmp_path / "run" / "hosts" / host / "host.json").read_text(encoding="utf-8"))
    assert host_record["status"] == "ok" and host_record["transport"] == "ssh"

    assert untrusted.returncode == 3, untrusted.stderr[-2000:]
    refused = json.loads((tmp_path / "run-untrusted" / "hosts" / host / "host.json").read_text(encoding="utf-8"))
    assert refused["status"] == "failed" and refused["error"]["category"] == "tls"
    assert not list((tmp_path / "run-untrusted" / "hosts" / host).glob("Get-*.json"))
