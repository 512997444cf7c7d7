"""One exception hierarchy for iisfleet.

Every error carries typed attributes and a ``category`` that says what kind of failure it is. Per-host
failures never escape the runner as exceptions: the runner turns them into results that keep the
category and the one-line ``explanation``. Messages never contain secrets: callers pass host names,
paths and user names, never passwords or tokens.
"""

from __future__ import annotations

from typing import Literal

#: The failure categories a host result can carry (see docs/contracts.md).
Category = Literal[
    "dns", "connect", "tls", "auth", "timeout", "protocol", "script", "contract", "usage", "config", "input",
    "environment",  # the host's session cannot run the collectors as they are (language mode, rights)
    "storage",  # the run directory cannot be written (disk full, quota, read-only file system)
]


class ToolkitError(Exception):
    """Base class. ``message`` is what a person reads; ``category`` is what a program branches on."""

    category: Category = "config"

    def __init__(self, message: str, *, explanation: str | None = None) -> None:
        super().__init__(message)
        self._message = message
        #: One line in plain words saying what the failure most likely means for the admin.
        self.explanation = explanation

    @property
    def message(self) -> str:
        return self._message

    def __str__(self) -> str:
        return self._message


class UsageError(ToolkitError, ValueError):
    """The command line asked for something impossible (bad option combination, missing path)."""

    category: Category = "usage"


class InputError(ToolkitError, ValueError):
    """An input file is unusable. ``path`` and ``line`` say where, when known."""

    category: Category = "input"

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None, explanation: str | None = None) -> None:
        where = path or ""
        if path and line:
            where = f"{path}:{line}"
        if field:
            where = f"{where} ({field})" if where else field
        super().__init__(f"{where}: {message}" if where else message, explanation=explanation)
        self.path = path
        self.line = line
        self.field = field


class ConfigError(InputError):
    """Inventory, playbook or fleet model that does not validate."""

    category: Category = "config"


class InventoryError(ConfigError):
    """An inventory file or credential reference that cannot be used."""


class PlaybookError(ConfigError):
    """A playbook that does not validate."""


class StorageError(ToolkitError):
    """The run directory cannot be written (disk full, quota, read-only file system). ``path`` says where."""

    category: Category = "storage"

    def __init__(self, message: str, *, path: str | None = None, explanation: str | None = None) -> None:
        super().__init__(message, explanation=explanation)
        self.path = path


class HostError(ToolkitError):
    """A failure that belongs to one host. ``host`` names it; ``category`` classifies it."""

    def __init__(self, message: str, *, host: str, category: Category,
                 explanation: str | None = None, collector: str | None = None) -> None:
        super().__init__(message, explanation=explanation)
        self.host = host
        self.category = category
        self.collector = collector


class TransportError(HostError):
    """Reaching or talking to a host failed (dns, connect, tls, auth, timeout, protocol)."""

    #: Output objects that had arrived when the failure happened, one per line (a transport sets it when a
    #: step times out). A collector that streams (docs/contracts.md 1.4) has finished those parts, and the
    #: runner keeps them.
    partial_stdout: str = ""


class CollectorError(HostError):
    """The collector ran but failed on the host (category ``script``)."""

    def __init__(self, message: str, *, host: str, collector: str, explanation: str | None = None) -> None:
        super().__init__(message, host=host, category="script", explanation=explanation, collector=collector)


class ContractError(HostError):
    """A collector's output does not match its contract (category ``contract``)."""

    def __init__(self, message: str, *, host: str, collector: str, explanation: str | None = None) -> None:
        super().__init__(message, host=host, category="contract", explanation=explanation, collector=collector)
