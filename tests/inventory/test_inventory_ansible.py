"""Ansible inventories: INI and YAML resolve to the same hosts; group_vars/host_vars; odd cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from toolkit.errors import InventoryError
from toolkit.inventory import load_inventory
from toolkit.models import HostConfig
from toolkit.secrets import Secret

FIXTURES = Path(__file__).parent / "fixtures"

FLEET = FIXTURES / "ansible" / "windows-fleet"
EXPECTED = yaml.safe_load((FLEET / "expected.yml").read_text())


def _load(name: str) -> list[HostConfig]:
    return load_inventory(FLEET / name, environ=EXPECTED["env"]).select()


def _field(host: HostConfig, name: str) -> Any:
    if name == "username":
        return host.credential.username if host.credential else None
    if name == "password":
        password = host.credential.password if host.credential else None
        return password.reveal() if password else None
    if name == "key_file":
        return host.credential.key_file if host.credential else None
    if name in ("groups", "tags"):
        return list(getattr(host, name))
    value: Any = host
    for part in name.split("."):
        value = getattr(value, part)
    return value


def test_ini_and_yaml_resolve_to_the_same_hosts() -> None:
    from_ini, from_yaml = _load("hosts.ini"), _load("hosts.yml")
    assert [h.name for h in from_ini] == [h.name for h in from_yaml]
    assert from_ini == from_yaml  # every field, credentials (Secret compares by value) included


@pytest.mark.parametrize("source", ["hosts.ini", "hosts.yml"])
def test_resolved_hosts_match_expected(source: str) -> None:
    hosts = {h.name: h for h in _load(source)}
    assert sorted(hosts) == sorted(EXPECTED["hosts"])
    inventory = load_inventory(FLEET / source, environ=EXPECTED["env"])
    for name, fields in EXPECTED["hosts"].items():
        host = hosts[name]
        for field, expected in fields.items():
            if field == "credential_kind":
                entry = inventory.hosts[name]
                assert entry.credential is not None and entry.credential.kind == expected, name
                continue
            assert _field(host, field) == expected, f"{source}: {name}.{field}"


def test_formats_are_detected() -> None:
    assert load_inventory(FLEET / "hosts.ini").format == "ansible-ini"
    assert load_inventory(FLEET / "hosts.yml").format == "ansible-yaml"


def test_host_vars_beat_group_vars_beat_inline_group_vars(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "hosts").write_text(
        "[web]\nweb01 role=inline-host\nweb02\n\n[web:vars]\nrole=inline-group\nlevel=inline-group\n"
        "ansible_connection=psrp\n"
    )
    (tmp_path / "group_vars" / "all.yaml").write_text("role: all\nlevel: all\nfrom_all: yes\n")
    (tmp_path / "group_vars" / "web.yml").write_text("level: group-file\n")
    (tmp_path / "host_vars" / "web01.json").write_text('{"role": "host-file"}')
    hosts = {h.name: h for h in load_inventory(tmp_path / "hosts").select()}
    assert hosts["web01"].vars == {"role": "host-file", "level": "group-file", "from_all": True}
    # group_vars files beat the inventory file's [web:vars]; group_vars/all is beaten by group_vars/web
    assert hosts["web02"].vars == {"role": "all", "level": "group-file", "from_all": True}


def test_deeper_group_wins_over_parent(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text(
        "[eu]\nweb01\n\n[web:children]\neu\n\n[web:vars]\nansible_connection=psrp\nansible_psrp_auth=ntlm\n"
        "\n[eu:vars]\nansible_psrp_auth=kerberos\n"
    )
    (host,) = load_inventory(tmp_path / "inv.ini").select()
    assert host.winrm.auth == "kerberos" and host.groups == ("web", "eu")


def test_inline_password_is_accepted_with_a_warning_and_masked() -> None:
    inventory = load_inventory(FIXTURES / "ansible" / "odd" / "inventory.ini")
    hosts = {h.name: h for h in inventory.select("win-inline")}
    credential = hosts["win-inline"].credential
    assert credential is not None and credential.password == Secret("Inline-Pass-99")
    assert "Inline-Pass-99" not in repr(hosts["win-inline"])
    assert any("inventory.ini:3: ansible_password holds a password" in w for w in inventory.warnings)
    assert not any("Inline-Pass-99" in w for w in inventory.warnings)


def test_odd_but_valid_ansible_inputs() -> None:
    inventory = load_inventory(FIXTURES / "ansible" / "odd" / "inventory.ini")
    assert "linux-box" not in inventory.hosts
    assert any("linux-box" in w and "'local'" in w for w in inventory.warnings)
    port = inventory.hosts["win-port"]
    assert (port.winrm.port, port.winrm.scheme, port.winrm.auth) == (5990, "http", "ntlm")
    assert port.credential is not None and port.credential.kind == "prompt"  # NTLM with no password
    template = inventory.hosts["win-template"]
    assert template.address == "win-template.corp.example"
    assert template.winrm.auth == "kerberos"  # first of the ansible_winrm_transport list


def test_vault_values_are_refused_with_a_hint() -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(FIXTURES / "ansible" / "odd" / "vault.yml").select()
    assert "vault.yml:5" in str(caught.value) and "lookup('env'" in str(caught.value)


def test_env_lookup_missing_variable_names_the_group_vars_file() -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(FLEET / "hosts.ini", environ={}).select("web-eu-01")
    assert "IISFLEET_ANSIBLE_PASSWORD is not set" in str(caught.value)
    assert caught.value.path is not None and caught.value.path.endswith("group_vars/all.yml")
    assert caught.value.line == 2


def test_an_inventory_directory_merges_its_files(tmp_path: Path) -> None:
    (tmp_path / "01-web.ini").write_text("[web]\nweb01 ansible_connection=psrp\n")
    (tmp_path / "02-ssh.yml").write_text("all:\n  children:\n    core:\n      hosts:\n        core01:\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "core.yml").write_text("ansible_port: 2022\n")
    inventory = load_inventory(tmp_path)
    assert list(inventory.hosts) == ["web01", "core01"]
    assert inventory.hosts["core01"].ssh.port == 2022


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[web\nweb01\n", "inv.ini:1: bad section header"),
        ("[web:bogus]\nweb01\n", "inv.ini:1: bad section header"),
        (
            "[web]\nweb01 ansible_connection=psrp ansible_port=http\n",
            "inv.ini:2 (ansible_port): expected a TCP port",
        ),
        ("[web]\nweb[3:1]\n", "inv.ini:2 (hosts): empty host range"),
        ("[web]\nweb01 novalue\n", "inv.ini:2 (web01): expected key=value"),
        ('[web]\nweb01 ansible_connection=psrp ansible_password="{{ vault_pw }}"\n', "lookup('env'"),
    ],
)
def test_bad_ini_lines_name_the_line(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "inv.ini").write_text(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv.ini").select()
    assert fragment in str(caught.value)



@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "[all:vars]\nansible_password: Not-In-Errors-7\n",
            "inv.ini:2 (all:vars): expected key=value, got 'ansible_password'",
        ),
        (
            "[web]\nweb01 ansible_password:Not-In-Errors-7\n",
            "inv.ini:2 (web01): expected key=value after the host name, got 'ansible_password'",
        ),
    ],
)
def test_malformed_password_line_is_named_without_its_value(tmp_path: Path, text: str, fragment: str) -> None:
    """``ansible_password: x`` (YAML habit in an INI file) is an error that must not print the password."""
    (tmp_path / "inv.ini").write_text(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv.ini").select()
    assert fragment in str(caught.value)
    assert "Not-In-Errors-7" not in str(caught.value)



@pytest.mark.parametrize("group", ["/", "..", "../elsewhere"])
def test_group_named_like_a_path_reads_no_vars_outside_the_inventory(tmp_path: Path, group: str) -> None:
    """group_vars/<name> with name "/" is the filesystem root: such a group has no vars files at all."""
    inventory_dir = tmp_path / "inventory"
    (inventory_dir / "group_vars").mkdir(parents=True)
    (tmp_path / "elsewhere.yml").write_text("ansible_port: 1\n")  # group_vars/../elsewhere.yml
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "x.yml").write_text("ansible_port: 2\n")  # what ".." would walk into
    (inventory_dir / "inv.ini").write_text(f"[{group}]\nweb01 ansible_connection=psrp\n")
    hosts = load_inventory(inventory_dir / "inv.ini").select()
    assert [h.name for h in hosts] == ["web01"]
    assert hosts[0].winrm.effective_port == 5986  # neither file's ansible_port was read


def test_ansible_prompt_once_per_user_for_many_hosts(tmp_path: Path, prompt: Any) -> None:
    (tmp_path / "inv.ini").write_text(
        "[web]\nweb[01:05] ansible_user=ops\nweb09 ansible_user=other\n\n[web:vars]\n"
        "ansible_connection=winrm\nansible_winrm_transport=ntlm\n"
    )
    hosts = load_inventory(tmp_path / "inv.ini", prompt=prompt).select()
    assert len(hosts) == 6
    assert prompt.questions == [
        "Password for ops (credential ansible:ops): ",
        "Password for other (credential ansible:other): ",
    ]
    assert all(h.credential is not None and h.credential.password == Secret(prompt.answer) for h in hosts)


def test_group_loops_are_refused(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[a:children]\nb\n\n[b:children]\na\n\n[a]\nh1\n")
    with pytest.raises(InventoryError, match="group nesting loops"):
        load_inventory(tmp_path / "inv.ini")


def test_missing_connection_defaults_to_ssh_with_one_warning(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[web]\nweb[01:08]\nwin01 ansible_connection=psrp\n")
    inventory = load_inventory(tmp_path / "inv.ini")
    assert [h.transport for h in inventory.match("web0*")] == ["ssh"] * 8
    assert inventory.hosts["win01"].transport == "winrm"
    (warning,) = inventory.warnings
    assert warning.startswith("8 host(s) have no ansible_connection") and "web01, web02" in warning


INVENTORY_DIR = FIXTURES / "ansible" / "inventory-dir"


def test_an_inventory_directory_skips_what_ansible_ignores() -> None:
    """ansible.cfg, *.orig, *.retry, README.md and editor backups sit beside real inventories; Ansible's
    INVENTORY_IGNORE_EXTS leaves them out, and so does iisfleet (subfolders are walked too)."""
    expected = yaml.safe_load((FIXTURES / "ansible" / "inventory-dir.expected.yml").read_text())["hosts"]
    inventory = load_inventory(INVENTORY_DIR)
    assert sorted(inventory.hosts) == sorted(expected)
    for host in inventory.select():
        want = expected[host.name]
        assert host.transport == want["transport"], host.name
        if host.transport == "winrm":
            listener = host.winrm.port or (5986 if host.winrm.scheme == "https" else 5985)
            assert (listener, host.winrm.scheme) == (want["port"], want["scheme"]), host.name
        else:
            assert host.ssh.port == want["port"], host.name


@pytest.mark.parametrize(
    ("connection", "variables", "port"),
    [
        ("winrm", "ansible_ssh_port=2222", None),
        ("winrm", "ansible_ssh_port=2222 ansible_port=5986", 5986),
        ("winrm", "ansible_port=5986 ansible_winrm_port=15986", 15986),
        ("psrp", "ansible_port=5986 ansible_psrp_port=15986", 15986),
        ("psrp", "ansible_winrm_port=15986", None),
        ("ssh", "ansible_port=22 ansible_ssh_port=2222", 2222),
        ("ssh", "ansible_port=2200", 2200),
    ],
)
def test_each_connection_plugin_reads_its_own_port_variables(
    tmp_path: Path, connection: str, variables: str, port: int | None
) -> None:
    (tmp_path / "inv.ini").write_text(f"[web]\nweb01 ansible_connection={connection} {variables}\n")
    host = load_inventory(tmp_path / "inv.ini").select()[0]
    if connection == "ssh":
        assert host.ssh.port == port
    else:
        # no port: the listener of the scheme (HTTPS unless a port says the HTTP listener)
        assert (host.winrm.port, host.winrm.scheme) == (port, "https")


def test_limit_all_selects_every_host_as_in_ansible() -> None:
    inventory = load_inventory(INVENTORY_DIR)
    assert [h.name for h in inventory.select("all")] == [h.name for h in inventory.select()]
    assert [h.name for h in inventory.select("all,!proxy01")] == [
        h.name for h in inventory.select() if h.name != "proxy01"]
