"""One lab for the protocol proof tests: normal hosts plus one host per protocol fault.

The backend is ``EchoBackend`` (answers scripts marked ``# lab-echo <mode>``), so these tests depend
on nothing but the protocol layer. Clients are pypsrp, pywinrm and paramiko, unmodified.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import paramiko
import pytest

from toolkit.lab.backend import LabHostSpec, ProtocolFaults
from toolkit.lab.server import LabServer
from toolkit.lab.ssh.powershell_standin import EchoBackend

DOMAIN_USER = "LAB\\admin"
LOCAL_USER = "labadmin"
PASSWORD = "Lab-Passw0rd!"
OTHER_PASSWORD = "Other-Passw0rd!"

# What ps_scripts/_ssh_bootstrap.ps1 looks like to the lab: the marker line is all that matters.
BOOTSTRAP = (
    "# collector-id: _ssh_bootstrap/1\n"
    "$ErrorActionPreference = 'Stop'\n"
    "$in = [Console]::In.ReadToEnd() | ConvertFrom-Json\n"
    "$p = @{}; $in.parameters.psobject.Properties | ForEach-Object { $p[$_.Name] = $_.Value }\n"
    "& ([scriptblock]::Create($in.script)) @p | ForEach-Object { [Console]::Out.WriteLine($_) }\n"
)


def encoded(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode()


def bootstrap_command() -> str:
    return "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + encoded(
        BOOTSTRAP
    )


@dataclass(frozen=True)
class Lab:
    server: LabServer
    backends: dict[str, EchoBackend]
    client_key: paramiko.PKey

    def endpoint(self, name: str) -> dict:
        return self.server.endpoints()[name]



def plain_http(lab: Lab, host: str = "web01") -> dict[str, object]:
    """Keyword arguments for pypsrp's ``WSMan`` or ``Client``: plain HTTP to ``host``, domain account."""
    endpoint = lab.endpoint(host)
    return dict(server=endpoint["address"], port=endpoint["http_port"], ssl=False, username=DOMAIN_USER,
                password=PASSWORD, no_proxy=True)


def ssh_connect(
    lab: Lab, host: str = "web01", *, verify_host_key: bool = True, **kwargs: object
) -> paramiko.SSHClient:
    """A paramiko client logged on to ``host`` with the domain password (``kwargs`` override connect options).

    ``verify_host_key`` trusts only the lab's known_hosts file (RejectPolicy for anything else); False accepts
    any key, for fault hosts where the test is about what happens after the key exchange.
    """
    endpoint = lab.endpoint(host)
    client = paramiko.SSHClient()
    if verify_host_key:
        client.load_host_keys(str(lab.server.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())  # the lab's known_hosts must suffice
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    options = dict(username=DOMAIN_USER, password=PASSWORD, look_for_keys=False, allow_agent=False, timeout=5)
    options.update(kwargs)
    try:
        client.connect(endpoint["address"], port=endpoint["ssh_port"], **options)
    except BaseException:
        client.close()
        raise
    return client


_HOSTS: dict[str, ProtocolFaults] = {
    "web01": ProtocolFaults(),
    "web02": ProtocolFaults(),
    "web03": ProtocolFaults(),
    "web04": ProtocolFaults(),
    "plain": ProtocolFaults(allow_unencrypted=True),
    "slow": ProtocolFaults(latency_ms=300),
    "refused": ProtocolFaults(refused_port=True),
    "rogue": ProtocolFaults(tls_unknown_ca=True),
    "reset": ProtocolFaults(reset_mid_exchange=True),
    "locked": ProtocolFaults(auth_failure=True),
}


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    state = tmp_path_factory.mktemp("lab-state")
    client_key = paramiko.ECDSAKey.generate(bits=256)
    hosts = []
    backends = {}
    for index, (name, faults) in enumerate(_HOSTS.items(), start=10):
        users = {DOMAIN_USER: PASSWORD, LOCAL_USER: PASSWORD}
        if name == "web04":
            users = {DOMAIN_USER: PASSWORD}  # LOCAL_USER is not an account of web04
        spec = LabHostSpec(
            name=name,
            address=f"127.77.0.{index}",
            fqdn=f"{name}.lab.test",
            http_port=0,
            https_port=0,
            ssh_port=0,
            users=users,
            faults=faults,
        )
        backends[name] = EchoBackend(name)
        hosts.append((spec, backends[name]))
    server = LabServer(
        hosts,
        state_dir=Path(state),
        ssh_authorized_keys=[f"{client_key.get_name()} {client_key.get_base64()} test"],
    )
    with server:
        yield Lab(server, backends, client_key)
