"""Kerberos over SMB against the real Samba AD DC (marker ``samba``): a ticket from the DC's KDC (MIT kinit, as an
admin would) opens the file server's paths by name (SPN ``cifs/dc1.contoso.test``); a name no account holds and
a missing ticket fail with the KDC's / the cache's own reason as categorised errors."""

from __future__ import annotations

import pytest

from toolkit.directory.config import DirectoryConfig
from toolkit.directory.ldap import DirectoryError
from toolkit.directory.smb import SmbReader, parse_unc

pytestmark = pytest.mark.samba


def kerberos(domain) -> DirectoryConfig:
    # the DC is reached by address and named by tls_name: SMB connects there and asks for cifs/<tls_name>
    return DirectoryConfig(dcs=(domain.ip,), auth="kerberos", ca_bundle=domain.ca, tls_name=domain.dc_fqdn)


def test_ntfs_descriptor_and_share_permissions_with_a_ticket(lab_domain, monkeypatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", lab_domain.kinit("alice"))
    reader = SmbReader(kerberos(lab_domain), None)
    try:
        sddl = reader.security_descriptor(parse_unc(f"\\\\{lab_domain.dc_fqdn}\\content\\reports"))
    finally:
        reader.close()
    assert "(D;OICI;0x1f01ff;;;S-1-5-21-" in sddl and "(A;OICI;0x1200a9;;;S-1-5-21-" in sddl
    monkeypatch.setenv("KRB5CCNAME", lab_domain.kinit("Administrator", lab_domain.dc.spec.admin_password))
    reader = SmbReader(kerberos(lab_domain), None)
    try:
        share = reader.share_security(lab_domain.dc_fqdn, "archive")
    finally:
        reader.close()
    assert share.level == 502 and share.sddl is not None and "(A;;0x1200a9;;;S-1-1-0)" in share.sddl
    assert share.protection == "SMB3 encryption"


def test_shared_configuration_farm_read_with_kerberos(lab_domain, tmp_path, monkeypatch) -> None:
    """The run's directory step with ``auth: kerberos``: LDAP over GSSAPI and SMB with the same ticket read the
    farm's redirected applicationHost.config from \\\\dc1.contoso.test\\content\\iisconfig."""
    pytest.importorskip("gssapi", reason="python-gssapi is not installed (it needs libkrb5-dev to build)")
    from test_run_directory_live import sample_run, use_shared_configuration

    from toolkit.diagnose.evidence import evidence_from_run
    from toolkit.directory import collect_for_run
    from toolkit.directory.facts import load_directory, with_shared_configuration
    from toolkit.rundir import load_run

    monkeypatch.setenv("KRB5CCNAME", lab_domain.kinit("alice"))
    run = sample_run(tmp_path / "run")
    folder = f"\\\\{lab_domain.dc_fqdn}\\content\\iisconfig"
    use_shared_configuration(run, folder)
    document = collect_for_run(run, kerberos(lab_domain), None)
    [farm] = document["shared_configs"]
    assert "error" not in farm, farm
    assert farm["file"] == folder + "\\applicationHost.config" and 'name="FarmPool"' in farm["content"]
    hosts = evidence_from_run(with_shared_configuration(load_run(run), load_directory(run)))
    assert [s.name for s in hosts["web01"].config.sites] == ["Farm"]


def test_wrong_spn_fails_with_the_kdcs_reason(lab_domain, monkeypatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", lab_domain.kinit("alice"))
    # a name that reaches the file server but that no account holds cifs/ for
    reader = SmbReader(kerberos(lab_domain), None, addresses={"files.contoso.test": lab_domain.ip})
    try:
        with pytest.raises(DirectoryError) as caught:
            reader.security_descriptor(parse_unc("\\\\files.contoso.test\\content\\reports"))
    finally:
        reader.close()
    assert caught.value.category == "auth"
    message = str(caught.value)
    assert "Server not found in Kerberos database" in message and "cifs/files.contoso.test" in message
    assert "SpnegoError" not in message  # the KDC's words, not the library's wrapping


def test_no_ticket_and_an_address_are_clear_errors(lab_domain, monkeypatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{lab_domain.dir / 'krb5cc_nobody'}")
    reader = SmbReader(kerberos(lab_domain), None)
    try:
        with pytest.raises(DirectoryError) as no_ticket:
            reader.security_descriptor(parse_unc(f"\\\\{lab_domain.dc_fqdn}\\content\\reports"))
        with pytest.raises(DirectoryError) as address:
            reader.security_descriptor(parse_unc(f"\\\\{lab_domain.ip}\\content\\reports"))
    finally:
        reader.close()
    assert no_ticket.value.category == "auth" and "No Kerberos credentials available" in str(no_ticket.value)
    assert "kinit" in str(no_ticket.value)
    assert address.value.category == "auth" and "needs the file server's name" in str(address.value)
