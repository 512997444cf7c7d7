"""The inventory's directory section (iisfleet YAML ``directory:``, Ansible ``iisfleet_directory``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import InventoryError
from toolkit.inventory import load_inventory

FIXTURES = Path(__file__).parent / "fixtures"


def test_native_directory_section(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "credentials:\n"
        "  ops: {username: 'CONTOSO\\svc', password: {env: OPS_PW}}\n"
        "  kerb: {username: svc@CONTOSO.COM, kerberos: true}\n"
        "hosts: {web01: {credential: ops}}\n"
        "directory:\n"
        "  dcs: [dc1.contoso.com, 'dc2.contoso.com:3636']\n"
        "  credential: kerb\n"
        "  ca_bundle: /etc/pki/ca.pem\n")
    inventory = load_inventory(path, environ={"OPS_PW": "pw-value-1"})
    d = inventory.directory
    assert d.dcs == ("dc1.contoso.com", "dc2.contoso.com:3636")
    assert (d.auth, d.scheme, d.ldap_port, d.gc_port, d.global_catalog) == ("kerberos", "ldaps", 636, 3269, True)
    assert d.credential.kind == "kerberos"
    assert "pw-value-1" not in str(d.describe())


def test_no_directory_section_means_none(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("hosts: {web01: {address: web01.contoso.com}}\n")
    assert load_inventory(path, environ={}).directory is None


def test_ansible_directory_variable() -> None:
    inventory = load_inventory(FIXTURES / "ansible" / "with-directory" / "hosts.ini", environ={})
    d = inventory.directory
    assert d.auth == "ntlm" and d.dcs == ("dc1.contoso.com", "dc2.contoso.com")
    assert d.credential.kind == "env" and d.credential.reference == "IISFLEET_DIR_PW"
    assert d.credential.username == "CONTOSO\\svc_iisfleet"


def test_ansible_directory_ntlm_without_password_is_refused(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.ini").write_text("[web]\nweb01 ansible_connection=psrp\n")
    (tmp_path / "group_vars" / "all.yml").write_text("iisfleet_directory: {dcs: [dc1], auth: ntlm}\n")
    with pytest.raises(InventoryError, match="needs a credential"):
        load_inventory(tmp_path / "hosts.ini", environ={})


def test_engine_key_native_and_ansible(tmp_path: Path) -> None:
    """``engine:`` (iisfleet YAML) and ``iisfleet_engine`` (Ansible ``all`` vars) name the default engine."""
    native = tmp_path / "inv.yml"
    native.write_text("engine: celery\nhosts: {web01: {address: web01.contoso.com}}\n")
    assert load_inventory(native, environ={}).engine == "celery"
    native.write_text("hosts: {web01: {address: web01.contoso.com}}\n")
    assert load_inventory(native, environ={}).engine is None
    (tmp_path / "ansible").mkdir()
    ansible = tmp_path / "ansible" / "hosts.yml"
    ansible.write_text("all:\n  vars: {iisfleet_engine: local}\n  hosts: {web01: {ansible_connection: psrp}}\n")
    assert load_inventory(ansible, environ={}).engine == "local"


@pytest.mark.parametrize("text, line", [
    ("hosts: {web01: {address: w}}\nengine: cellery\n", 2),
    ("all:\n  vars:\n    iisfleet_engine: threads\n  hosts: {web01: {ansible_connection: psrp}}\n", 3),
])
def test_unknown_engine_is_refused_with_its_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, environ={})
    assert "unknown engine" in str(caught.value) and caught.value.line == line, str(caught.value)
