"""A small lab fleet for the transport tests: real LabServer listeners on ephemeral loopback ports.

Each host answers the trivial ``Test-Echo`` collector through ``EchoBackend``; host-level behaviour
(slow, garbage, failing script) is chosen by the host's name, protocol faults by ``ProtocolFaults``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fleet_helpers import ECHO_ID, echo_envelope

from toolkit.lab.backend import Endpoint, LabHostSpec, ProtocolFaults, ScriptAnswer
from toolkit.models import Credential, HostConfig, SSHOptions, WinRMOptions
from toolkit.secrets import Secret

USER = "LAB\\svc_fleet"
#: Distinctive so the no-leak test can grep for it; never printed by the tests themselves.
PASSWORD = "Zebra-Quokka-7734!leak-canary"


class EchoBackend:
    """Answers Test-Echo (and nothing else, loudly) like a bundled-collector host model would."""

    def __init__(self, behaviour: str = "ok", *, fact_delay_s: float = 0.0, clock_offset_s: float = 0.0) -> None:
        self.behaviour = behaviour
        self.fact_delay_s = fact_delay_s
        self.clock_offset_s = clock_offset_s
        self.calls: list[dict[str, Any]] = []

    def answer(self, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
        self.calls.append(dict(parameters))
        if "# collector-id: Get-HostFact/1" in script:
            return self._host_fact()
        if f"# collector-id: {ECHO_ID}/1" not in script:
            return ScriptAnswer(error="unknown collector: this lab host only answers Test-Echo")
        if self.behaviour == "slow" and parameters.get("Message") == "slow":
            return ScriptAnswer(output=[echo_envelope("slow", parameters)], delay_s=6.0)
        if self.behaviour == "garbage":
            return ScriptAnswer(output=["<html><body>Service Unavailable</body></html>"])
        if self.behaviour == "script-error":
            return ScriptAnswer(error="Cannot find path 'C:\\inetpub\\nope' because it does not exist.")
        if self.behaviour == "write-error":
            return ScriptAnswer(output=[echo_envelope("w", parameters)],
                                non_terminating_errors=["Access to the path 'C:\\x' is denied."])
        if self.behaviour == "echo-secret":
            return ScriptAnswer(output=[echo_envelope("x", {"Message": f"the password is {PASSWORD}"})])
        if self.behaviour == "stream-stall":
            # Two finished parts of a streaming collector, then it keeps working past any short step timeout.
            parts = []
            for index in (0, 1):
                part = json.loads(echo_envelope(f"part{index}", parameters))
                part["part"] = {"index": index, "final": False}
                parts.append(json.dumps(part, separators=(",", ":")))
            return ScriptAnswer(output=parts, stall_s=6.0)
        return ScriptAnswer(output=[echo_envelope(self.behaviour, parameters)])

    def _host_fact(self) -> ScriptAnswer:
        now = datetime.now(timezone.utc) + timedelta(seconds=self.clock_offset_s)
        data = {"computer_name": "LABHOST", "fqdn": "labhost.lab.test", "domain": "lab.test", "domain_joined": True,
                "os_caption": "Microsoft Windows Server 2022 Datacenter", "os_version": "10.0.20348",
                "os_build": "20348", "ps_version": "5.1.20348.1", "utc_now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "iis_installed": True, "iis_version": "10.0", "auth_modules": ["WindowsAuthenticationModule"],
                "time_zone": "UTC"}
        if self.behaviour == "garbage":
            return ScriptAnswer(output=["<html><body>Service Unavailable</body></html>"])
        if self.behaviour == "echo-secret":
            data["time_zone"] = f"UTC; password={PASSWORD}"
        envelope = {"schema": "iisfleet.collector/1", "collector": "Get-HostFact", "version": 1, "host": "LABHOST",
                    "time_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": data, "errors": []}
        return ScriptAnswer(output=[json.dumps(envelope, separators=(",", ":"))], delay_s=self.fact_delay_s)


#: name -> (faults, backend behaviour)
FLEET: dict[str, tuple[ProtocolFaults, str]] = {
    "good": (ProtocolFaults(), "ok"),
    "good2": (ProtocolFaults(), "ok"),
    "latency": (ProtocolFaults(latency_ms=150), "ok"),
    "reset": (ProtocolFaults(reset_mid_exchange=True), "ok"),
    "authfail": (ProtocolFaults(auth_failure=True), "ok"),
    "refused": (ProtocolFaults(refused_port=True), "ok"),
    "unknownca": (ProtocolFaults(tls_unknown_ca=True), "ok"),
    "plainok": (ProtocolFaults(allow_unencrypted=True), "ok"),
    "slow": (ProtocolFaults(), "slow"),
    "garbage": (ProtocolFaults(), "garbage"),
    "scripterr": (ProtocolFaults(), "script-error"),
    "writeerr": (ProtocolFaults(), "write-error"),
    "leaky": (ProtocolFaults(), "echo-secret"),
}

#: Hosts whose default endpoint is not FullLanguage (AppLocker/WDAC lockdown; a NoLanguage endpoint), served
#: only by the labs that ask for them (``lab_specs(extra=...)``), so fleet-wide sweeps keep their expectations.
DEFAULT_ENDPOINT_LANGUAGE = {"constrained": "ConstrainedLanguage", "nolanguage": "NoLanguage"}


def lab_specs(base_octet: int = 60, *, extra: dict[str, tuple[ProtocolFaults, str]] | None = None
              ) -> list[tuple[LabHostSpec, EchoBackend]]:
    hosts = []
    for index, (name, (faults, behaviour)) in enumerate({**FLEET, **(extra or {})}.items()):
        language = DEFAULT_ENDPOINT_LANGUAGE.get(name, "FullLanguage")
        spec = LabHostSpec(name=name, address=f"127.0.{base_octet}.{index + 10}", fqdn=f"{name}.lab.test",
                           http_port=0, https_port=0, ssh_port=0, users={USER: PASSWORD}, faults=faults,
                           endpoints=(Endpoint("Microsoft.PowerShell", language=language),))
        hosts.append((spec, EchoBackend(behaviour)))
    return hosts


def credential(password: str = PASSWORD) -> Credential:
    return Credential(name="lab", username=USER, password=Secret(password))


def winrm_host(lab: Any, name: str, *, scheme: str = "https", password: str = PASSWORD, **options: Any) -> HostConfig:
    endpoint = lab.endpoints()[name]
    port = endpoint["https_port"] if scheme == "https" else endpoint["http_port"]
    opts = replace(WinRMOptions(scheme=scheme, port=port, ca_bundle=str(lab.ca_cert_path), connect_timeout=3,
                                operation_timeout=2, read_timeout=8), **options)
    return HostConfig(name=name, address=str(endpoint["address"]), credential=credential(password), winrm=opts,
                      time_budget=60)


def ssh_host(lab: Any, name: str, *, password: str = PASSWORD, **options: Any) -> HostConfig:
    endpoint = lab.endpoints()[name]
    opts = replace(SSHOptions(port=int(endpoint["ssh_port"]), known_hosts=str(lab.known_hosts_path),
                              connect_timeout=3), **options)
    return HostConfig(name=name, address=str(endpoint["address"]), transport="ssh",
                      credential=credential(password), ssh=opts, time_budget=60)


def write_inventory(lab: Any, path: Path, names: list[str], *, scheme: str = "https", transport: str = "winrm",
                    password_env: str = "IISFLEET_TEST_LAB_PASSWORD") -> Path:
    """An iisfleet inventory for ``names`` on ``lab``; the password is referenced by environment variable."""
    import yaml

    hosts = {}
    for name in names:
        endpoint = lab.endpoints()[name]
        port = endpoint["https_port"] if scheme == "https" else endpoint["http_port"]
        hosts[name] = {"address": endpoint["address"], "winrm": {"port": port},
                       "ssh": {"port": endpoint["ssh_port"]}}
    document = {
        "simulated": True,
        "defaults": {"transport": transport, "credential": "lab",
                     "winrm": {"scheme": scheme, "ca_bundle": str(lab.ca_cert_path), "connect_timeout": 3,
                               "operation_timeout": 2, "read_timeout": 8},
                     "ssh": {"known_hosts": str(lab.known_hosts_path)}},
        "credentials": {"lab": {"username": USER, "password": {"env": password_env}}},
        "hosts": hosts,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


PLAYBOOK = """\
name: fleet-test
description: Test sweep with the host facts collector only.
steps:
  - collector: Get-HostFact
    timeout: 20s
"""


def start_lab(state_dir: Path, authorized_keys: list[str] = (), *, base_octet: int = 60,
              extra: dict[str, tuple[ProtocolFaults, str]] | None = None):
    from toolkit.lab.server import LabServer

    server = LabServer(lab_specs(base_octet, extra=extra), state_dir=state_dir,
                       ssh_authorized_keys=list(authorized_keys))
    server.start()
    return server


@contextlib.contextmanager
def served_scenario(fleet_dir: Path, scenario: str, hosts: int) -> Iterator[tuple[Any, list[HostConfig]]]:
    """A generated lab fleet (the real host model, bundled collectors) served over WinRM and SSH: the
    server and the inventory's hosts."""
    from toolkit.inventory import load_inventory
    from toolkit.lab.model import load_fleet
    from toolkit.lab.model import write_inventory as write_fleet_inventory
    from toolkit.lab.scenarios import generate
    from toolkit.lab.server import LabServer

    generate(scenario, hosts, fleet_dir, seed=0)
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=True) as server:
        inventory = write_fleet_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path,
                                          fleet_dir / "inventory.yml")
        yield server, load_inventory(Path(inventory)).select(None)
