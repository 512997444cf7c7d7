"""Real X.509 certificates for the simulated hosts' HTTPS bindings, and the HTTP.sys SSL table that names them.

A generated host keeps its LocalMachine certificate stores as files (docs/lab-fleet.md):

* ``certstore/issuer.pem`` and ``issuer-key.pem``: the lab issuing CA that signed the host's server certificates
  (the key stays in the fleet folder; it lets the lab re-issue a certificate when the fleet's time is shifted);
* ``certstore/<STORE>/<label>.pem``: a certificate in ``Cert:\\LocalMachine\\<STORE>``; ``<label>-key.pem`` next
  to it when the store holds its private key;
* ``host.yml`` ``ssl_bindings``: HTTP.sys's SSL records, each naming a certificate by ``certificate: <label>`` or by
  a bare ``thumbprint`` (a certificate that is not in the store).

Output is deterministic: keys are derived from a label (ECDSA P-256) and signatures use RFC 6979
deterministic ECDSA, so the same fleet arguments give the same bytes. When the fleet is served with its time
shifted (docs/lab-fleet.md, "Time"), :func:`present` re-issues every certificate with its validity moved by the
same shift, so "expires in 10 days" stays true whenever the fleet is served; thumbprints then change, and the
SSL table handed to the core names the presented ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: the order of the P-256 group: a derived private scalar must lie in [1, n-1]
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ISSUER_NAME = "Contoso Lab Issuing CA"
STORE_FOLDER = "certstore"


def derived_key(label: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(f"iisfleet-lab-key:{label}".encode()).digest(), "big")
    return ec.derive_private_key(scalar % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def _serial(label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"iisfleet-lab-serial:{label}".encode()).digest()[:12], "big") | 1


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass(frozen=True)
class CertificateSpec:
    """One server certificate as a scenario wants it."""

    label: str  # file stem, unique per host
    common_name: str
    dns_names: tuple[str, ...]
    not_before: dt.datetime  # naive UTC
    not_after: dt.datetime
    store: str = "MY"
    private_key: bool = True
    server_auth: bool = True


def issuer(seed_label: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = derived_key(f"issuer:{seed_label}")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER_NAME),
                      x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "contoso"),
                      x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "com")])
    start = dt.datetime(2020, 1, 1)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(_serial(f"issuer:{seed_label}")).not_valid_before(start)
               .not_valid_after(start + dt.timedelta(days=365 * 20))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True))
    return key, _sign(builder, key)


def server_certificate(spec: CertificateSpec, host_label: str, issuer_key: ec.EllipticCurvePrivateKey,
                       issuer_cert: x509.Certificate) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = derived_key(f"{host_label}:{spec.label}")
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if spec.server_auth else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name),
                                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso")]))
               .issuer_name(issuer_cert.subject).public_key(key.public_key())
               .serial_number(_serial(f"{host_label}:{spec.label}"))
               .not_valid_before(spec.not_before).not_valid_after(spec.not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    if spec.dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in spec.dns_names]),
                                        critical=False)
    return _sign(builder, issuer_key), key


def write_store(host_dir: Path, host_label: str, specs: Sequence[CertificateSpec]) -> dict[str, str]:
    """Write the issuer and every certificate of ``specs`` under ``host_dir/certstore``; label → thumbprint."""
    if not specs:
        return {}
    root = host_dir / STORE_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    issuer_key, issuer_cert = issuer(host_label)
    (root / "issuer.pem").write_bytes(issuer_cert.public_bytes(serialization.Encoding.PEM))
    (root / "issuer-key.pem").write_bytes(_pem_key(issuer_key))
    thumbprints = {}
    for spec in specs:
        cert, key = server_certificate(spec, host_label, issuer_key, issuer_cert)
        folder = root / spec.store.upper()
        folder.mkdir(exist_ok=True)
        (folder / f"{spec.label}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if spec.private_key:
            (folder / f"{spec.label}-key.pem").write_bytes(_pem_key(key))
        thumbprints[spec.label] = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - a thumbprint, as Windows names it
    return thumbprints


def _shifted(cert: x509.Certificate, shift: dt.timedelta, issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
               .public_key(cert.public_key()).serial_number(cert.serial_number)  # type: ignore[arg-type]
               .not_valid_before(cert.not_valid_before_utc + shift).not_valid_after(cert.not_valid_after_utc + shift))
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return _sign(builder, issuer_key)


def present(host_dir: Path, bindings: Sequence[Mapping[str, Any]], shift: dt.timedelta, out: Path) -> list[str]:
    """The host's stores as the core's lab stand-in reads them (``out/<STORE>/<THUMBPRINT>.cer`` + ``.key``),
    re-issued ``shift`` later, and HTTP.sys's SSL table as ``kind\\taddress\\thost\\tport\\thash\\tstore`` lines."""
    root = host_dir / STORE_FOLDER
    thumbprints: dict[tuple[str, str], str] = {}
    for standard in ("MY", "WEBHOSTING"):  # every Windows server has these stores, even empty
        (out / standard).mkdir(parents=True, exist_ok=True)
    if root.is_dir():
        issuer_key = serialization.load_pem_private_key((root / "issuer-key.pem").read_bytes(), password=None)
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            target = out / folder.name.upper()
            target.mkdir(parents=True, exist_ok=True)
            for pem in sorted(folder.glob("*.pem")):
                if pem.name.endswith("-key.pem"):
                    continue
                cert = x509.load_pem_x509_certificate(pem.read_bytes())
                if shift:
                    cert = _shifted(cert, shift, issuer_key)  # type: ignore[arg-type]
                thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
                (target / f"{thumbprint}.cer").write_bytes(cert.public_bytes(serialization.Encoding.DER))
                if (folder / f"{pem.stem}-key.pem").exists():
                    (target / f"{thumbprint}.key").write_bytes(b"")
                thumbprints[(folder.name.upper(), pem.stem)] = thumbprint
    lines = []
    for binding in bindings:
        store = str(binding.get("store") or "MY").upper()
        label = binding.get("certificate")
        thumbprint = thumbprints.get((store, str(label)), "") if label else str(binding.get("thumbprint") or "")
        kind = str(binding.get("kind") or "sni")
        lines.append("\t".join([kind, str(binding.get("address") or "0.0.0.0"),
                                str(binding.get("host_name") or "") if kind == "sni" else "",
                                str(int(binding.get("port") or 443)), thumbprint, store]))
    return lines
