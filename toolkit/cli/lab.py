"""`iisfleet lab generate` and `iisfleet lab serve`: the simulated IIS fleet (SIMULATED, loopback only)."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import threading
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli._common import EXIT_OK, EXIT_USAGE, console, err_console, fail, plural
from toolkit.errors import ToolkitError, UsageError

lab_app = typer.Typer(
    name="lab",
    help="The simulated IIS fleet: generate a fleet directory, serve it over real WinRM and SSH on loopback.",
    no_args_is_help=True,
)


class InventoryScheme(str, Enum):
    http = "http"
    https = "https"


def _parse_faults(values: list[str]) -> dict[str, list[str]]:
    faults: dict[str, list[str]] = {}
    for value in values:
        host, sep, fault = value.partition("=")
        if not sep or not host or not fault:
            raise UsageError(f"--fault {value!r}: expected HOST=FAULT, e.g. web03=slow_collector")
        faults.setdefault(host.strip(), []).extend(f.strip() for f in fault.split(",") if f.strip())
    return faults


@lab_app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Argument(help="Folder to write the fleet into (must be new or empty).")],
    scenario: Annotated[str, typer.Option("--scenario", help="healthy, seed-catalog, drift, large or faults.")] = "seed-catalog",
    hosts: Annotated[int | None, typer.Option("--hosts", min=1, max=10000, help="Number of hosts (default depends on the scenario).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same fleet, byte for byte.")] = 0,
    reference_time: Annotated[str | None, typer.Option(
        "--reference-time", help="The 'now' the logs are written against (ISO 8601 UTC; default a fixed date). "
                                 "Serving shifts all timestamps to the real clock anyway.")] = None,
    fault: Annotated[list[str], typer.Option("--fault", help="Plant a fault: HOST=FAULT (repeatable), e.g. web03=slow_collector.")] = [],  # noqa: B006
    force: Annotated[bool, typer.Option("--force", help="Replace the contents of a non-empty OUT folder.")] = False,
) -> None:
    """Write a consistent simulated fleet (configs, rights, ACLs, SPNs, events, W3C logs, FREB traces) and its
    answer key OUT/expected.json. The folder format is documented in docs/lab-fleet.md."""
    from toolkit.lab.scenarios import generate

    try:
        reference = None
        if reference_time:
            try:
                reference = dt.datetime.fromisoformat(reference_time.replace("Z", "+00:00"))
            except ValueError:
                raise UsageError(f"--reference-time {reference_time!r} is not an ISO 8601 time") from None
        expected = generate(scenario, hosts, out, seed=seed, reference_time=reference,
                            faults=_parse_faults(fault), overwrite=force)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
    except OSError as error:  # a parent of OUT is a file, or a read-only place
        fail(f"{error.filename or out}: cannot write the fleet: {error.strerror or error}", EXIT_USAGE)
    planted = sum(len(entries) for entries in expected["hosts"].values())
    healthy = sum(1 for entries in expected["hosts"].values() if not entries)
    console.print(f"SIMULATED fleet '{scenario}' written to {out}: {plural(len(expected['hosts']), 'host')}, "
                  f"{plural(planted, 'planted cause')}, {plural(healthy, 'host')} without one.", highlight=False)
    console.print(f"Answer key: {out / 'expected.json'}", highlight=False)
    console.print(f"Serve it:   iisfleet lab serve {out}", highlight=False)


@lab_app.command("serve")
def serve_command(
    fleet_dir: Annotated[Path, typer.Argument(help="A fleet directory (from `iisfleet lab generate` or written by hand).")],
    ssh: Annotated[bool, typer.Option("--ssh/--no-ssh", help="Also serve Windows-OpenSSH-like SSH on each host.")] = True,
    port_base: Annotated[int | None, typer.Option(
        "--port-base", min=0, max=65000,
        help="Use ports BASE+3i (WinRM HTTP), +1 (HTTPS), +2 (SSH) for host i instead of 5985/5986/22; "
             "0 picks free ports.")] = None,
    scheme: Annotated[InventoryScheme, typer.Option("--scheme", help="WinRM scheme the written inventory uses.")] = InventoryScheme.http,
    domain_controller: Annotated[bool, typer.Option(
        "--domain-controller/--no-domain-controller",
        help="Also run a real Samba AD DC on 127.0.0.53 seeded from the fleet's domain: section (accounts, "
             "states, SPNs) and let the hosts' WinRM accept Kerberos with keytabs it exports. Needs root "
             "and the samba-ad-dc packages.")] = False,
) -> None:
    """Serve a fleet on loopback until Ctrl-C. Writes FLEET_DIR/inventory.yml (iisfleet's format, simulated,
    with the lab's documented demo credentials) before listening, then prints how to run against it."""
    from toolkit.cli.run import setup_logging
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.server import LabServer

    # paramiko logs a traceback for every connection that closes before the SSH banner (the TCP rung of
    # `hosts check` does exactly that): the lab's own lines are what an operator needs here.
    setup_logging(False)
    try:
        fleet = load_fleet(fleet_dir, port_base=port_base)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
    hosts = fleet.hosts
    inventory_path = fleet_dir / "inventory.yml"
    dc_stack = contextlib.ExitStack()
    directory = dc_stack.enter_context(_domain_controller(fleet)) if domain_controller else None
    server = LabServer(hosts, state_dir=fleet_dir / ".lab", ssh=ssh)
    fixed_ports = port_base != 0
    if fixed_ports:
        # every endpoint is known up front: the inventory exists before the first port listens
        planned = {spec.name: {"address": spec.address, "http_port": spec.http_port, "https_port": spec.https_port,
                               "ssh_port": spec.ssh_port if ssh else None} for spec, _ in hosts}
        write_inventory(fleet, planned, server.ca_cert_path, server.known_hosts_path, inventory_path, scheme=scheme.value,
                        directory=directory)
    try:
        server.start()
    except OSError as error:
        fail(f"cannot listen: {error}. Another process may hold the ports; try --port-base 0 (free ports) "
             f"or --port-base 20000.", EXIT_USAGE)
    stop = threading.Event()
    # Ctrl-C and SIGTERM both just set the event: a KeyboardInterrupt raised in the middle of printing
    # the banner would otherwise skip the clean stop below.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not fixed_ports:
            write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory_path,
                            scheme=scheme.value, directory=directory)
        endpoints = server.endpoints()
        first = next(iter(endpoints.values()))
        console.print(f"Serving {len(endpoints)} SIMULATED IIS hosts of '{fleet.name}' on loopback "
                      f"(WinRM http/https{', SSH' if ssh else ''}), e.g. {first['address']}:{first['http_port']}.",
                      highlight=False)
        console.print(f"Inventory: {inventory_path}", highlight=False)
        console.print(f"Lab CA:    {server.ca_cert_path}", highlight=False)
        console.print(f"Run:       iisfleet run triage-401 -i {inventory_path}", highlight=False)
        console.print("Press Ctrl-C to stop.", highlight=False)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        dc_stack.close()
    err_console.print("lab stopped", highlight=False)
    raise typer.Exit(EXIT_OK)


@contextlib.contextmanager
def _domain_controller(fleet: Any) -> Iterator[dict[str, Any]]:
    """A Samba AD DC for the served fleet, seeded from its domain: section; stopped when serving ends. Yields
    the inventory's ``directory:`` section for it (the run then reads SPNs, account states and groups there)."""
    from toolkit.lab.addc import available
    from toolkit.lab.addc.live import directory_section, lab_domain
    from toolkit.lab.winrm.auth import use_keytab

    why = available()
    if why:
        fail(f"--domain-controller: {why}", EXIT_USAGE)
    try:
        with lab_domain(fleet.model) as dc:  # the machine-wide provision template: a copy, not 10 s of provision
            keytab = dc.dir / "lab-hosts.keytab"
            restore = use_keytab(keytab, dc.krb5_conf) if dc.seeded.get("keytabs") else (lambda: None)
            spec = dc.spec
            console.print(f"Domain controller: {spec.dc_fqdn} ({spec.realm}) on {spec.ip}, LDAPS CA {dc.ca_file}; "
                          f"Kerberos: KRB5_CONFIG={dc.krb5_conf} kinit <user>@{spec.realm}", highlight=False)
            try:
                yield directory_section(dc)
            finally:
                restore()
    except ToolkitError as error:
        fail(error, EXIT_USAGE)


def register(app: typer.Typer) -> None:
    """Add ``iisfleet lab ...`` to the root app."""
    app.add_typer(lab_app, name="lab")
