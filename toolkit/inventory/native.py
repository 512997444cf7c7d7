"""iisfleet's own inventory format (docs/contracts.md §3, docs/inventory.md).

Layering, lowest first: ``defaults`` → groups (outermost parent first, then nested children, in file
order at equal depth) → the host itself. ``vars`` merge key by key, ``tags`` accumulate, and
``transport``/``credential``/``time_budget``/``winrm``/``ssh`` options are overridden field by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolkit.errors import InventoryError
from toolkit.inventory.credentials import CredentialRef, parse_password_ref
from toolkit.inventory.model import HostEntry, Inventory
from toolkit.inventory.options import Sourced, build_ssh, build_winrm, check_option_names, layer
from toolkit.inventory.yamlsource import key_line, line_of, start_line

TOP_KEYS = {"simulated", "defaults", "credentials", "groups", "hosts", "directory", "engine", "artifact_store"}
#: what `engine:` may say (toolkit/cli/worker.py Engine)
ENGINES = ("local", "celery")
DEFAULT_KEYS = {"transport", "credential", "winrm", "ssh", "time_budget", "vars", "tags"}
GROUP_KEYS = {"hosts", "children", "vars", "tags", "transport", "credential", "winrm", "ssh", "time_budget"}
HOST_KEYS = {"address", "transport", "credential", "winrm", "ssh", "tags", "vars", "time_budget"}
CREDENTIAL_KEYS = {"username", "password", "kerberos", "key_file", "certificate_pem", "certificate_key_pem"}
TRANSPORTS = ("winrm", "ssh")


def looks_native(document: Any) -> bool:
    """True when a YAML document is an iisfleet inventory rather than an Ansible one."""
    if not isinstance(document, Mapping) or not document:
        return False
    if {"simulated", "defaults", "credentials", "groups", "directory", "engine", "artifact_store"} & set(document):
        return True
    # Only `hosts:` at the top: iisfleet maps host names to host settings; Ansible would make `hosts`
    # a group whose value has hosts/children/vars keys.
    hosts = document.get("hosts")
    if set(document) == {"hosts"} and isinstance(hosts, Mapping):
        return not (set(hosts) and set(hosts) <= {"hosts", "children", "vars"})
    return False


class _Loader:
    def __init__(self, path: Path, document: Any) -> None:
        self.path = path
        self.file = str(path)
        self.doc = document

    def error(
        self,
        message: str,
        container: Any,
        key: Any,
        field: str,
        explanation: str | None = None,
        *,
        at_key: bool = False,
    ) -> InventoryError:
        if at_key:
            line = key_line(container, key) or None
        else:
            line = line_of(container, key, start_line(container)) or None
        return InventoryError(message, path=self.file, line=line, field=field, explanation=explanation)

    def mapping(
        self, container: Any, key: str, field: str, allowed: set[str] | None = None
    ) -> Mapping[str, Any]:
        value = container.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error("expected a mapping", container, key, field)
        if allowed is not None:
            for name in value:
                if name not in allowed:
                    raise self.error(
                        f"unknown key {name!r} (expected one of {', '.join(sorted(allowed))})",
                        value,
                        name,
                        f"{field}.{name}",
                        at_key=True,
                    )
        return value

    def string_list(self, container: Any, key: str, field: str) -> list[str]:
        value = container.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.error("expected a list of names", container, key, field)
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, (str, int)) or isinstance(item, bool) or str(item) == "":
                raise self.error("expected a name", value, index, f"{field}[{index}]")
            out.append(str(item))
        return out

    def load(self) -> Inventory:
        doc = self.doc
        if not isinstance(doc, Mapping):
            raise InventoryError("an inventory must be a YAML mapping", path=self.file, line=1)
        for key in doc:
            if key not in TOP_KEYS:
                raise self.error(
                    f"unknown top-level key {key!r} (expected {', '.join(sorted(TOP_KEYS))})",
                    doc,
                    key,
                    str(key),
                    at_key=True,
                )
        simulated = doc.get("simulated", False)
        if not isinstance(simulated, bool):
            raise self.error("expected true or false", doc, "simulated", "simulated")
        credentials = self.credentials(simulated)
        defaults = self.mapping(doc, "defaults", "defaults", DEFAULT_KEYS)
        groups = self.mapping(doc, "groups", "groups")
        hosts = self.mapping(doc, "hosts", "hosts")
        for section, field in ((groups, "groups"), (hosts, "hosts")):
            for name in section:
                if (
                    not isinstance(name, str)
                    or not name.strip()
                    or "," in name
                    or name.startswith(("!", "&"))
                ):
                    raise self.error(
                        f"{name!r} is not a usable name (text without ',', not starting with '!' or '&')",
                        section,
                        name,
                        f"{field}.{name}",
                        at_key=True,
                    )
        for name, body in groups.items():
            if body is not None and not isinstance(body, Mapping):
                raise self.error("expected a mapping", groups, name, f"groups.{name}")
            self.mapping(groups, name, f"groups.{name}", GROUP_KEYS)
        for name, body in hosts.items():
            if body is not None and not isinstance(body, Mapping):
                raise self.error("expected a mapping (or nothing)", hosts, name, f"hosts.{name}")
            self.mapping(hosts, name, f"hosts.{name}", HOST_KEYS)

        host_order: list[str] = [str(name) for name in hosts]
        direct: dict[str, list[str]] = {}
        children: dict[str, list[str]] = {}
        for name, body in groups.items():
            body = body or {}
            if name in hosts:
                raise self.error(f"{name!r} is both a group and a host", groups, name, f"groups.{name}")
            direct[name] = self.string_list(body, "hosts", f"groups.{name}.hosts")
            children[name] = self.string_list(body, "children", f"groups.{name}.children")
            for index, child in enumerate(children[name]):
                if child not in groups:
                    raise self.error(
                        f"unknown child group {child!r}",
                        body["children"],
                        index,
                        f"groups.{name}.children[{index}]",
                    )
            for member in direct[name]:
                if member in groups:
                    raise self.error(
                        f"{member!r} is a group: list it under children",
                        body,
                        "hosts",
                        f"groups.{name}.hosts",
                    )
                if member not in host_order:
                    host_order.append(member)  # a host may be named only in a group (address = name)
        depth = self.depths(groups, children)
        members = self.flatten(groups, direct, children)
        order = sorted(groups, key=lambda g: (depth[g], list(groups).index(g)))
        group_members = {g: tuple(h for h in host_order if h in members[g]) for g in groups}

        entries: dict[str, HostEntry] = {}
        for name in host_order:
            body = hosts.get(name) or {}
            layers: list[tuple[Mapping[str, Any], str]] = [(defaults, "defaults")]
            layers += [(groups[g] or {}, f"groups.{g}") for g in order if name in members[g]]
            layers.append((body, f"hosts.{name}"))
            entries[name] = self.host(
                name,
                body,
                layers,
                credentials,
                tuple(g for g in order if name in members[g]),
                line_of(hosts, name) if name in hosts else None,
            )
        return Inventory(
            path=self.path, format="iisfleet", hosts=entries, groups=group_members, simulated=simulated,
            directory=self.directory(credentials), engine=self.engine(),
            artifact_store=self.artifact_store(credentials),
        )

    def engine(self) -> str | None:
        """``engine:``: local or celery (None when absent)."""
        value = self.doc.get("engine")
        if value is None:
            return None
        if value not in ENGINES:
            raise self.error(f"unknown engine {value!r} (expected {' or '.join(ENGINES)})", self.doc, "engine",
                             "engine")
        return str(value)

    def _named_credential(self, credentials: Mapping[str, CredentialRef], section: str) -> Any:
        """Look up a ``credential:`` of a top-level section among the inventory's credentials."""

        def named(value: Any, field: str) -> CredentialRef:
            if not isinstance(value, str) or value not in credentials:
                raise self.error(f"unknown credential {value!r} (define it under credentials:)",
                                 self.doc[section], "credential", field)
            return credentials[value]

        return named

    def artifact_store(self, credentials: Mapping[str, CredentialRef]) -> Any:
        """The ``artifact_store:`` section (toolkit/distributed/objectstore.py), or None."""
        if self.doc.get("artifact_store") is None:
            return None
        from toolkit.distributed.objectstore import parse_artifact_store

        section = self.doc["artifact_store"]
        return parse_artifact_store(section, path=self.file, line=key_line(self.doc, "artifact_store") or None,
                                    credential_ref=self._named_credential(credentials, "artifact_store"),
                                    key_line=lambda key: key_line(section, key) if isinstance(section, Mapping) else None)

    def directory(self, credentials: Mapping[str, CredentialRef]) -> Any:
        """The ``directory:`` section (toolkit/directory/config.py), or None."""
        if self.doc.get("directory") is None:
            return None
        from toolkit.directory.config import parse_directory

        named = self._named_credential(credentials, "directory")

        section = self.doc["directory"]
        return parse_directory(section, path=self.file, line=key_line(self.doc, "directory") or None,
                               credential_ref=named,
                               key_line=lambda key: key_line(section, key) if isinstance(section, Mapping) else None)

    def credentials(self, simulated: bool) -> dict[str, CredentialRef]:
        section = self.mapping(self.doc, "credentials", "credentials")
        refs: dict[str, CredentialRef] = {}
        for name, body in section.items():
            field = f"credentials.{name}"
            if not isinstance(body, Mapping):
                raise self.error("expected a mapping with username and password", section, name, field)
            self.mapping(section, name, field, CREDENTIAL_KEYS)
            username = body.get("username")
            if username is not None and (not isinstance(username, str) or not username):
                raise self.error("expected a user name", body, "username", f"{field}.username")
            kerberos = body.get("kerberos", False)
            if not isinstance(kerberos, bool):
                raise self.error("expected true or false", body, "kerberos", f"{field}.kerberos")
            files = {}
            for key in ("key_file", "certificate_pem", "certificate_key_pem"):
                value = body.get(key)
                if value is not None and (not isinstance(value, str) or not value):
                    raise self.error("expected a file path", body, key, f"{field}.{key}")
                files[key] = value
            line = line_of(body, "password", start_line(body)) or None
            if "password" in body:
                if kerberos:
                    raise self.error(
                        "a kerberos credential uses the ticket cache: remove the password",
                        body,
                        "password",
                        f"{field}.password",
                    )
                kind, reference = parse_password_ref(
                    body["password"],
                    credential=str(name),
                    simulated=simulated,
                    path=self.file,
                    line=line or start_line(body),
                )
            else:
                kind, reference = ("kerberos", None) if kerberos else ("none", None)
            refs[str(name)] = CredentialRef(
                name=str(name),
                username=username,
                kind=kind,
                reference=reference,
                path=self.file,
                line=line,
                **files,
            )
        return refs

    def depths(self, groups: Mapping[str, Any], children: Mapping[str, list[str]]) -> dict[str, int]:
        parents: dict[str, list[str]] = {g: [] for g in groups}
        for parent, kids in children.items():
            for kid in kids:
                parents[kid].append(parent)
        depth: dict[str, int] = {}

        def visit(group: str, trail: tuple[str, ...]) -> int:
            if group in trail:
                cycle = " -> ".join((*trail[trail.index(group) :], group))
                raise self.error(f"group nesting loops: {cycle}", groups, group, f"groups.{group}.children")
            if group not in depth:
                depth[group] = 1 + max((visit(p, (*trail, group)) for p in parents[group]), default=-1)
            return depth[group]

        for group in groups:
            visit(group, ())
        return depth

    @staticmethod
    def flatten(
        groups: Mapping[str, Any], direct: Mapping[str, list[str]], children: Mapping[str, list[str]]
    ) -> dict[str, set[str]]:
        cache: dict[str, set[str]] = {}

        def members(group: str) -> set[str]:
            if group not in cache:
                found = set(direct[group])
                for child in children[group]:
                    found |= members(child)
                cache[group] = found
            return cache[group]

        return {g: members(g) for g in groups}

    def host(
        self,
        name: str,
        body: Mapping[str, Any],
        layers: list[tuple[Mapping[str, Any], str]],
        credentials: Mapping[str, CredentialRef],
        groups: tuple[str, ...],
        line: int | None,
    ) -> HostEntry:
        transport: Any = "winrm"
        credential: CredentialRef | None = None
        time_budget = 600.0
        tags: list[str] = []
        variables: dict[str, Any] = {}
        winrm: dict[str, Sourced] = {}
        ssh: dict[str, Sourced] = {}
        for source, field in layers:
            if "transport" in source:
                transport = source["transport"]
                if transport not in TRANSPORTS:
                    raise self.error(
                        f"unknown transport {transport!r} (expected winrm or ssh)",
                        source,
                        "transport",
                        f"{field}.transport",
                    )
            if "credential" in source:
                wanted = source["credential"]
                if wanted is None:
                    credential = None
                elif wanted not in credentials:
                    known = ", ".join(sorted(credentials)) or "none defined"
                    raise self.error(
                        f"unknown credential {wanted!r} (known: {known})",
                        source,
                        "credential",
                        f"{field}.credential",
                    )
                else:
                    credential = credentials[wanted]
            if "time_budget" in source:
                value = source["time_budget"]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise self.error(
                        "expected a positive number of seconds", source, "time_budget", f"{field}.time_budget"
                    )
                time_budget = float(value)
            for tag in self.string_list(source, "tags", f"{field}.tags"):
                if tag not in tags:
                    tags.append(tag)
            variables.update(self.mapping(source, "vars", f"{field}.vars"))
            for section, target in (("winrm", winrm), ("ssh", ssh)):
                if section in source:
                    options = source[section] or {}
                    check_option_names(
                        section,
                        options,
                        path=self.file,
                        line=line_of(source, section, start_line(source)),
                        field=f"{field}.{section}",
                    )
                    layer(target, options, path=self.file, field=f"{field}.{section}")
        address = body.get("address", name)
        if not isinstance(address, str) or not address.strip():
            raise self.error("expected a host name or IP address", body, "address", f"hosts.{name}.address")
        return HostEntry(
            name=name,
            address=address.strip(),
            transport=transport,
            credential=credential,
            winrm=build_winrm(winrm),
            ssh=build_ssh(ssh),
            groups=groups,
            tags=tuple(tags),
            vars=variables,
            time_budget=time_budget,
            path=self.file,
            line=line or None,
        )


def load_native(path: Path, document: Any) -> Inventory:
    """Build an ``Inventory`` from a parsed iisfleet inventory document."""
    return _Loader(path, document).load()
