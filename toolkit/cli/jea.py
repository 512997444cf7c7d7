"""`iisfleet jea export DIR`: write the JEA endpoint an admin registers on each web server.

iisfleet never registers it: it never changes a server. Exit code 2 for a bad option or an unwritable
DIR, 0 otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._common import EXIT_OK, EXIT_USAGE, console, emit_json, fail
from toolkit.errors import ToolkitError

jea_app = typer.Typer(
    name="jea",
    help="Least privilege: the Just Enough Administration endpoint iisfleet can use instead of an admin session.",
    no_args_is_help=True,
)


@jea_app.command("export")
def export_command(
    out: Annotated[Path, typer.Argument(help="Folder to write the module, role, session configuration and README into.")],
    group: Annotated[str, typer.Option("--group", "-g", help="AD group whose members may use the endpoint, DOMAIN\\Name.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="Name to register the endpoint under (the inventory's configuration_name).")] = "IisFleet",
    gmsa: Annotated[str | None, typer.Option("--gmsa", help="Run as this group-managed service account (DOMAIN\\Name$) instead of a virtual account.")] = None,
    virtual_account_group: Annotated[list[str], typer.Option(
        "--virtual-account-group", help="Local group the virtual account joins instead of Administrators (repeatable), "
                                        "e.g. 'Event Log Readers'. Collectors that need more come back with access denied.")] = [],  # noqa: B006
    transcript_directory: Annotated[str | None, typer.Option("--transcript-directory", help="Record JEA session transcripts in this folder on the server.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already holds files.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Write a PowerShell module exposing each collector as a function, a role capability (.psrc) that makes
    exactly those functions visible, a session configuration (.pssc: RestrictedRemoteServer, virtual account or
    gMSA, RoleDefinitions for --group) and a README with the registration commands. Nothing is registered."""
    from toolkit.jea.export import ExportOptions, build_export

    try:
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not force)):
            fail(f"{out} is not an empty folder (use --force to write into it)", EXIT_USAGE)
        export = build_export(ExportOptions(group=group, endpoint=endpoint, gmsa=gmsa,
                                            virtual_account_groups=tuple(virtual_account_group),
                                            transcript_directory=transcript_directory))
        written = export.write(out)
    except ToolkitError as exc:
        fail(exc, EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}", EXIT_USAGE)
    if json_output:
        emit_json({"directory": str(out), "endpoint": endpoint, "functions": list(export.functions),
                   "core_version": export.core_version, "files": [str(p) for p in written]})
    else:
        console.print(f"wrote the JEA endpoint '{endpoint}' ({len(export.functions)} functions) to {out}",
                      highlight=False, markup=False)
        console.print(f"register it on each web server as {out / 'README.md'} says; iisfleet never does",
                      highlight=False, markup=False)
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add ``iisfleet jea ...`` to the root app."""
    app.add_typer(jea_app, name="jea")
