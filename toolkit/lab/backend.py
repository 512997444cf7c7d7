"""The seam between the lab's protocol servers and its host models.

Protocol servers (``toolkit/lab/winrm``, ``toolkit/lab/ssh``) know how to speak WinRM/PSRP and
Windows-OpenSSH; they know nothing of IIS. For each simulated host they hold a ``LabHostSpec`` (where
to listen, who may log on, protocol-level faults) and a ``HostBackend`` that answers a script.
The host model (``toolkit/lab/model``) builds both from a fleet directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ProtocolFaults:
    """Faults the protocol servers inject for one host."""

    latency_ms: int = 0  # added before every HTTP response / SSH reply
    reset_mid_exchange: bool = False  # close the TCP connection after authentication, mid-exchange
    auth_failure: bool = False  # reject every logon (HTTP 401 / SSH auth failure)
    refused_port: bool = False  # do not listen at all: connections are refused
    tls_unknown_ca: bool = False  # HTTPS listener presents a certificate from a CA nobody trusts
    allow_unencrypted: bool = False  # WinRM AllowUnencrypted (plain HTTP without message encryption)


#: PowerShell language modes a simulated endpoint can run in.
LANGUAGE_MODES = ("FullLanguage", "ConstrainedLanguage", "NoLanguage")


@dataclass(frozen=True)
class Endpoint:
    """One PowerShell session configuration of a simulated host (what ``configuration_name`` selects).

    ``jea`` marks the iisfleet JEA endpoint: NoLanguage, and only the functions of the role capability that
    ``iisfleet jea export`` writes are visible. ``elevated`` False simulates a session whose administrator
    token is filtered (UAC remote restrictions): collectors that need elevation answer with the target
    side's structured ``environment`` error. ``groups`` are the local groups the session's token carries
    besides Administrators (``Event Log Readers`` lets an unelevated session read the Security log).
    """

    name: str
    language: str = "FullLanguage"
    jea: bool = False
    elevated: bool = True
    groups: tuple[str, ...] = ("Remote Management Users",)

    @property
    def reads_security_log(self) -> bool:
        return self.elevated or any(g.lower() == "event log readers" for g in self.groups)


#: What every simulated host offers when its host.yml declares no endpoints (Windows' default endpoint).
DEFAULT_ENDPOINTS: tuple[Endpoint, ...] = (Endpoint("Microsoft.PowerShell"),)


@dataclass(frozen=True)
class LabHostSpec:
    name: str  # short host name, e.g. "web01"
    address: str  # loopback address, e.g. "127.0.0.11"
    fqdn: str = ""
    http_port: int = 5985
    https_port: int = 5986
    ssh_port: int = 22
    #: accepted logons: {"DOMAIN\\user" or "user": password}; the servers accept the usual spellings
    users: dict[str, str] = field(default_factory=dict)
    faults: ProtocolFaults = field(default_factory=ProtocolFaults)
    endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS

    def endpoint(self, configuration_name: str) -> Endpoint | None:
        """The endpoint ``configuration_name`` names (case-insensitive, as WinRM matches it)."""
        return next((e for e in self.endpoints if e.name.lower() == configuration_name.lower()), None)


@dataclass(frozen=True)
class ScriptAnswer:
    """A simulated host's answer to one script.

    ``output`` is the list of objects on the output stream (strings; a collector writes one JSON
    document). ``error`` set means a terminating error with that message (PSRP pipeline Failed; SSH
    exit code 1 and CLIXML on stderr). ``delay_s`` is how long the "script" runs before answering.
    """

    output: list[str] = field(default_factory=list)
    error: str | None = None
    non_terminating_errors: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    #: after writing ``output`` the script keeps running this long (a streaming collector busy with its next part)
    stall_s: float = 0.0
    #: after writing ``output`` the connection is cut with a RST (a network failing mid-transfer)
    drop_connection: bool = False
    #: for ``error``: the ErrorRecord's FullyQualifiedErrorId, category and exception type, as Windows sets them
    error_id: str = "RuntimeException"
    error_category: str = "OperationStopped"
    error_type: str = "System.Management.Automation.RuntimeException"
    #: after writing ``output`` the script goes on: this computes its next part (a step batch writes each
    #: step's lines as that step ends, toolkit.lab.batch); ``error``/``non_terminating_errors`` then wait
    #: for the last part
    then: Callable[[], "ScriptAnswer"] | None = None


class ConnectionCut(Exception):
    """Raised by a protocol server once an answer with ``drop_connection`` was sent: the server resets the
    client's connection."""


class HostBackend(Protocol):
    def answer(self, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
        """Answer ``script`` called with ``parameters`` (already decoded from PSRP/JSON)."""
        ...
