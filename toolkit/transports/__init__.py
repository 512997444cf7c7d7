"""Ways of reaching a host. ``TRANSPORTS`` maps an inventory ``transport`` name to its class."""

from __future__ import annotations

from collections.abc import Callable

from toolkit.errors import ConfigError
from toolkit.models import HostConfig
from toolkit.transports.base import Transport
from toolkit.transports.ssh import SSHTransport
from toolkit.transports.winrm import WinRMTransport

TransportFactory = Callable[[HostConfig], Transport]

#: The explicit registry; adding a transport means adding a line here.
TRANSPORTS: dict[str, TransportFactory] = {
    "winrm": WinRMTransport,
    "ssh": SSHTransport,
}


def create_transport(host: HostConfig) -> Transport:
    """A not-yet-opened transport for ``host`` as its inventory entry asks."""
    try:
        factory = TRANSPORTS[host.transport]
    except KeyError:
        raise ConfigError(f"unknown transport {host.transport!r} (known: {', '.join(sorted(TRANSPORTS))})",
                          field=f"hosts.{host.name}.transport") from None
    return factory(host)


__all__ = ["TRANSPORTS", "Transport", "TransportFactory", "SSHTransport", "WinRMTransport", "create_transport"]
