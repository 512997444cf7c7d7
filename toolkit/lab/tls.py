"""Certificates for the lab's HTTPS listeners: one lab CA, one certificate per simulated host.

Everything is written under ``state_dir/tls`` and reused on the next start, so an inventory that points
at ``ca.pem`` stays valid across ``iisfleet lab serve`` runs. Keys are ECDSA P-256: generating 200 of
them takes well under a second, where RSA-2048 would take tens of seconds.

A second CA ("rogue") signs the certificates of hosts with the ``tls_unknown_ca`` fault. Nothing trusts
it, so a client that validates certificates sees the same verification failure as against a server
whose certificate came from a private CA the client was never given.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class CertificatePair:
    cert_path: Path
    key_path: Path

    def certificate_der(self) -> bytes:
        pem = self.cert_path.read_bytes()
        return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


class CertificateAuthority:
    """A CA whose key and certificate live in ``directory`` (created on first use)."""

    def __init__(self, directory: Path, common_name: str) -> None:
        self.directory = directory
        self.common_name = common_name
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "ca.pem"
        self.key_path = directory / "ca-key.pem"
        if self.cert_path.exists() and self.key_path.exists():
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(
                    f"{self.key_path} is not the lab's ECDSA CA key; delete the directory to renew it"
                )
            self._key: ec.EllipticCurvePrivateKey = key
            self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        else:
            self._key, self._cert = self._create()

    def _create(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(self.key_path, key)
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    def issue(self, directory: Path, name: str, dns_names: list[str], address: str) -> CertificatePair:
        """Return the server certificate for ``name`` in ``directory``, issuing it if missing or stale.

        A stored certificate is reused only when this CA signed it and its SAN still lists ``address``
        (a fleet re-generated with other addresses gets new certificates).
        """
        directory.mkdir(parents=True, exist_ok=True)
        pair = CertificatePair(directory / f"{name}.pem", directory / f"{name}-key.pem")
        if pair.cert_path.exists() and pair.key_path.exists() and self._still_valid(pair, dns_names, address):
            return pair
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns_names) if d]
        alt_names.append(x509.IPAddress(ipaddress.ip_address(address)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0] if dns_names else address)])
            )
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        _write_key(pair.key_path, key)
        pair.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def _still_valid(self, pair: CertificatePair, dns_names: list[str], address: str) -> bool:
        try:
            cert = x509.load_pem_x509_certificate(pair.cert_path.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, x509.ExtensionNotFound):
            return False
        ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        names = set(san.get_values_for_type(x509.DNSName))
        return cert.issuer == self._cert.subject and address in ips and set(filter(None, dns_names)) <= names


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


class LabTls:
    """The lab's trusted CA, the untrusted rogue CA, and per-host server contexts."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "tls"
        self.ca = CertificateAuthority(self.root / "lab-ca", "iisfleet lab CA (SIMULATED)")
        self._rogue: CertificateAuthority | None = None

    @property
    def ca_cert_path(self) -> Path:
        return self.ca.cert_path

    def rogue_ca(self) -> CertificateAuthority:
        if self._rogue is None:
            self._rogue = CertificateAuthority(self.root / "rogue-ca", "Unknown CA nobody trusts (SIMULATED)")
        return self._rogue

    def host_certificate(
        self, name: str, fqdn: str, address: str, *, untrusted: bool = False
    ) -> CertificatePair:
        dns_names = [n for n in (fqdn, name) if n]
        if untrusted:
            return self.rogue_ca().issue(self.root / "rogue-hosts", name, dns_names, address)
        return self.ca.issue(self.root / "hosts", name, dns_names, address)


def server_context(pair: CertificatePair) -> ssl.SSLContext:
    """A TLS server context presenting ``pair`` (TLS 1.2+, no client certificates)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(pair.cert_path), str(pair.key_path))
    return context


def tls_server_end_point(certificate_der: bytes) -> bytes:
    """The RFC 5929 ``tls-server-end-point`` channel binding value for a certificate.

    The hash is the certificate's signature hash, upgraded to SHA-256 when that is MD5 or SHA-1; the
    lab signs with SHA-256, so this is always SHA-256 here.
    """
    return hashlib.sha256(certificate_der).digest()
