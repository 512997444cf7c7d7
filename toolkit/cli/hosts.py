"""`iisfleet hosts check -i INVENTORY`: walk each host through DNS, TCP, TLS, auth, a command, clock, envelope.

Exit code 1 when any host fails a check, 2 for a bad inventory, 0 otherwise.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from toolkit.cli._common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, console, emit_json, err_console, fail
from toolkit.cli.run import CaBundleOption, InventoryOption, LimitOption, VerboseOption
from toolkit.errors import ToolkitError
from toolkit.secrets import redact
from toolkit.textsafe import display_text

hosts_app = typer.Typer(help="Check and inspect the hosts of an inventory.", no_args_is_help=True)

_MARK = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]", "skip": "[dim]–[/]"}
_COLUMNS = ("dns", "tcp", "tls", "auth", "command", "clock", "envelope", "session", "rights", "jea")
_HEADERS = {"command": "cmd", "envelope": "env"}


@hosts_app.command("check")
def check_command(
    inventory: InventoryOption,
    limit: LimitOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=1024)] = 32,
    ca_bundle: CaBundleOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Check that every selected host is reachable and usable, rung by rung."""
    from toolkit.cli.run import load_targets, setup_logging
    from toolkit.transports.check import check_hosts

    setup_logging(verbose)
    try:
        hosts, _ = load_targets(inventory, limit, ca_bundle)
        results = check_hosts(hosts, concurrency=concurrency)
    except typer.BadParameter as exc:
        fail(str(exc))
    except ToolkitError as exc:
        fail(exc, EXIT_USAGE)

    if json_output:
        emit_json([r.to_dict() for r in results])
    else:
        table = Table(title="hosts check")
        table.add_column("host", overflow="fold")
        table.add_column("via", overflow="fold")
        for column in _COLUMNS:  # a mark is at most 4 wide: never squeeze a header to "d…"
            header = _HEADERS.get(column, column)
            table.add_column(header, min_width=max(len(header), 4), no_wrap=True)
        for result in results:
            cells = []
            for name in _COLUMNS:
                item = result.item(name)
                cells.append(_MARK[item.status] if item else "")
            via = f"{result.transport} {result.address}:{result.port}"
            table.add_row(escape(display_text(result.host)), escape(display_text(via)), *cells)  # host text, not markup
        console.print(table)
        for result in results:
            for item in result.items:
                if item.status in ("fail", "warn") or (item.status == "ok" and item.name in ("tls", "clock", "envelope", "session", "jea")):
                    line = f"{display_text(result.host)} {item.name}: {display_text(redact(item.detail))}"
                    if item.explanation:
                        line += f"\n    → {display_text(redact(item.explanation))}"
                    (err_console if item.status == "fail" else console).print(line, highlight=False, markup=False)
    failed = [r for r in results if not r.ok]
    if not json_output:
        console.print(f"{len(results) - len(failed)}/{len(results)} hosts passed")
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add ``iisfleet hosts ...`` to the root app."""
    app.add_typer(hosts_app, name="hosts")
