"""Lab CA, per-host certificates and SSH host keys: content, and reuse across restarts."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from cryptography import x509

from toolkit.lab.backend import LabHostSpec, ProtocolFaults
from toolkit.lab.server import LabServer
from toolkit.lab.ssh.powershell_standin import EchoBackend
from toolkit.lab.tls import LabTls
from toolkit.lab.winrm.auth import NtlmUserStore


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_host_certificate_names_fqdn_short_name_and_address_and_chains_to_the_lab_ca(tmp_path: Path) -> None:
    tls = LabTls(tmp_path)
    pair = tls.host_certificate("web01", "web01.corp.example", "127.0.0.11")
    cert, ca = _load(pair.cert_path), _load(tls.ca_cert_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"web01.corp.example", "web01"}
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.11")]
    cert.verify_directly_issued_by(ca)
    assert (pair.key_path.stat().st_mode & 0o777) == 0o600

    rogue = _load(tls.host_certificate("web01", "web01.corp.example", "127.0.0.11", untrusted=True).cert_path)
    assert rogue.issuer != ca.subject

    # Reused while still right; re-issued when the host moves to another address.
    assert (
        tls.host_certificate("web01", "web01.corp.example", "127.0.0.11").cert_path.read_bytes()
        == pair.cert_path.read_bytes()
    )
    moved = _load(tls.host_certificate("web01", "web01.corp.example", "127.0.0.12").cert_path)
    assert moved.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.IPAddress
    ) == [ipaddress.ip_address("127.0.0.12")]


def test_restart_with_the_same_state_dir_keeps_ca_and_host_keys(tmp_path: Path) -> None:
    spec = LabHostSpec(
        name="keep",
        address="127.77.1.1",
        http_port=0,
        https_port=0,
        ssh_port=0,
        users={"u": "p"},
        faults=ProtocolFaults(),
    )

    def snapshot() -> tuple[bytes, set[str]]:
        with LabServer([(spec, EchoBackend())], state_dir=tmp_path) as server:
            keys = {line.split(" ", 1)[1] for line in server.known_hosts_path.read_text().splitlines()}
            return server.ca_cert_path.read_bytes(), keys

    first, second = snapshot(), snapshot()
    assert first == second and len(first[1]) == 1


def test_ntlm_password_store_stays_private_to_its_owner_after_every_rewrite() -> None:
    """The store holds the lab's passwords in clear: each rewrite (a rename) must keep it 0600."""
    spellings = ["LAB:svc-review:Store-Passw0rd!", "LAB:svc-review2:Store-Passw0rd2!"]
    NtlmUserStore.add(spellings[:1])
    try:
        path = Path(os.environ["NTLM_USER_FILE"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        NtlmUserStore.add(spellings[1:])  # rewritten through a temporary file and a rename
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert set(spellings) <= set(path.read_text(encoding="utf-8").splitlines())
        assert not list(path.parent.glob(f"{path.stem}-*.tmp"))  # no temporary copy left behind
    finally:
        NtlmUserStore.remove(spellings)
