"""Get-IisCertificate's C# core (IisFleet.Target.CertificateCollector) under Mono, fed real X.509 certificates
made with ``cryptography`` through the lab's stand-ins for httpapi.dll and the LocalMachine store: every name,
date and usage is decoded from the DER bytes exactly as Python's own X.509 parser reads them; a certificate the
store lacks, a store that cannot be opened and an HTTP.sys query that fails are per-binding or per-kind errors."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from toolkit.collectors import get_collector
from toolkit.contract import validate_envelope
from toolkit.lab.certstore import CertificateSpec, derived_key, issuer, present, write_store
from toolkit.lab.model.corehost import CoreHost, SimulatedHost
from toolkit.lab.model.presented import HOST_VARIABLES

NOW = dt.datetime(2026, 11, 24, 12, 0, 0)


def _host() -> SimulatedHost:
    return SimulatedHost("WEB07", "2026-11-24T12:00:00Z", mounts=[], variables=dict(HOST_VARIABLES))


def _collect(core_host: CoreHost, tmp_path: Path, specs: list[CertificateSpec], bindings: list[dict],
             collector: str = "Get-IisCertificate", **extra: object) -> dict:
    write_store(tmp_path / "host", "web07", specs)
    folder = tmp_path / "presented"
    lines = present(tmp_path / "host", bindings, dt.timedelta(0), folder)
    answer = core_host.run(collector, _host(), {"MaxBindings": 500, "__SslBindings": lines,
                                                "__CertificateFolder": str(folder), **extra})
    assert answer.error is None, answer.error
    return validate_envelope(answer.outputs[0], collector=get_collector("Get-IisCertificate"), host="web07")


def test_every_field_is_decoded_as_pythons_x509_reads_the_same_bytes(core_host: CoreHost, tmp_path: Path) -> None:
    spec = CertificateSpec("shop", "shop.contoso.com", ("shop.contoso.com", "*.shop.contoso.com"),
                           NOW - dt.timedelta(days=300), NOW + dt.timedelta(days=10))
    envelope = _collect(core_host, tmp_path, [spec], [
        {"kind": "sni", "host_name": "shop.contoso.com", "port": 443, "store": "MY", "certificate": "shop"}])
    [binding] = envelope["data"]["ssl_bindings"]
    assert (binding["kind"], binding["endpoint"], binding["port"], binding["store"]) == \
        ("sni", "shop.contoso.com:443", 443, "MY")
    assert binding["certificate_status"] == "found"
    cert = x509.load_pem_x509_certificate((tmp_path / "host/certstore/MY/shop.pem").read_bytes())
    got = binding["certificate"]
    assert got["thumbprint"] == binding["certificate_hash"] == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert got["subject_cn"] == "shop.contoso.com"
    assert got["dns_names"] == ["shop.contoso.com", "*.shop.contoso.com"]
    assert got["not_before_utc"] == "2026-01-28T12:00:00Z" and got["not_after_utc"] == "2026-12-04T12:00:00Z"
    assert got["has_private_key"] is True and got["self_signed"] is False
    assert got["enhanced_key_usage"] == ["1.3.6.1.5.5.7.3.1"]
    assert got["key_usage"] == ["digitalSignature", "keyAgreement"]
    assert got["signature_algorithm"] == "1.2.840.10045.4.3.2"  # ecdsa-with-SHA256
    assert "Contoso Lab Issuing CA" in got["issuer"]


def test_no_san_no_key_other_store_and_a_missing_certificate(core_host: CoreHost, tmp_path: Path) -> None:
    specs = [CertificateSpec("legacy", "legacy.contoso.com", (), NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=300),
                             store="WebHosting", private_key=False, server_auth=False)]
    envelope = _collect(core_host, tmp_path, specs, [
        {"kind": "ip", "address": "10.0.0.5", "port": 8443, "store": "WebHosting", "certificate": "legacy"},
        {"kind": "ip", "address": "0.0.0.0", "port": 443, "store": "MY", "thumbprint": "AB" * 20},
        {"kind": "ccs", "address": "0.0.0.0", "port": 443, "store": "MY", "thumbprint": ""}])
    legacy, missing, ccs = envelope["data"]["ssl_bindings"]
    assert legacy["endpoint"] == "10.0.0.5:8443" and legacy["store"] == "WEBHOSTING"
    assert legacy["certificate"]["dns_names"] == [] and legacy["certificate"]["subject_cn"] == "legacy.contoso.com"
    assert legacy["certificate"]["has_private_key"] is False
    assert legacy["certificate"]["enhanced_key_usage"] == ["1.3.6.1.5.5.7.3.2"]
    assert (missing["certificate_status"], missing["certificate"]) == ("not-found", None)
    assert missing["certificate_hash"] == "AB" * 20
    assert (ccs["kind"], ccs["endpoint"], ccs["certificate_status"]) == ("ccs", "*:443", "central-store")
    assert envelope["errors"] == []


def test_ip_san_and_a_bmp_string_common_name(core_host: CoreHost, tmp_path: Path) -> None:
    issuer_key, issuer_cert = issuer("web07")
    key = derived_key("bmp")
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intranet.contoso.com",
                                                        _type=x509.name._ASN1Type.BMPString)]))
            .issuer_name(issuer_cert.subject).public_key(key.public_key()).serial_number(7)
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=100))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
                                                        x509.DNSName("intranet")]), critical=False)
            .sign(issuer_key, hashes.SHA256()))
    folder = tmp_path / "presented" / "MY"
    folder.mkdir(parents=True)
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    from cryptography.hazmat.primitives.serialization import Encoding
    (folder / f"{thumbprint}.cer").write_bytes(cert.public_bytes(Encoding.DER))
    answer = core_host.run("Get-IisCertificate", _host(), {
        "MaxBindings": 500, "__SslBindings": [f"ip\t10.1.2.3\t\t443\t{thumbprint}\tMY"],
        "__CertificateFolder": str(tmp_path / "presented")})
    envelope = validate_envelope(answer.outputs[0], collector=get_collector("Get-IisCertificate"), host="web07")
    got = envelope["data"]["ssl_bindings"][0]["certificate"]
    assert got["subject_cn"] == "intranet.contoso.com"
    assert got["ip_addresses"] == ["10.1.2.3"] and got["dns_names"] == ["intranet"]
    assert got["key_usage"] is None and got["enhanced_key_usage"] is None  # no extension: any usage


def test_a_failing_query_or_store_is_an_error_and_the_rest_arrives(core_host: CoreHost, tmp_path: Path) -> None:
    specs = [CertificateSpec("a", "a.contoso.com", ("a.contoso.com",), NOW, NOW + dt.timedelta(days=90)),
             CertificateSpec("b", "b.contoso.com", ("b.contoso.com",), NOW, NOW + dt.timedelta(days=90), store="Locked")]
    envelope = _collect(core_host, tmp_path, specs, [
        {"kind": "sni", "host_name": "a.contoso.com", "port": 443, "certificate": "a"},
        {"kind": "sni", "host_name": "b.contoso.com", "port": 443, "store": "Locked", "certificate": "b"},
        {"kind": "ip", "address": "0.0.0.0", "port": 443, "certificate": "a"}],
        collector="Test-Certificate", FailKinds=["ip"], FailStores=["LOCKED"])
    bindings = envelope["data"]["ssl_bindings"]
    assert [(b["host_name"], b["certificate_status"]) for b in bindings] == \
        [("a.contoso.com", "found"), ("b.contoso.com", "unreadable")]
    assert sorted((e["probe"], e["category"]) for e in envelope["errors"]) == \
        [("certificate-store", "other"), ("http.sys-ip", "other")]


def test_max_bindings_caps_and_says_so(core_host: CoreHost, tmp_path: Path) -> None:
    bindings = [{"kind": "ip", "address": f"10.0.0.{n}", "port": 443, "thumbprint": "CD" * 20} for n in range(1, 6)]
    envelope = _collect(core_host, tmp_path, [], bindings, MaxBindings=3)
    assert len(envelope["data"]["ssl_bindings"]) == 3 and envelope["data"]["truncated"] is True
    assert [e["category"] for e in envelope["errors"]] == ["cap"]
