"""The ``iisfleet`` command line. Only this package prints or exits.

Each command group lives in its own module and registers itself on the root app; commands stay thin:
parse options, call one library function, map ``ToolkitError`` to an exit code.
"""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit import __version__
from toolkit.cli.output import help_context_settings, plain_metavars, run_command_line

app = typer.Typer(
    name="iisfleet",
    help=(
        "Explain every HTTP 401 across a fleet of IIS servers.\n\n"
        "Collect read-only evidence over WinRM or SSH, diagnose each terminal 401 (which servers, which "
        "sites, which cause, the evidence, the fix) and write one cross-server report."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
    add_completion=False,
    # Plain Click help and usage errors: nothing cut with "…", no <bool> placeholders, one-line errors.
    rich_markup_mode=None,
    context_settings=help_context_settings(),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"iisfleet {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Explain every HTTP 401 across a fleet of IIS servers."""


def _register_commands() -> None:
    # Imported here so `iisfleet --version` stays fast and a broken optional group cannot hide the others.
    from toolkit.cli import analyze, bundle, demo, history, hosts, jea, lab, playbooks, report, run, worker

    for module in (analyze, run, playbooks, hosts, report, bundle, history, worker, lab, demo, jea):
        module.register(app)


_register_commands()


def main() -> None:
    command = typer.main.get_command(app)
    plain_metavars(command)
    run_command_line(command)
