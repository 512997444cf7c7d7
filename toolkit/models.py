"""Typed records shared by the inventory, transports and runner.

These are the agreed shapes between layers (see docs/contracts.md). Inventory loaders build
``HostConfig``; transports read it; the runner returns ``HostResult``/``RunResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from toolkit.errors import Category
from toolkit.secrets import Secret

TransportName = Literal["winrm", "ssh"]
WinRMAuth = Literal["negotiate", "kerberos", "ntlm", "credssp", "certificate", "basic"]


@dataclass(frozen=True)
class Credential:
    """A resolved credential. ``password`` is a ``Secret``; ``None`` means "use the ticket cache/key"."""

    name: str
    username: str | None
    password: Secret | None = None
    key_file: str | None = None
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None


@dataclass(frozen=True)
class WinRMOptions:
    scheme: Literal["http", "https"] = "https"
    port: int | None = None  # None: 5985 for http, 5986 for https
    auth: WinRMAuth = "negotiate"
    cert_validation: bool = True
    ca_bundle: str | None = None
    encryption: Literal["auto", "always", "never"] = "auto"
    allow_insecure_basic: bool = False  # Basic over HTTP only with this explicit opt-in
    connect_timeout: float = 10.0
    operation_timeout: float = 20.0
    read_timeout: float = 30.0
    configuration_name: str = "Microsoft.PowerShell"  # JEA endpoints set their own name
    negotiate_service: str = "HTTP"
    negotiate_hostname_override: str | None = None
    send_cbt: bool = True
    path: str = "wsman"
    # Added by INVENTORY (optional, default off): ask for a forwardable ticket so the target can
    # delegate (Ansible's ansible_winrm_kerberos_delegation / ansible_psrp_negotiate_delegate).
    kerberos_delegation: bool = False
    # The endpoint is the iisfleet JEA endpoint (NoLanguage): collectors are called as its module's functions
    # with named parameters, never sent as script text. Detected for a custom configuration_name when unset.
    jea: bool = False
    # The core loader also defines the bundled wrappers as session functions, and bundled steps are calls of
    # them (toolkit.transports.winrm). False sends each step's wrapper text as before: for a host whose
    # endpoint or endpoint protection refuses [scriptblock]::Create, and as the benchmark's peer.
    session_functions: bool = True

    @property
    def effective_port(self) -> int:
        return self.port or (5985 if self.scheme == "http" else 5986)


@dataclass(frozen=True)
class SSHOptions:
    port: int = 22
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    host_key_checking: bool = True
    connect_timeout: float = 10.0
    command_timeout: float = 120.0


@dataclass(frozen=True)
class HostConfig:
    """One target host as the inventory describes it, credentials resolved."""

    name: str
    address: str
    transport: TransportName = "winrm"
    credential: Credential | None = None
    winrm: WinRMOptions = field(default_factory=WinRMOptions)
    ssh: SSHOptions = field(default_factory=SSHOptions)
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    time_budget: float = 600.0  # seconds for all of this host's steps in one run


@dataclass(frozen=True)
class ScriptOutput:
    """What a transport got back from running one script on one host."""

    stdout: str  # the collector's JSON document (the output stream, joined)
    errors: tuple[str, ...] = ()  # error-stream records, already decoded to readable text
    had_errors: bool = False  # the pipeline failed (terminating error) or the process exited non-zero
    duration_s: float = 0.0


@dataclass(frozen=True)
class StepError:
    category: Category
    message: str
    explanation: str | None = None


@dataclass
class StepResult:
    collector: str
    status: Literal["ok", "failed", "skipped"]
    duration_s: float = 0.0
    envelope: dict[str, Any] | None = None
    error: StepError | None = None
    skipped_reason: str | None = None


@dataclass
class HostResult:
    host: str
    address: str
    transport: TransportName
    status: Literal["ok", "partial", "failed", "skipped"] = "ok"
    error: StepError | None = None
    steps: list[StepResult] = field(default_factory=list)
    duration_s: float = 0.0
    #: Host clock minus controller clock when far enough apart that the log window followed the host's
    #: own clock (see ``toolkit.runner``); None when the clocks agree.
    clock_offset_s: float | None = None
