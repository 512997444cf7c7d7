"""`iisfleet worker --zone NAME -i INVENTORY`: serve one network zone's hosts for distributed runs.

Thin: load the inventory (credentials resolved here, on the worker), start the Celery worker. Celery is
an optional extra; without it the command says how to install it.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli._common import EXIT_USAGE, fail
from toolkit.errors import ToolkitError, UsageError
from toolkit.models import HostConfig

_PANEL = "Distributed runs (Celery)"


class Engine(str, Enum):
    local = "local"
    celery = "celery"


EngineOption = Annotated[Engine | None, typer.Option(
    "--engine", envvar="IISFLEET_ENGINE", rich_help_panel=_PANEL, show_default=False,
    help="local: this machine's threads. celery: one task per host to `iisfleet worker`s, by zone. "
         "Unset: IISFLEET_ENGINE, else the inventory's `engine:` (Ansible: iisfleet_engine), else local.")]


def resolve_engine(given: Engine | None, inventory_engine: str | None) -> Engine:
    """The engine a run uses: --engine, else IISFLEET_ENGINE (typer reads both into ``given``, the option
    first), else the inventory's ``engine:``, else local."""
    if given is not None:
        return given
    return Engine(inventory_engine) if inventory_engine else Engine.local
BrokerOption = Annotated[str | None, typer.Option(
    "--broker", envvar="IISFLEET_BROKER", rich_help_panel=_PANEL,
    help="Celery broker URL (default redis://127.0.0.1:6379/0; a password goes in the URL or IISFLEET_BROKER).")]
VisibilityOption = Annotated[float, typer.Option(
    "--visibility-timeout", min=5, rich_help_panel=_PANEL,
    help="Seconds before a host held by a dead worker is delivered again; longer than any host budget. "
         "Same value on workers and controller.")]
ArtifactListenOption = Annotated[str, typer.Option(
    "--artifact-listen", rich_help_panel=_PANEL,
    help="ADDRESS:PORT where this controller receives the workers' evidence (0: a free port).")]
ArtifactUrlOption = Annotated[str | None, typer.Option(
    "--artifact-url", rich_help_panel=_PANEL,
    help="The URL workers use to reach --artifact-listen (behind NAT or a proxy).")]
ArtifactCertOption = Annotated[Path | None, typer.Option(
    "--artifact-cert", exists=True, dir_okay=False, rich_help_panel=_PANEL,
    help="PEM certificate (with chain) for HTTPS on the artifact receiver.")]
BrokerGraceOption = Annotated[float, typer.Option(
    "--broker-grace", min=1, rich_help_panel=_PANEL,
    help="Seconds the broker may stay unreachable before the run gives up on the hosts still out.")]
ArtifactKeyOption = Annotated[Path | None, typer.Option(
    "--artifact-key", exists=True, dir_okay=False, rich_help_panel=_PANEL, help="Its private key.")]


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--artifact-listen {text!r}: expected ADDRESS:PORT, e.g. 0.0.0.0:8470")
    return host.strip("[]") or "0.0.0.0", int(port)


def celery_engine(playbook: Any, params: dict[str, Any], hosts: list[HostConfig], *, broker: str | None,
                  visibility_timeout: float, artifact_listen: str, artifact_url: str | None,
                  artifact_cert: Path | None, artifact_key: Path | None, deadline: float | None,
                  broker_grace: float = 30.0, artifact_store: Any = None) -> Any:
    """The ``CeleryEngine`` for `iisfleet run --engine celery` (checked before any host is contacted)."""
    require_celery()
    from toolkit.distributed.controller import CeleryEngine

    engine = CeleryEngine(playbook=playbook, params=params, broker=broker, visibility_timeout=visibility_timeout,
                          artifact_listen=_listen_address(artifact_listen), artifact_url=artifact_url,
                          artifact_cert=str(artifact_cert) if artifact_cert else None,
                          artifact_key=str(artifact_key) if artifact_key else None, deadline_s=deadline,
                          broker_grace_s=broker_grace, artifact_store=artifact_store)
    engine.validate(hosts)
    return engine


def artifact_store_of(loaded: Any) -> Any:
    """The ``ObjectStore`` of the inventory's ``artifact_store:`` (its credential resolved here), or None."""
    config = getattr(loaded, "artifact_store", None)
    if config is None:
        return None
    from toolkit.distributed.objectstore import ObjectStore

    return ObjectStore.from_config(config, loaded.resolver.resolve)


def require_celery() -> None:
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        fail("distributed runs need Celery: pip install 'iisfleet[celery]'", EXIT_USAGE)


def worker_command(
    zone: Annotated[str, typer.Option("--zone", "-z", help="The zone to serve: hosts whose `zone` variable is NAME "
                                                           "(set it on a group to zone the group).")] = "default",
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="This worker's inventory (its credentials "
                                                                       "are resolved here).")] = Path("inventory.yml"),
    limit: Annotated[str | None, typer.Option("--limit", "-l", help="Serve only these hosts of the zone.")] = None,
    broker: BrokerOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=256,
                                             help="Hosts worked on at once by this worker.")] = 8,
    visibility_timeout: VisibilityOption = 3600.0,
    ca_bundle: Annotated[Path | None, typer.Option(
        "--ca-bundle", exists=True, dir_okay=False, help="PEM file of CAs to trust for WinRM HTTPS (all hosts).")] = None,
    artifact_ca: Annotated[Path | None, typer.Option(
        "--artifact-ca", exists=True, dir_okay=False,
        help="PEM file of CAs to trust for the controller's HTTPS artifact receiver.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug log on stderr (secrets are masked).")] = False,
) -> None:
    """Serve one zone's hosts for `iisfleet run --engine celery` until stopped (Ctrl-C: running hosts finish).

    The worker resolves the credentials of its own inventory (environment variables, keyring, prompt at
    start-up); task messages never carry any. Run one or more workers per zone, where the zone's hosts
    are reachable.
    """
    require_celery()
    from toolkit.cli.run import load_selected, setup_logging
    from toolkit.distributed.app import broker_url
    from toolkit.distributed.worker import serve

    setup_logging(verbose)
    try:
        hosts, loaded = load_selected(inventory, limit, ca_bundle)
        store = artifact_store_of(loaded)
    except typer.BadParameter as exc:
        fail(str(exc))
    except ToolkitError as exc:
        fail(exc, EXIT_USAGE)
    serve(zone, hosts, broker=broker_url(broker), concurrency=concurrency, visibility_timeout=visibility_timeout,
          cafile=str(artifact_ca) if artifact_ca else None, store=store)


def register(app: typer.Typer) -> None:
    """Add ``iisfleet worker`` to the root app."""
    app.command("worker", help="Serve one zone's hosts for distributed runs (Celery).")(worker_command)
