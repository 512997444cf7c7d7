"""A lab fleet with its domain controller running: the DC seeded from the fleet's ``domain:`` section, the
inventory's ``directory:`` section pointing at it, and the Kerberos-made causes replayed with real tickets.

``lab_domain(model)`` starts the DC (machine-wide lock, cached provision template) and stops it on exit;
``directory_section(dc)`` is what an inventory needs to query it (NTLM, sealed, over LDAPS with the DC's
CA, as the fleet's own domain credential); ``real_tickets(dc, expected, model)`` runs, for every site of
the answer key's ``kerberos`` list, the exchange a domain client and that site would have
(``toolkit.lab.addc.tickets``), so that regenerating the fleet with those outcomes writes W3C rows a real
KDC decided (``toolkit.lab.scenarios.generate(tickets=...)``).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from toolkit.lab.addc import DomainSpec, SambaDC, exclusive_lock, seed_from_fleet

#: Shared by every user of the lab DC on this machine (tests, demo): provision once, copy afterwards.
DEFAULT_TEMPLATES = Path(tempfile.gettempdir()) / "iisfleet-samba" / "templates"


@contextlib.contextmanager
def lab_domain(model: Any, *, template_root: Path = DEFAULT_TEMPLATES) -> Iterator[SambaDC]:
    """The lab DC for ``model`` (a FleetModel), seeded; ``dc.seeded`` holds what the seed made."""
    domain = model.domain
    spec = DomainSpec(realm=domain.name.upper(), netbios=domain.netbios.upper(), domain_sid=domain.sid)
    with exclusive_lock():
        # A short directory: samba's sockets live below it and a Unix socket path has ~107 bytes at most.
        home = Path(tempfile.mkdtemp(prefix="iisfleet-dc-"))
        dc = SambaDC(home / "dc", spec, template_root=template_root)
        try:
            dc.start()
            dc.seed(seed_from_fleet(model))
            yield dc
        finally:
            dc.stop()
            shutil.rmtree(home, ignore_errors=True)


def directory_section(dc: SambaDC, credential: str = "lab") -> dict[str, Any]:
    """The inventory's ``directory:`` for the lab DC, logging on as the inventory credential ``credential``."""
    return {"dcs": [dc.spec.ip], "auth": "ntlm", "credential": credential, "scheme": "ldaps",
            "ca_bundle": str(dc.ca_file), "tls_name": dc.spec.dc_fqdn, "domain": dc.spec.dns_domain}


def real_tickets(dc: SambaDC, expected: Mapping[str, Any], model: Any) -> list[dict[str, str]]:
    """Replay the answer key's Kerberos attempts as real exchanges, the fleet's own domain user being the
    client; one ``{spn, account, result, detail}`` per attempt."""
    from toolkit.lab.addc.tickets import exchange

    attempts = list(expected.get("kerberos") or [])
    if not attempts:
        return []
    client = str(model.username).rpartition("\\")[2]
    return exchange(dc, attempts, client=client, password=str(model.password), workdir=dc.dir / "tickets")
