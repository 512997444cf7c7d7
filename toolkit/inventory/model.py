"""The loaded inventory: hosts with unresolved credential references, groups, selection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from toolkit.inventory.credentials import CredentialRef, CredentialResolver
from toolkit.inventory.limit import select_names
from toolkit.models import HostConfig, SSHOptions, TransportName, WinRMOptions

InventoryFormat = Literal["iisfleet", "ansible-ini", "ansible-yaml"]


@dataclass(frozen=True)
class HostEntry:
    """One host as the inventory file describes it; the credential is still a reference."""

    name: str
    address: str
    transport: TransportName = "winrm"
    credential: CredentialRef | None = None
    winrm: WinRMOptions = field(default_factory=WinRMOptions)
    ssh: SSHOptions = field(default_factory=SSHOptions)
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    time_budget: float = 600.0
    path: str | None = None  # where the host is defined (for messages)
    line: int | None = None


@dataclass
class Inventory:
    """A validated inventory. ``select`` resolves credentials for the hosts it returns.

    ``groups`` maps every group to all of its hosts (nested groups flattened), in inventory order.
    ``warnings`` are things an admin should know but that do not stop a run (e.g. an inline
    ``ansible_password``, a host with an unsupported ``ansible_connection`` that was left out).
    """

    path: Path
    format: InventoryFormat
    hosts: dict[str, HostEntry]
    groups: dict[str, tuple[str, ...]]
    simulated: bool = False
    warnings: list[str] = field(default_factory=list)
    resolver: CredentialResolver = field(default_factory=CredentialResolver)
    #: the ``directory:`` section (``toolkit.directory.config.DirectoryConfig``), None when absent
    directory: Any = None
    #: how `iisfleet run` works the hosts when neither --engine nor IISFLEET_ENGINE says: "local" or "celery"
    #: (``engine:`` at the top of an iisfleet inventory, ``iisfleet_engine`` in Ansible's ``all`` vars); None: unset
    engine: str | None = None
    #: the ``artifact_store:`` section (``toolkit.distributed.objectstore.ArtifactStoreConfig``), None when absent
    artifact_store: Any = None

    def match(self, limit: str | None = None) -> list[HostEntry]:
        """Hosts matching ``limit`` (see ``toolkit.inventory.limit``) without touching credentials."""
        tags = {name: entry.tags for name, entry in self.hosts.items()}
        names = select_names(limit, list(self.hosts), self.groups, tags)
        return [self.hosts[name] for name in names]

    def select(self, limit: str | None = None) -> list[HostConfig]:
        """Hosts matching ``limit`` with credentials resolved (env read, keyring queried, prompts asked
        once per credential).

        Raises:
            UsageError: the limit matches nothing it names.
            InventoryError: a credential cannot be resolved (unset env var, no prompt, no keyring).
        """
        return [self.resolve(entry) for entry in self.match(limit)]

    def resolve(self, entry: HostEntry) -> HostConfig:
        credential = self.resolver.resolve(entry.credential) if entry.credential is not None else None
        return HostConfig(
            name=entry.name,
            address=entry.address,
            transport=entry.transport,
            credential=credential,
            winrm=entry.winrm,
            ssh=entry.ssh,
            groups=entry.groups,
            tags=entry.tags,
            vars=dict(entry.vars),
            time_budget=entry.time_budget,
        )
