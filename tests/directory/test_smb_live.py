"""UNC content descriptors read from the file server over SMB (a Samba AD DC's share, marker ``samba``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from toolkit.directory.collect import collect, needs_from_hosts
from toolkit.directory.config import DirectoryConfig
from toolkit.directory.facts import facts_from_document
from toolkit.directory.ldap import DirectoryError
from toolkit.directory.smb import SmbReader, collect_shares, parse_unc
from toolkit.models import Credential
from toolkit.secrets import Secret

sys.path.insert(0, str(Path(__file__).parents[1] / "diagnose"))
from diag_builders import causes_by_host, host_from_spec  # noqa: E402

pytestmark = pytest.mark.samba
PASSWORD = "Lab!Passw0rd-1"


def config(domain) -> DirectoryConfig:
    return DirectoryConfig(dcs=(domain.ip,), auth="ntlm", scheme="ldaps", ca_bundle=domain.ca,
                           tls_name=domain.dc_fqdn)


def alice() -> Credential:
    return Credential(name="t", username="CONTOSO\\alice", password=Secret(PASSWORD))


def test_descriptor_from_the_file_server(lab_domain) -> None:
    reader = SmbReader(config(lab_domain), alice())
    try:
        sddl = reader.security_descriptor(parse_unc(f"\\\\{lab_domain.ip}\\content\\reports"))
        file_sddl = reader.security_descriptor(parse_unc(f"\\\\{lab_domain.ip}\\content\\reports\\q1.txt"))
        text = reader.read_file(parse_unc(f"\\\\{lab_domain.ip}\\content\\reports\\q1.txt"))
    finally:
        reader.close()
    # smbcacls set this with ACL revision 3; the deny ACE for svc_portal_old comes first (canonical order)
    assert re.search(r"\(D;OICI;0x1f01ff;;;S-1-5-21-[\d-]+\)", sddl), sddl
    assert re.search(r"\(A;OICI;0x1200a9;;;S-1-5-21-[\d-]+\)", sddl), sddl  # WebAdmins: READ
    deny = re.search(r"\(D;OICI;0x1f01ff;;;(S-1-5-21-[\d-]+)\)", sddl).group(1)
    assert f"(D;;0x1f01ff;;;{deny})" in file_sddl  # the file written over SMB got the folder's deny ACE
    assert text == b"quarterly report\n"


def test_missing_path_and_denied_reader_are_categorised(lab_domain) -> None:
    reader = SmbReader(config(lab_domain), alice())
    try:
        with pytest.raises(DirectoryError) as missing:
            reader.security_descriptor(parse_unc(f"\\\\{lab_domain.ip}\\content\\nope"))
        assert missing.value.category == "not-found"
    finally:
        reader.close()
    denied = SmbReader(config(lab_domain), Credential(name="t", username="CONTOSO\\svc_portal_old",
                                                       password=Secret(PASSWORD)))
    try:
        with pytest.raises(DirectoryError) as caught:
            denied.read_file(parse_unc(f"\\\\{lab_domain.ip}\\content\\reports\\q1.txt"))
        assert caught.value.category == "access-denied"
        assert PASSWORD not in str(caught.value)
    finally:
        denied.close()


def test_unc_deny_ace_diagnosed_from_the_file_servers_descriptor(lab_domain) -> None:
    """The web server could not read the UNC descriptor (second hop); the controller reads it on the file
    server, names the SIDs through the directory, and the DENY ACE for the pool identity is the finding."""
    from toolkit.diagnose import diagnose

    unc = f"\\\\{lab_domain.ip}\\content\\reports"
    spec = {
        "facts": {"computer_name": "WEB05", "fqdn": "web05.contoso.test", "utc_now": "2026-11-24T12:00:00Z",
                  "domain_joined": True},
        "sites": [{"name": "Reports", "physical": unc, "pool": "ReportsPool", "anonymous": {"enabled": True,
                                                                                           "user_name": ""}}],
        "pools": [{"name": "ReportsPool", "identity_type": "SpecificUser", "user_name": "CONTOSO\\svc_portal_old"}],
        "log": [{"site": "Reports", "sub": 3, "win32": 5, "terminal": 21}],
        "acl": [{"site": "Reports", "physical": unc, "unc": True}],  # no descriptor: the second hop failed
    }
    hosts = {"web05": host_from_spec("web05", spec)}
    without = diagnose(hosts)
    assert [f.confidence.level for f in without.findings if f.cause == "content-acl-denied"] == ["low"]

    shares = collect_shares(config(lab_domain), alice(), hosts)
    assert [s["unc"] for s in shares] == [unc] and "sddl" in shares[0]
    needs = needs_from_hosts(hosts)
    needs.sids |= set(re.findall(r"S-1-5-21-[\d-]+", shares[0]["sddl"]))
    doc = collect(config(lab_domain), alice(), needs)
    doc["shares"] = shares
    result = diagnose(hosts, directory=facts_from_document(doc))
    found = causes_by_host(result.findings)
    assert "content-acl-denied" in found["web05"] and "unexplained" not in found["web05"]
    finding = next(f for f in result.findings if f.cause == "content-acl-denied")
    acl = " | ".join(e.summary for e in finding.evidence if e.kind == "acl")
    assert "Deny CONTOSO\\svc_portal_old" in acl and "file server" in acl, acl
    assert finding.confidence.level == "high"
