"""`iisfleet demo`: the whole product on a simulated fleet, in one command."""

from __future__ import annotations

import shlex
import sys
import threading
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli._common import EXIT_OK, EXIT_USAGE, console, err_console, fail, is_tty
from toolkit.cli.run import ProgressHooks, print_outcome
from toolkit.errors import ToolkitError
from toolkit.models import HostResult, StepError


class DemoScenario(str, Enum):
    """The lab scenarios that make a quick demo (`faults` and `large` are for `iisfleet lab generate`)."""
    seed_catalog = "seed-catalog"
    drift = "drift"
    healthy = "healthy"


class DemoTransport(str, Enum):
    winrm = "winrm"
    ssh = "ssh"


def demo(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Keep the fleet, run directory and reports here (default: ./runs/demo-<UTC time>)."),
    ] = None,
    hosts: Annotated[int, typer.Option("--hosts", min=6, max=200, help="How many simulated servers.")] = 12,
    transport: Annotated[DemoTransport, typer.Option("--transport", help="Reach the lab over WinRM or SSH.")] = DemoTransport.winrm,
    scenario: Annotated[DemoScenario, typer.Option(
        "--scenario", help="seed-catalog: every known cause planted; drift: one setting differs on the "
                           "failing servers; healthy: no cause.")] = DemoScenario.seed_catalog,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report model as JSON.")] = False,
) -> None:
    """See the whole product work on a SIMULATED fleet: every known 401 cause planted, served over real WinRM or SSH.

    Generates a lab fleet, serves it on loopback over real WinRM (NTLM + message encryption) or SSH, runs
    the triage-401 playbook against it, and writes the cross-server report (text, Markdown, HTML, JSON, CSV).

    Nothing outside this machine is contacted. Exit code 0 when the demo completed; 130 when Ctrl-C or
    SIGTERM stopped it (the reports then cover the hosts that finished).
    """
    from toolkit.cli.run import EXIT_INTERRUPTED, setup_logging, sigterm_stops, third_interrupt_exits
    from toolkit.lab.demo import run_demo
    from toolkit.report import render

    setup_logging(False)  # library log noise (paramiko, pypsrp) stays out of the demo's output

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work_dir = out or Path("runs") / f"demo-{stamp}"
    if work_dir.exists() and not work_dir.is_dir():
        fail(f"{work_dir}: is a file, not a folder; choose another --out", EXIT_USAGE)
    if work_dir.exists() and any(work_dir.iterdir()):
        fail(f"{work_dir}: already exists and is not empty; choose another --out", EXIT_USAGE)
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a parent is a file, or a read-only place
        fail(f"{error.filename or work_dir}: cannot create the demo folder: {error.strerror or error}",
             EXIT_USAGE)

    def stage(message: str) -> None:
        err_console.print(f"[dim]demo:[/] {message}", highlight=False)

    live = is_tty() and sys.stderr.isatty() and not json_output
    # SIGTERM stops the demo as two Ctrl-C stop a run: running steps end, the lab servers shut down
    # (the with-blocks unwind), the partial run stays reportable, and the exit code says interrupted.
    stop, stop_running = threading.Event(), threading.Event()
    try:
        with ProgressHooks(hosts, live=live, json_mode=json_output) as progress, \
                sigterm_stops(stop, stop_running), third_interrupt_exits():
            result = run_demo(work_dir.resolve(), scenario=scenario.value, hosts=hosts, transport=transport.value,
                              on_stage=stage, hooks=progress, stop=stop, stop_running=stop_running)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
    if json_output:
        typer.echo(render(result.report, "json"), nl=False)
    else:
        from toolkit.rundir import load_run

        typer.echo(render(result.report, "text"), nl=False)
        console.print(f"\nSIMULATED fleet in {result.fleet_dir} (serve it again: iisfleet lab serve "
                      f"{shlex.quote(str(result.fleet_dir))})", highlight=False)
        print_outcome(result.run_dir, _host_results(load_run(result.run_dir)))
    if result.interrupted:
        err_console.print("[yellow]demo interrupted: the reports cover the hosts that finished[/]", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK)


def _host_results(run: Any) -> list[HostResult]:
    """The loaded run's hosts as the results `print_outcome` counts (status and error category)."""
    results = []
    for name, record in run.hosts.items():
        error = record.error if isinstance(record.error, dict) else None
        results.append(HostResult(host=name, address=record.address, transport="", status=record.status,
                                  error=StepError(category=str(error.get("category", "")),
                                                  message=str(error.get("message", ""))) if error else None))
    return results


def register(app: typer.Typer) -> None:
    """Add `demo` to the root app."""
    app.command("demo")(demo)
