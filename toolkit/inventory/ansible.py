"""Ansible inventories read as they are: INI or YAML, with ``group_vars/`` and ``host_vars/``.

What is understood (docs/inventory.md lists it in full):

- ``[group]``, ``[group:vars]``, ``[group:children]``, host ranges (``web[01:20]``, ``db-[a:c]``), inline
  host variables, ``host:port``; the YAML form (``all: {hosts, children, vars}``);
- ``group_vars/<group>`` and ``host_vars/<host>`` next to the inventory (``.yml``/``.yaml``/``.json``
  files or folders of them);
- Ansible's variable precedence: inline group vars (``all`` first, then deeper groups, name order at
  equal depth) < ``group_vars/all`` < other ``group_vars`` (same order) < inline host vars <
  ``host_vars``;
- ``ansible_host``, ``ansible_port``, ``ansible_user``, ``ansible_password``, ``ansible_connection``
  (``psrp``/``winrm`` → WinRM, ``ssh``/``paramiko`` → SSH, unset → SSH as in Ansible) and the
  ``ansible_psrp_*`` / ``ansible_winrm_*`` / ``ansible_ssh_*`` options that have an iisfleet meaning.

Passwords: ``"{{ lookup('env', 'NAME') }}"`` becomes an environment reference. A literal password is
accepted (it is already in the file; iisfleet never copies it anywhere) but recorded as a warning.
Vault-encrypted values (``!vault``) are refused with a hint, because iisfleet does not decrypt them.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import InventoryError
from toolkit.inventory.credentials import CredentialRef, SourceKind
from toolkit.inventory.model import HostEntry, Inventory, InventoryFormat
from toolkit.inventory.options import Sourced, build_ssh, build_winrm
from toolkit.inventory.yamlsource import TaggedValue, line_of, load_yaml, parse_yaml, start_line
from toolkit.models import TransportName
from toolkit.secrets import Secret

_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")
_ENV_LOOKUP = re.compile(
    r"""^\s*\{\{\s*lookup\(\s*['"](?:ansible\.builtin\.)?env['"]\s*,\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)"""
    r"""\s*\}\}\s*$"""
)
_HOSTNAME_TEMPLATE = re.compile(r"\{\{\s*(inventory_hostname(?:_short)?)\s*\}\}")

WINRM_CONNECTIONS = {
    "psrp",
    "winrm",
    "ansible.builtin.psrp",
    "ansible.builtin.winrm",
    "ansible.windows.psrp",
    "ansible.windows.winrm",
}
SSH_CONNECTIONS = {"ssh", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh"}

#: ansible_psrp_<name> → WinRMOptions field.
PSRP_OPTIONS = {
    "auth": "auth",
    "cert_validation": "cert_validation",
    "protocol": "scheme",
    "port": "port",
    "configuration_name": "configuration_name",
    "negotiate_service": "negotiate_service",
    "negotiate_hostname_override": "negotiate_hostname_override",
    "negotiate_delegate": "kerberos_delegation",
    "negotiate_send_cbt": "send_cbt",
    "read_timeout": "read_timeout",
    "operation_timeout": "operation_timeout",
    "connection_timeout": "connect_timeout",
    "ca_cert": "ca_bundle",
    "message_encryption": "encryption",
    "path": "path",
}
#: ansible_winrm_<name> → WinRMOptions field.
WINRM_OPTIONS = {
    "transport": "auth",
    "server_cert_validation": "cert_validation",
    "scheme": "scheme",
    "port": "port",
    "ca_trust_path": "ca_bundle",
    "kerberos_delegation": "kerberos_delegation",
    "operation_timeout_sec": "operation_timeout",
    "read_timeout_sec": "read_timeout",
    "connection_timeout": "connect_timeout",
    "path": "path",
    "message_encryption": "encryption",
    "service": "negotiate_service",
    "kerberos_hostname_override": "negotiate_hostname_override",
    "send_cbt": "send_cbt",
    "configuration_name": "configuration_name",
}
#: Variables that are part of a connection plugin but have no iisfleet meaning; ignored silently.
_IGNORED = {
    "ansible_shell_type",
    "ansible_become",
    "ansible_become_method",
    "ansible_become_user",
    "ansible_python_interpreter",
    "ansible_psrp_proxy",
    "ansible_psrp_ignore_proxy",
    "ansible_winrm_kinit_mode",
    "ansible_winrm_kinit_cmd",
    "ansible_psrp_max_envelope_size",
    "ansible_psrp_reconnection_retries",
    "ansible_psrp_reconnection_backoff",
    "ansible_winrm_kinit_args",
    "ansible_winrm_credssp_disable_tlsv1_2",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_group_priority",
}
_PASSWORD_VARS = {
    "ansible_password",
    "ansible_pass",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_psrp_pass",
    "ansible_psrp_password",
    "ansible_winrm_pass",
    "ansible_winrm_password",
}
_USER_VARS = ("ansible_user", "ansible_ssh_user", "ansible_psrp_user", "ansible_winrm_user")


@dataclass
class _Group:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, Sourced] = field(default_factory=dict)


@dataclass
class _Parsed:
    """Groups and inline host vars from one or more inventory sources."""

    groups: dict[str, _Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Sourced]] = field(default_factory=dict)
    host_lines: dict[str, tuple[str, int]] = field(default_factory=dict)

    def group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return self.groups[name]

    def add_host(self, group: str, host: str, variables: dict[str, Sourced], path: str, line: int) -> None:
        members = self.group(group).hosts
        if host not in members:
            members.append(host)
        self.host_vars.setdefault(host, {}).update(variables)
        self.host_lines.setdefault(host, (path, line))


def expand_host_pattern(pattern: str, *, path: str, line: int) -> list[str]:
    """Expand Ansible host ranges: ``web[01:03]`` → web01, web02, web03; ``db-[a:c]``; ``[1:9:2]``."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    start, end, stride_text = match.group(1), match.group(2), match.group(3)
    stride = int(stride_text) if stride_text else 1
    head, tail = pattern[: match.start()], pattern[match.end() :]
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") or len(start) == len(end) else 0
        values = [str(i).zfill(width) for i in range(int(start), int(end) + 1, stride)]
    elif len(start) == 1 and len(end) == 1 and start.isalpha() and end.isalpha():
        values = [chr(c) for c in range(ord(start), ord(end) + 1, stride)]
    else:
        raise InventoryError(f"bad host range in {pattern!r}", path=path, line=line, field="hosts")
    if not values or stride < 1:
        raise InventoryError(f"empty host range in {pattern!r}", path=path, line=line, field="hosts")
    out: list[str] = []
    for value in values:
        out.extend(expand_host_pattern(head + value + tail, path=path, line=line))
    return out


# --- INI -------------------------------------------------------------------------------------------


def _ini_literal(text: str) -> Any:
    """Inline host values are Python literals in Ansible (``5986`` is an int, ``True`` a bool)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _quoted_for_error(text: str) -> str:
    """``text`` quoted for an error message, unless it may hold a password (``ansible_password: x``
    written without ``=``): then only the variable name is shown, so the value never reaches the terminal."""
    if "pass" not in text.lower():
        return repr(text)
    name = re.match(r"[^\s=:]*", text).group(0)  # type: ignore[union-attr]  # always matches
    return f"{name!r} followed by a value (not shown: it may be a password)"


def parse_ini(text: str, path: str, parsed: _Parsed | None = None) -> _Parsed:
    """Parse an Ansible INI inventory into groups and inline host variables."""
    parsed = parsed or _Parsed()
    parsed.group("all")
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InventoryError(f"bad section header {line!r}", path=path, line=number)
            header = line[1:-1].strip()
            section, _, kind = header.partition(":")
            kind = kind or "hosts"
            if not section or kind not in ("hosts", "vars", "children"):
                raise InventoryError(
                    f"bad section header {line!r} (expected [group], [group:vars] or [group:children])",
                    path=path,
                    line=number,
                )
            parsed.group(section)
            continue
        if kind == "vars":
            name, equals, value = line.partition("=")
            if not equals or not name.strip():
                raise InventoryError(
                    f"expected key=value, got {_quoted_for_error(line)}",
                    path=path,
                    line=number,
                    field=f"{section}:vars",
                )
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            parsed.group(section).vars[name.strip()] = Sourced(
                value, path, number, f"{section}:vars.{name.strip()}"
            )
        elif kind == "children":
            child = line.split()[0]
            group = parsed.group(section)
            if child not in group.children:
                group.children.append(child)
            parsed.group(child)
        else:
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError as exc:
                raise InventoryError(f"cannot split host line: {exc}", path=path, line=number) from None
            if not tokens:
                continue
            host_token, assignments = tokens[0], tokens[1:]
            variables: dict[str, Sourced] = {}
            port_match = re.match(r"^(.*[^:\]]):(\d+)$", host_token)
            if port_match and host_token.count(":") == 1:
                host_token = port_match.group(1)
                variables["ansible_port"] = Sourced(int(port_match.group(2)), path, number, "ansible_port")
            for item in assignments:
                name, equals, value = item.partition("=")
                if not equals or not name:
                    raise InventoryError(
                        f"expected key=value after the host name, got {_quoted_for_error(item)}",
                        path=path,
                        line=number,
                        field=host_token,
                    )
                variables[name] = Sourced(_ini_literal(value), path, number, name)
            for host in expand_host_pattern(host_token, path=path, line=number):
                parsed.add_host(section, host, dict(variables), path, number)
    return parsed


# --- YAML ------------------------------------------------------------------------------------------


def _yaml_vars(mapping: Any, path: str, field_prefix: str) -> dict[str, Sourced]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise InventoryError(
            "expected a mapping of variables", path=path, line=start_line(mapping) or None, field=field_prefix
        )
    return {
        str(key): Sourced(value, path, line_of(mapping, key) or None, f"{field_prefix}.{key}")
        for key, value in mapping.items()
    }


def parse_yaml_document(document: Any, path: str, parsed: _Parsed | None = None) -> _Parsed:
    """Parse an Ansible YAML inventory document (``all:`` or any groups at the top)."""
    parsed = parsed or _Parsed()
    parsed.group("all")
    if document is None:
        return parsed
    if not isinstance(document, Mapping):
        raise InventoryError("an Ansible YAML inventory must be a mapping of groups", path=path, line=1)

    def walk(name: str, body: Any, trail: str) -> None:
        group = parsed.group(name)
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise InventoryError(
                "expected a group mapping (hosts, children, vars)",
                path=path,
                line=start_line(body) or None,
                field=trail,
            )
        for key in body:
            if key not in ("hosts", "children", "vars"):
                raise InventoryError(
                    f"unknown group key {key!r} (expected hosts, children or vars)",
                    path=path,
                    line=line_of(body, key) or None,
                    field=f"{trail}.{key}",
                )
        group.vars.update(_yaml_vars(body.get("vars"), path, f"{trail}.vars"))
        hosts = body.get("hosts") or {}
        if isinstance(hosts, list):  # tolerated: a bare list of names
            hosts = {host: None for host in hosts}
        if not isinstance(hosts, Mapping):
            raise InventoryError(
                "expected a mapping of hosts",
                path=path,
                line=line_of(body, "hosts") or None,
                field=f"{trail}.hosts",
            )
        for pattern, host_body in hosts.items():
            line = line_of(hosts, pattern) or start_line(hosts)
            variables = _yaml_vars(host_body, path, f"{trail}.hosts.{pattern}")
            for host in expand_host_pattern(str(pattern), path=path, line=line):
                parsed.add_host(name, host, dict(variables), path, line)
        children = body.get("children") or {}
        if not isinstance(children, Mapping):
            raise InventoryError(
                "expected a mapping of child groups",
                path=path,
                line=line_of(body, "children") or None,
                field=f"{trail}.children",
            )
        for child, child_body in children.items():
            if child not in group.children:
                group.children.append(str(child))
            walk(str(child), child_body, f"{trail}.children.{child}")

    for name, body in document.items():
        walk(str(name), body, str(name))
    return parsed


# --- group_vars / host_vars --------------------------------------------------------------------------


def _var_files(folder: Path, name: str) -> list[Path]:
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        # Not a file name: "group_vars" / "/" would be the filesystem root (and ".." its parent), so a
        # group called "[/]" would read YAML from anywhere. No vars file can belong to such a name.
        return []
    found: list[Path] = []
    for suffix in ("", ".yml", ".yaml", ".json"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            found.append(candidate)
    directory = folder / name
    if directory.is_dir():
        found.extend(
            sorted(
                p
                for p in directory.rglob("*")
                if p.is_file() and p.suffix in (".yml", ".yaml", ".json") and not p.name.startswith(".")
            )
        )
    return found


def _load_var_file(path: Path) -> dict[str, Sourced]:
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise InventoryError(f"cannot read JSON variables: {exc}", path=str(path)) from None
        if not isinstance(data, dict):
            raise InventoryError("expected a JSON object of variables", path=str(path))
        return {key: Sourced(value, str(path), None, key) for key, value in data.items()}
    data = load_yaml(path, error=InventoryError)
    if data is None:
        return {}
    return _yaml_vars(data, str(path), path.stem)


def _folder_vars(base: Path, folder: str, name: str) -> dict[str, Sourced]:
    merged: dict[str, Sourced] = {}
    for file in _var_files(base / folder, name):
        merged.update(_load_var_file(file))
    return merged


# --- mapping to iisfleet hosts -----------------------------------------------------------------------


class _Mapper:
    def __init__(self, parsed: _Parsed, base: Path, warnings: list[str]) -> None:
        self.parsed = parsed
        self.base = base
        self.warnings = warnings
        self._warned: set[str] = set()
        self._group_vars: dict[str, dict[str, Sourced]] = {}
        #: hosts without ansible_connection (SSH, as in Ansible): reported once, not per host
        self.defaulted_to_ssh: list[str] = []
        groups = parsed.groups
        # Every group without a parent hangs under `all`; hosts in no group go to `ungrouped`.
        has_parent = {child for g in groups.values() for child in g.children}
        for name in list(groups):
            if name != "all" and name not in has_parent and name not in groups["all"].children:
                groups["all"].children.append(name)
        self.depth = self._depths()
        self.members = self._flatten()

    def group_vars(self, group: str) -> dict[str, Sourced]:
        """``group_vars/<group>``, read and parsed once per inventory (not once per host)."""
        if group not in self._group_vars:
            self._group_vars[group] = _folder_vars(self.base, "group_vars", group)
        return self._group_vars[group]

    def warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warnings.append(message)

    def _depths(self) -> dict[str, int]:
        parents: dict[str, list[str]] = {name: [] for name in self.parsed.groups}
        for group in self.parsed.groups.values():
            for child in group.children:
                parents[child].append(group.name)
        depth: dict[str, int] = {}

        def visit(name: str, trail: tuple[str, ...]) -> int:
            if name in trail:
                raise InventoryError(
                    f"group nesting loops: {' -> '.join((*trail, name))}",
                    path=str(self.base),
                    field=f"{name}:children",
                )
            if name not in depth:
                depth[name] = 1 + max((visit(p, (*trail, name)) for p in parents[name]), default=-1)
            return depth[name]

        for name in self.parsed.groups:
            visit(name, ())
        return depth

    def _flatten(self) -> dict[str, set[str]]:
        cache: dict[str, set[str]] = {}

        def members(name: str) -> set[str]:
            if name not in cache:
                group = self.parsed.groups[name]
                found = set(group.hosts)
                for child in group.children:
                    found |= members(child)
                cache[name] = found
            return cache[name]

        everyone = set(self.parsed.host_vars)
        result = {name: members(name) for name in self.parsed.groups}
        result["all"] = everyone
        return result

    def host_groups(self, host: str) -> list[str]:
        found = [g for g in self.parsed.groups if host in self.members[g]]
        return sorted(found, key=lambda g: (self.depth[g], g))

    def variables(self, host: str) -> dict[str, Sourced]:
        groups = self.host_groups(host)
        merged: dict[str, Sourced] = {}
        for name in groups:
            merged.update(self.parsed.groups[name].vars)
        for name in groups:
            merged.update(self.group_vars(name))
        merged.update(self.parsed.host_vars.get(host, {}))
        merged.update(_folder_vars(self.base, "host_vars", host))
        return merged

    def value(self, host: str, sourced: Sourced) -> Any:
        value = sourced.value
        if isinstance(value, TaggedValue):
            hint = (
                "iisfleet does not decrypt Ansible Vault; use \"{{ lookup('env', 'NAME') }}\" instead"
                if value.tag == "!vault"
                else "remove the tag"
            )
            raise InventoryError(
                f"unsupported YAML tag {value.tag}: {hint}",
                path=sourced.path,
                line=value.line or sourced.line,
                field=sourced.field,
            )
        if isinstance(value, str) and "{{" in value:
            short = host.split(".")[0]
            value = _HOSTNAME_TEMPLATE.sub(lambda m: short if m.group(1).endswith("_short") else host, value)
        return value

    def entry(self, host: str) -> HostEntry | None:
        variables = self.variables(host)
        path, line = self.parsed.host_lines.get(host, (None, None))

        def get(*names: str) -> Sourced | None:
            for name in names:
                if name in variables:
                    return variables[name]
            return None

        def plain(sourced: Sourced) -> Any:
            value = self.value(host, sourced)
            if isinstance(value, str) and "{{" in value:
                raise InventoryError(
                    "Jinja templates are not evaluated by iisfleet (only "
                    "{{ inventory_hostname }} and lookup('env', ...) for passwords)",
                    path=sourced.path,
                    line=sourced.line,
                    field=sourced.field,
                )
            return value

        connection_var = get("ansible_connection")
        connection = str(plain(connection_var)).strip() if connection_var else "ssh"
        if connection_var is None:
            self.defaulted_to_ssh.append(host)
        if connection in WINRM_CONNECTIONS:
            transport: TransportName = "winrm"
        elif connection in SSH_CONNECTIONS:
            transport = "ssh"
        else:
            self.warn(f"{host}: ansible_connection {connection!r} is not WinRM or SSH; host left out")
            return None
        plugin = connection.rsplit(".", 1)[-1]

        address_var = get("ansible_host", "ansible_ssh_host")
        address = str(plain(address_var)) if address_var else host
        winrm: dict[str, Sourced] = {}
        ssh: dict[str, Sourced] = {}
        # Each connection plugin reads its own port variables, the later name winning (ssh: ansible_port,
        # then ansible_ssh_port; winrm/psrp: ansible_port, then ansible_winrm_port/ansible_psrp_port, read
        # through the option table below). ansible_ssh_port never sets a WinRM port.
        port_var = get("ansible_ssh_port", "ansible_port") if transport == "ssh" else get("ansible_port")

        if transport == "winrm":
            prefix, table = (
                ("ansible_psrp_", PSRP_OPTIONS) if plugin == "psrp" else ("ansible_winrm_", WINRM_OPTIONS)
            )
            for name, sourced in variables.items():
                if name.startswith(prefix):
                    option = name[len(prefix) :]
                    if option in table:
                        winrm[table[option]] = Sourced(plain(sourced), sourced.path, sourced.line, name)
                    elif (
                        name not in _IGNORED
                        and name not in _PASSWORD_VARS
                        and not name.endswith(
                            (
                                "_user",
                                "_cert_pem",
                                "_cert_key_pem",
                                "_certificate_pem",
                                "_certificate_key_pem",
                            )
                        )
                    ):
                        self.warn(f"{name} has no iisfleet meaning and is ignored")
            if port_var and "port" not in winrm:
                winrm["port"] = Sourced(plain(port_var), port_var.path, port_var.line, "ansible_port")
            if "auth" in winrm and plugin == "winrm":
                winrm["auth"] = self._winrm_transport(winrm["auth"])
            for key in ("cert_validation",):
                if key in winrm and isinstance(winrm[key].value, str):
                    text = winrm[key].value.strip().lower()
                    mapped = {"ignore": False, "validate": True}.get(text, winrm[key].value)
                    winrm[key] = Sourced(mapped, winrm[key].path, winrm[key].line, winrm[key].field)
            if "scheme" not in winrm:
                # Both plugins: HTTPS unless the port is the HTTP listener's.
                port = winrm.get("port")
                scheme = "http" if port is not None and str(port.value) == "5985" else "https"
                winrm["scheme"] = Sourced(scheme, None, None, "ansible_port")
        else:
            if port_var:
                ssh["port"] = Sourced(plain(port_var), port_var.path, port_var.line, port_var.field)
            for name, option in (
                ("ansible_host_key_checking", "host_key_checking"),
                ("ansible_ssh_host_key_checking", "host_key_checking"),
                ("ansible_ssh_timeout", "connect_timeout"),
                ("ansible_timeout", "connect_timeout"),
                ("iisfleet_ssh_known_hosts", "known_hosts"),
            ):
                if name in variables:
                    sourced = variables[name]
                    ssh[option] = Sourced(plain(sourced), sourced.path, sourced.line, name)

        credential = self.credential(host, transport, plugin, variables, winrm, plain)
        tags_var = get("iisfleet_tags")
        tags: tuple[str, ...] = ()
        if tags_var is not None:
            raw = plain(tags_var)
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list):
                raise InventoryError(
                    "expected a list of tags", path=tags_var.path, line=tags_var.line, field="iisfleet_tags"
                )
            tags = tuple(str(t).strip() for t in items if str(t).strip())
        budget_var = get("iisfleet_time_budget")
        budget = 600.0
        if budget_var is not None:
            try:
                budget = float(plain(budget_var))
            except (TypeError, ValueError):
                raise InventoryError(
                    "expected a number of seconds",
                    path=budget_var.path,
                    line=budget_var.line,
                    field="iisfleet_time_budget",
                ) from None
        user_vars = {
            name: self.value(host, sourced)
            for name, sourced in variables.items()
            if not name.startswith("ansible_") and not name.startswith("iisfleet_")
        }
        groups = tuple(g for g in self.host_groups(host) if g not in ("all", "ungrouped"))
        return HostEntry(
            name=host,
            address=address,
            transport=transport,
            credential=credential,
            winrm=build_winrm(winrm),
            ssh=build_ssh(ssh),
            groups=groups,
            tags=tags,
            vars=user_vars,
            time_budget=budget,
            path=path,
            line=line,
        )

    @staticmethod
    def _winrm_transport(sourced: Sourced) -> Sourced:
        value = sourced.value
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        first = str(value[0]).lower() if isinstance(value, list) and value else str(value)
        auth = {"plaintext": "basic", "ssl": "basic", "basic": "basic"}.get(first, first)
        return Sourced(auth, sourced.path, sourced.line, sourced.field)

    def credential(
        self,
        host: str,
        transport: str,
        plugin: str,
        variables: Mapping[str, Sourced],
        winrm: Mapping[str, Sourced],
        plain: Any,
    ) -> CredentialRef | None:
        user_var = next((variables[n] for n in _USER_VARS if n in variables), None)
        username = str(plain(user_var)) if user_var is not None else None
        password_names = [
            n
            for n in (
                "ansible_password",
                "ansible_pass",
                f"ansible_{plugin}_pass",
                f"ansible_{plugin}_password",
                "ansible_ssh_pass",
                "ansible_ssh_password",
            )
            if n in variables
        ]
        files: dict[str, str | None] = {
            "key_file": None,
            "certificate_pem": None,
            "certificate_key_pem": None,
        }
        for name in ("ansible_ssh_private_key_file", "ansible_private_key_file"):
            if name in variables:
                files["key_file"] = str(plain(variables[name]))
        for name, key in (
            ("ansible_psrp_certificate_pem", "certificate_pem"),
            ("ansible_psrp_certificate_key_pem", "certificate_key_pem"),
            ("ansible_winrm_cert_pem", "certificate_pem"),
            ("ansible_winrm_cert_key_pem", "certificate_key_pem"),
        ):
            if name in variables:
                files[key] = str(plain(variables[name]))
        kind: SourceKind
        reference: str | Secret | None = None
        ref_path: str | None = None
        ref_line: int | None = None
        if password_names and variables[password_names[0]].value in (None, ""):
            password_names = []  # an empty password means "none given" (ticket cache, key, prompt)
        if password_names:
            sourced = variables[password_names[0]]
            ref_path, ref_line = sourced.path, sourced.line
            value = self.value(host, sourced)
            if isinstance(value, str) and (match := _ENV_LOOKUP.match(value)):
                kind, reference = "env", match.group(1)
            elif isinstance(value, str) and "{{" in value:
                raise InventoryError(
                    "only \"{{ lookup('env', 'NAME') }}\" is understood in a password",
                    path=sourced.path,
                    line=sourced.line,
                    field=password_names[0],
                )
            else:
                kind, reference = "inline", Secret(str(value))
                where = f"{sourced.path}:{sourced.line}" if sourced.line else str(sourced.path)
                self.warn(
                    f"{where}: {password_names[0]} holds a password in the inventory file; prefer "
                    "\"{{ lookup('env', 'NAME') }}\""
                )
        else:
            auth = str(winrm["auth"].value).lower() if "auth" in winrm else "negotiate"
            if transport == "winrm" and auth in ("kerberos", "negotiate"):
                kind = "kerberos"  # Ansible uses the ticket cache when no password is given
            elif transport == "winrm" and auth in ("ntlm", "basic", "credssp") and username:
                kind = "prompt"
            else:
                kind = "none"
            if username is None and kind != "kerberos" and not any(files.values()):
                return None
        return CredentialRef(
            name=f"ansible:{username or '-'}",
            username=username,
            kind=kind,
            reference=reference,
            path=ref_path,
            line=ref_line,
            **files,
        )


#: Ansible's default INVENTORY_IGNORE_EXTS (REJECT_EXTS plus .orig, .cfg, .retry): files in an inventory
#: directory whose names end so are not inventories (ansible.cfg, editor backups, retry files, notes).
INVENTORY_IGNORE_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
                         ".retry")
#: Names Ansible never reads as inventory sources in a directory (their own variable folders).
_VAR_FOLDERS = ("group_vars", "host_vars")
#: Suffixes iisfleet parses (INI and YAML inventories); JSON and scripts are Ansible plugins it does not run.
_PARSED_SUFFIXES = ("", ".ini", ".yml", ".yaml", ".hosts")


def _sources(path: Path) -> tuple[list[Path], Path, list[str]]:
    """The inventory files of ``path`` (a file, or a directory as Ansible walks it), its base folder, and
    warnings for files Ansible would try but iisfleet cannot read."""
    if not path.is_dir():
        return [path], path.parent, []
    files: list[Path] = []
    skipped: list[str] = []
    for p in sorted(path.rglob("*")):
        relative = p.relative_to(path)
        if any(part.startswith(".") or part in _VAR_FOLDERS for part in relative.parts):
            continue
        if not p.is_file() or p.name.endswith(INVENTORY_IGNORE_EXTS):
            continue
        if p.suffix in _PARSED_SUFFIXES:
            files.append(p)
        else:
            skipped.append(str(relative))
    if not files:
        raise InventoryError("no inventory files in this directory", path=str(path))
    warnings = [f"{name}: not read (iisfleet reads INI and YAML inventories; an inventory script or plugin "
                f"file is not run)" for name in skipped[:10]]
    return files, path, warnings


def parse_ansible_source(path: Path, text: str, parsed: _Parsed) -> InventoryFormat:
    """Parse one file into ``parsed``; return which syntax it was."""
    if path.suffix in (".yml", ".yaml"):
        parse_yaml_document(parse_yaml(text, str(path), error=InventoryError), str(path), parsed)
        return "ansible-yaml"
    if path.suffix in ("", ".ini", ".hosts"):
        stripped = [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.strip().startswith(("#", ";"))
        ]
        if stripped and path.suffix == "" and not stripped[0].startswith("[") and stripped[0].endswith(":"):
            parse_yaml_document(parse_yaml(text, str(path), error=InventoryError), str(path), parsed)
            return "ansible-yaml"
    parse_ini(text, str(path), parsed)
    return "ansible-ini"


def load_ansible(path: Path, *, document: Any = None, text: str | None = None) -> Inventory:
    """Load an Ansible inventory file or directory (``document`` when a YAML file is already parsed)."""
    files, base, source_warnings = _sources(path)
    parsed = _Parsed()
    kinds: list[InventoryFormat] = []
    for file in files:
        if document is not None and file == path:
            parse_yaml_document(document, str(file), parsed)
            kinds.append("ansible-yaml")
            continue
        try:
            content = text if (text is not None and file == path) else file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryError(f"cannot read inventory: {exc}", path=str(file)) from None
        kinds.append(parse_ansible_source(file, content, parsed))
    warnings: list[str] = list(source_warnings)
    mapper = _Mapper(parsed, base, warnings)
    hosts: dict[str, HostEntry] = {}
    for host in _host_order(parsed):
        entry = mapper.entry(host)
        if entry is not None:
            hosts[host] = entry
    if mapper.defaulted_to_ssh:
        names = ", ".join(mapper.defaulted_to_ssh[:5]) + (", ..." if len(mapper.defaulted_to_ssh) > 5 else "")
        warnings.append(
            f"{len(mapper.defaulted_to_ssh)} host(s) have no ansible_connection and use SSH, as Ansible "
            f"would ({names}); set ansible_connection: psrp for WinRM"
        )
    groups = {name: tuple(h for h in hosts if h in mapper.members[name]) for name in parsed.groups}
    kind: InventoryFormat = (
        "ansible-yaml" if kinds and all(k == "ansible-yaml" for k in kinds) else "ansible-ini"
    )
    return Inventory(path=path, format=kind, hosts=hosts, groups=groups, simulated=False, warnings=warnings,
                     directory=_directory(parsed, mapper), engine=_engine(parsed, mapper))


def _engine(parsed: _Parsed, mapper: _Mapper) -> str | None:
    """``iisfleet_engine`` in the ``all`` vars (inventory or group_vars/all): local or celery."""
    from toolkit.inventory.native import ENGINES

    found = dict(mapper.group_vars("all"))
    found.update(parsed.group("all").vars)
    sourced = found.get("iisfleet_engine")
    if sourced is None or sourced.value is None:
        return None
    if sourced.value not in ENGINES:
        raise InventoryError(f"unknown engine {sourced.value!r} (expected {' or '.join(ENGINES)})",
                             path=sourced.path, line=sourced.line, field="iisfleet_engine")
    return str(sourced.value)


def _directory(parsed: _Parsed, mapper: _Mapper) -> Any:
    """``iisfleet_directory`` in the ``all`` vars (inventory or group_vars/all): the directory section, with
    its credential inline (``{username, password: {env: NAME} | {prompt: true} | {keyring: ...}}``)."""
    found = dict(mapper.group_vars("all"))
    found.update(parsed.group("all").vars)
    sourced = found.get("iisfleet_directory")
    if sourced is None:
        return None
    from toolkit.directory.config import parse_directory
    from toolkit.inventory.credentials import CredentialRef, parse_password_ref

    def inline(value: Any, field: str) -> CredentialRef:
        if not isinstance(value, Mapping) or not isinstance(value.get("username"), str):
            raise InventoryError("expected {username: ..., password: {env: NAME}}", path=sourced.path,
                                 line=sourced.line, field=f"iisfleet_directory.{field.split('.', 1)[1]}")
        if value.get("kerberos"):
            return CredentialRef(name="directory", username=value["username"], kind="kerberos")
        kind, reference = parse_password_ref(value.get("password"), credential="directory", simulated=False,
                                             path=sourced.path or "", line=sourced.line or 1)
        return CredentialRef(name="directory", username=value["username"], kind=kind, reference=reference,
                             path=sourced.path, line=sourced.line)

    return parse_directory(sourced.value, path=sourced.path or "", line=sourced.line, credential_ref=inline)


def _host_order(parsed: _Parsed) -> Iterable[str]:
    return list(parsed.host_vars)
