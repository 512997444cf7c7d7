"""`iisfleet bundle verify|export`: prove a collected run is intact, and hand it over as a reproducible zip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, fail
from toolkit.errors import ToolkitError

bundle_app = typer.Typer(
    help="Verify and export evidence bundles: a run's manifests, file hashes and hash-chained custody log.",
    no_args_is_help=True,
)


@bundle_app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="A run directory written by `iisfleet run`, or its exported zip.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check every file against the manifests, every artefact against its host-side SHA-256, and the custody
    chain; name each file that changed, is missing or was added, and each custody entry that was edited.

    Verifying a run directory appends a `verification` entry to its custody log (a zip is never written).

    Exit codes: 0 the bundle is intact, 1 problems were found (each is listed), 2 not a bundle / unreadable.
    """
    from toolkit.bundle import append_entry, verify_bundle

    try:
        result = verify_bundle(bundle)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
    if bundle.is_dir():
        try:
            append_entry(bundle, "verification", result="ok" if result.ok else "failed",
                         problems=len(result.problems), files_checked=result.files_checked)
        except OSError:
            pass  # a read-only copy still verifies
    if json_output:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        # plain echo: one problem per line, never wrapped, so `grep` and pipes see whole lines
        for problem in result.problems:
            typer.echo(f"FAIL {problem}")
        verdict = "intact" if result.ok else f"NOT intact: {len(result.problems)} problem(s)"
        typer.echo(f"{bundle}: {verdict} ({result.files_checked} files, {result.artefacts_checked} artefacts, "
                   f"{result.custody_entries} custody entries checked)")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FINDINGS)


@bundle_app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="A sealed run directory.")],
    out_zip: Annotated[Path, typer.Argument(help="The zip to write; OUT.zip.sha256 is written beside it.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write a reproducible zip (sorted entries, fixed timestamps and modes, manifest at its root) and its
    detached SHA-256, after verifying the run; the export is recorded in the run's custody log.

    Exit codes: 0 written, 2 the run is not sealed, does not verify, or the zip cannot be written.
    """
    from toolkit.bundle import export_bundle

    if not run_dir.is_dir():
        fail(f"{run_dir}: no such run directory", EXIT_USAGE)
    try:
        digest = export_bundle(run_dir, out_zip)
    except ToolkitError as error:
        fail(error, EXIT_USAGE)
    except OSError as error:
        fail(f"{error.filename or out_zip}: cannot write the zip: {error.strerror or error}", EXIT_USAGE)
    if json_output:
        typer.echo(json.dumps({"zip": str(out_zip), "sha256": digest, "sha256_file": f"{out_zip}.sha256"}))
    else:
        typer.echo(f"wrote {out_zip}\n{digest}  {out_zip.name}  (also in {out_zip}.sha256)")
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add the `bundle` group to the root app."""
    app.add_typer(bundle_app, name="bundle")
