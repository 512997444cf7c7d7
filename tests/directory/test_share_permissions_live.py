"""Share-level permissions read from the file server's Server Service (srvsvc NetrShareGetInfo over SMB) and
diagnosed together with the NTFS ACL, against a real Samba AD DC (marker ``samba``).

The fixture's ``archive`` share (tests/fixtures/directory/domain.yml): its folder ``site`` lets every domain
user read through NTFS, while the share itself (set with ``sharesec``) grants Administrators Full, Everyone
only Read, and denies CONTOSO\\svc_shop outright.
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import pytest

from toolkit.directory.collect import collect, needs_from_hosts
from toolkit.directory.facts import facts_from_document
from toolkit.directory.ldap import DirectoryError
from toolkit.directory.smb import SmbReader, collect_file_servers, parse_unc
from toolkit.models import Credential
from toolkit.parsers.sddl import parse_sddl
from toolkit.secrets import Secret

sys.path.insert(0, str(Path(__file__).parents[1] / "diagnose"))
from diag_builders import causes_by_host, host_from_spec  # noqa: E402

from test_smb_live import config  # noqa: E402 - the NTLM directory configuration of the lab domain

pytestmark = pytest.mark.samba
PASSWORD = "Lab!Passw0rd-1"


def user(sam: str) -> Credential:
    return Credential(name="t", username=f"CONTOSO\\{sam}", password=Secret(PASSWORD))


def admin(domain) -> Credential:
    """Reading a share's permissions takes an administrator of the file server (MS-SRVS: level 502 is for
    Administrators, Server Operators and Power Users; Samba withholds the descriptor from others)."""
    return Credential(name="t", username="CONTOSO\\Administrator", password=Secret(domain.dc.spec.admin_password))


def test_share_permissions_read_back_from_srvsvc(lab_domain) -> None:
    reader = SmbReader(config(lab_domain), admin(lab_domain))
    try:
        archive = reader.share_security(lab_domain.ip, "archive")
        content = reader.share_security(lab_domain.ip, "content")
        with pytest.raises(DirectoryError) as missing:
            reader.share_security(lab_domain.ip, "nosuch")
    finally:
        reader.close()
    # exactly what sharesec wrote, in its order: the deny first, Everyone Read (0x1200a9), Administrators Full
    shop = lab_domain.seeded["share_permissions"]["archive"][2].split(":")[0]
    assert archive.sddl == f"D:(D;;0x1f01ff;;;{shop})(A;;0x1200a9;;;S-1-1-0)(A;;0x1f01ff;;;S-1-5-32-544)"
    assert archive.level == 502 and archive.note == ""
    assert archive.path.replace("\\", "/").endswith("/shares/archive")
    assert archive.protection == "SMB3 encryption"  # the RPC rode an encrypted SMB 3 session
    assert content.sddl == "D:(A;;0x1f01ff;;;S-1-1-0)"  # Samba's default: Everyone Full
    assert missing.value.category == "not-found" and "nosuch" in str(missing.value)


def test_the_server_enforces_what_the_share_descriptor_says(lab_domain) -> None:
    """The descriptor read back is the one smbd enforces: svc_shop is refused at the share even though NTFS
    lets it read, and alice may read but not write (the share grants Everyone only Read)."""
    from smbprotocol.open import CreateDisposition, CreateOptions, FilePipePrinterAccessMask, ImpersonationLevel, \
        Open, ShareAccess

    unc = parse_unc(f"\\\\{lab_domain.ip}\\archive\\site\\index.htm")
    denied = SmbReader(config(lab_domain), user("svc_shop"))
    try:
        with pytest.raises(DirectoryError) as caught:
            denied.read_file(unc)
        assert caught.value.category == "access-denied" and "share" in str(caught.value)
    finally:
        denied.close()
    reader = SmbReader(config(lab_domain), user("alice"))
    try:
        assert reader.read_file(unc) == b"archive\n"
        tree = reader._tree(unc)
        handle = Open(tree, "site\\new-" + uuid.uuid4().hex[:8] + ".txt")
        with pytest.raises(Exception, match="(?i)access.?denied"):
            handle.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.FILE_WRITE_DATA, 0,
                          ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_CREATE,
                          CreateOptions.FILE_NON_DIRECTORY_FILE)
    finally:
        reader.close()


def test_effective_access_is_the_intersection(lab_domain) -> None:
    """unc_access on the two descriptors read from the server agrees with what smbd enforced above."""
    from toolkit.diagnose.security import unc_access

    reader = SmbReader(config(lab_domain), admin(lab_domain))
    try:
        share = parse_sddl(reader.share_security(lab_domain.ip, "archive").sddl)
        ntfs = parse_sddl(reader.security_descriptor(parse_unc(f"\\\\{lab_domain.ip}\\archive\\site")))
    finally:
        reader.close()
    domain_users = next(ace.trustee_sid for ace in ntfs.dacl if ace.trustee_sid.endswith("-513"))
    shop_sid = lab_domain.seeded["share_permissions"]["archive"][2].split(":")[0]
    member = [{"name": "CONTOSO\\Domain Users", "sid": domain_users,
               "members": [{"name": "CONTOSO\\alice", "sid": "S-1-5-21-1-2-3-1104"}]},
              {"name": "CONTOSO\\Domain Users", "sid": domain_users,
               "members": [{"name": "CONTOSO\\svc_shop", "sid": shop_sid}]}]
    alice = unc_access(ntfs, share, "CONTOSO\\alice", member)
    assert alice.read is True and alice.write is False
    assert alice.write_decided_by == "share and NTFS"  # NTFS grants Domain Users only READ as well
    shop = unc_access(ntfs, share, "CONTOSO\\svc_shop", member)
    assert shop.read is False and shop.read_decided_by == "share"
    assert shop.ntfs_read.read and "Deny" in shop.share_read.deciding_ace


def test_share_level_deny_diagnosed_where_ntfs_allows(lab_domain) -> None:
    """A pool running as CONTOSO\\svc_shop serves \\\\dc\\archive\\site: NTFS allows it (through Domain Users,
    a group only the directory knows it is in), the share denies it. The web server could read neither
    descriptor (second hop); the controller reads both on the file server and the share decides."""
    from toolkit.diagnose import diagnose

    unc = f"\\\\{lab_domain.ip}\\archive\\site"
    spec = {
        "facts": {"computer_name": "WEB06", "fqdn": "web06.contoso.test", "utc_now": "2026-11-24T12:00:00Z",
                  "domain_joined": True},
        "sites": [{"name": "Archive", "physical": unc, "pool": "ArchivePool",
                   "anonymous": {"enabled": True, "user_name": ""}}],
        "pools": [{"name": "ArchivePool", "identity_type": "SpecificUser", "user_name": "CONTOSO\\svc_shop"}],
        "log": [{"site": "Archive", "sub": 3, "win32": 5, "terminal": 21}],
        "acl": [{"site": "Archive", "physical": unc, "unc": True}],  # no descriptor: the second hop failed
    }
    hosts = {"web06": host_from_spec("web06", spec)}
    files = collect_file_servers(config(lab_domain), admin(lab_domain), hosts)
    assert [p["share"] for p in files["share_permissions"]] == [f"\\\\{lab_domain.ip}\\archive"]
    assert files["share_permissions"][0]["level"] == 502
    needs = needs_from_hosts(hosts)
    for entry in files["shares"] + files["share_permissions"]:
        needs.sids |= set(re.findall(r"S-1-5-21-[\d-]+", entry.get("sddl", "")))
    doc = collect(config(lab_domain), user("alice"), needs)
    doc.update(files)
    result = diagnose(hosts, directory=facts_from_document(doc))
    found = causes_by_host(result.findings)
    assert "unc-share-acl-mismatch" in found["web06"], found
    assert "content-acl-denied" not in found["web06"] and "unexplained" not in found["web06"]
    finding = next(f for f in result.findings if f.cause == "unc-share-acl-mismatch")
    assert finding.confidence.level == "high"
    assert "fails the share check" in finding.confidence.reason
    assert "Deny CONTOSO\\svc_shop" in finding.confidence.reason, finding.confidence.reason
    acl = {e.source.element: e.summary for e in finding.evidence if e.kind == "acl"}
    assert "can read" in acl["ntfs"] and "Domain Users" in acl["ntfs"] and "file server" in acl["ntfs"]
    assert "cannot read" in acl["share"] and "srvsvc NetrShareGetInfo" in acl["share"], acl
    assert finding.fix.command == 'Unblock-SmbShareAccess -Name "archive" -AccountName "CONTOSO\\svc_shop" -Force'
