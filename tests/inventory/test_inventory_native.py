"""iisfleet's own inventory format: layering, validation errors with file:line (field), credentials."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from toolkit.errors import InventoryError
from toolkit.inventory import load_inventory
from toolkit.secrets import MASK, Secret

FIXTURES = Path(__file__).parent / "fixtures"

ENV = {"IISFLEET_TEST_OPS_PASSWORD": "ops-secret-value-123"}


def _fleet(prompt: Any | None = None, environ: dict[str, str] | None = None):
    return load_inventory(
        FIXTURES / "native" / "fleet.yml", prompt=prompt, environ=ENV if environ is None else environ
    )


def test_layering_defaults_groups_host() -> None:
    hosts = {h.name: h for h in _fleet().select("web,core")}
    eu1, eu2, us1 = hosts["web-eu-01"], hosts["web-eu-02"], hosts["web-us-01"]
    # defaults → group web → group web-eu → host
    assert eu1.address == "10.1.0.1"
    assert eu1.winrm.configuration_name == "IISFleet.JEA"  # from the parent group
    assert eu1.winrm.ca_bundle == "/etc/iisfleet/ca.pem"  # from defaults
    assert eu1.vars == {"site": "EU Shop", "owner": "web-team", "tier": "web"}  # child group beats defaults
    assert eu2.vars["site"] == "EU Shop 2"  # host beats groups
    assert eu1.tags == ("prod", "eu", "first")
    assert eu1.groups == ("web", "web-eu")
    assert (eu2.winrm.scheme, eu2.winrm.port, eu2.winrm.effective_port) == ("http", 8985, 8985)
    assert eu1.winrm.effective_port == 5986
    assert (us1.winrm.auth, us1.winrm.negotiate_service) == ("kerberos", "WSMAN")
    core1, core2 = hosts["core-01"], hosts["core-02"]
    assert core1.transport == "ssh" and core1.ssh.port == 2222 and core1.ssh.host_key_checking is False
    assert core2.ssh.port == 22 and core2.ssh.known_hosts == "/etc/iisfleet/known_hosts"
    assert core2.time_budget == 120.0 and core1.time_budget == 600.0


def test_groups_are_flattened_in_inventory_order() -> None:
    inventory = _fleet()
    assert inventory.groups["web"] == ("web-eu-01", "web-eu-02", "web-us-01")
    assert inventory.format == "iisfleet" and inventory.simulated is False


def test_env_credential_becomes_a_secret() -> None:
    (host,) = _fleet().select("web-eu-01")
    assert host.credential is not None
    assert host.credential.username == "CONTOSO\\svc_iisfleet"
    assert isinstance(host.credential.password, Secret)
    assert host.credential.password.reveal() == "ops-secret-value-123"


def test_missing_env_variable_is_a_clear_error_at_the_reference() -> None:
    with pytest.raises(InventoryError) as caught:
        _fleet(environ={}).select("web-eu-01")
    message = str(caught.value)
    assert "IISFLEET_TEST_OPS_PASSWORD is not set" in message
    assert re.search(r"fleet\.yml:12 \(credentials\.ops\.password\.env\)", message), message
    assert caught.value.explanation and "export IISFLEET_TEST_OPS_PASSWORD" in caught.value.explanation


def test_env_is_only_read_for_selected_hosts() -> None:
    # core hosts use an SSH key: no env var needed, so an empty environment is fine.
    hosts = _fleet(environ={}).select("core")
    assert [h.credential.password for h in hosts if h.credential] == [None, None]
    assert hosts[0].credential is not None and hosts[0].credential.key_file == "~/.ssh/id_ed25519"


def test_prompt_is_called_once_per_credential_for_many_hosts(prompt: Any) -> None:
    hosts = _fleet(prompt=prompt).select("helpdesk-boxes")
    assert len(hosts) == 3
    assert prompt.questions == ["Password for CONTOSO\\helpdesk (credential helpdesk): "]
    assert all(h.credential and h.credential.password == Secret(prompt.answer) for h in hosts)
    _ = _fleet(prompt=prompt)  # a new inventory asks again; the same one never does
    inventory = _fleet(prompt=prompt)
    inventory.select("kiosk-01")
    inventory.select("kiosk-02,kiosk-03")
    assert len(prompt.questions) == 2


def test_prompt_without_a_terminal_is_a_clear_error() -> None:
    with pytest.raises(InventoryError, match=r"interactive prompt.*none is available"):
        _fleet(prompt=None).select("kiosk-01")


def test_kerberos_credential_has_no_password() -> None:
    (host,) = _fleet().select("web-us-01")
    assert host.credential is not None
    assert host.credential.username == "svc@CONTOSO.COM" and host.credential.password is None


def test_keyring_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # makes `import keyring` fail
    with pytest.raises(InventoryError) as caught:
        _fleet().select("legacy")
    assert "'keyring' package is not installed" in str(caught.value)
    assert caught.value.explanation == "pip install 'iisfleet[keyring]'"


def test_keyring_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []
    fake = types.ModuleType("keyring")

    def get_password(service: str, user: str) -> str | None:
        asked.append((service, user))
        return "from-the-keyring-77" if (service, user) == ("iisfleet", "vaulted") else None

    fake.get_password = get_password  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", fake)
    (host,) = _fleet().select("legacy")
    assert host.credential is not None and host.credential.password == Secret("from-the-keyring-77")
    assert asked == [("iisfleet", "vaulted")]


def test_plaintext_is_accepted_in_a_simulated_inventory_and_never_shown() -> None:
    inventory = load_inventory(FIXTURES / "native" / "lab.yml")
    assert inventory.simulated is True
    hosts = inventory.select()
    assert [h.transport for h in hosts] == ["winrm", "ssh"]
    assert hosts[0].winrm.effective_port == 15985 and hosts[1].ssh.port == 12222
    credential = hosts[0].credential
    assert credential is not None and credential.password is not None
    assert credential.password.reveal() == "Lab-Pass-1234!"
    for text in (repr(hosts[0]), str(hosts[0]), repr(credential), f"{credential}", repr(inventory.hosts)):
        assert "Lab-Pass-1234!" not in text
        assert MASK in text or "plaintext" in text or "CredentialRef" in text


@pytest.mark.parametrize("case", sorted((FIXTURES / "invalid").glob("*.yml")), ids=lambda p: p.stem)
def test_invalid_inventories_name_file_line_and_field(case: Path) -> None:
    """Each file in fixtures/invalid states the line, field and message it must fail with."""
    header = dict(re.findall(r"^# (expect[\w-]*): ?(.*)$", case.read_text(), flags=re.M))
    with pytest.raises(InventoryError) as caught:
        load_inventory(case, environ={})
    error = caught.value
    assert error.path == str(case)
    assert error.line == int(header["expect-line"]), str(error)
    assert (error.field or "") == header["expect-field"].strip(), str(error)
    assert header["expect"] in str(error)
    assert str(error).startswith(f"{case}:{header['expect-line']}")


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="inventory not found"):
        load_inventory(tmp_path / "nope.yml")
    empty = tmp_path / "empty.yml"
    empty.write_text("# nothing\n")
    with pytest.raises(InventoryError, match="empty"):
        load_inventory(empty)



@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hosts:\n  web01: {address: 10.0.0.1}\n  web02: \x00\n",
         ":3: invalid YAML: unacceptable character #x0000"),
        (b"hosts:\n  caf\xe9: {}\n", ": inventory is not UTF-8 text"),
    ],
)
def test_undecodable_inventory_is_one_error_line_with_its_location(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "inv.yml"
    path.write_bytes(content)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value) == f"{path}{message}"  # one line: no PyYAML position dump


def test_host_only_named_in_a_group_uses_its_name_as_address(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("groups:\n  web: {hosts: [web09.contoso.com]}\n")
    (host,) = load_inventory(path).select()
    assert (host.name, host.address, host.credential) == ("web09.contoso.com", "web09.contoso.com", None)


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "defaults: {transport: winrm}\n"
        "hosts:\n"
        "  web01: &base {address: 10.0.0.1, tags: [a]}\n"
        "  web02:\n"
        "    <<: *base\n"
        "    address: 10.0.0.2\n"
    )
    hosts = {h.name: h for h in load_inventory(path).select()}
    assert (hosts["web02"].address, hosts["web02"].tags) == ("10.0.0.2", ("a",))
