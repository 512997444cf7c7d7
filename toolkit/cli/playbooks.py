"""`iisfleet playbooks list|show|validate`: what the bundled playbooks do, and whether a file is valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from toolkit.cli._common import EXIT_USAGE, console, emit_json, err_console, fail
from toolkit.errors import InputError, PlaybookError
from toolkit.playbooks import Playbook, bundled_playbook_names, format_duration, load_playbook

playbooks_app = typer.Typer(
    name="playbooks",
    help="List, show and validate playbooks (which collectors run, with which parameters).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _error_parts(error: InputError) -> dict[str, Any]:
    """Split an ``InputError`` into path/line/field/message for `file:line: field: message` output."""
    where = error.path or ""
    if error.path and error.line:
        where = f"{error.path}:{error.line}"
    if error.field:
        where = f"{where} ({error.field})" if where else error.field
    text = str(error)
    message = text[len(where) + 2 :] if where and text.startswith(f"{where}: ") else text
    return {"path": error.path, "line": error.line, "field": error.field, "message": message}


def _error_line(parts: dict[str, Any]) -> str:
    location = parts["path"] or "<playbook>"
    if parts["line"]:
        location = f"{location}:{parts['line']}"
    field = f" {parts['field']}:" if parts["field"] else ""
    return f"{location}:{field} {parts['message']}"


def _print_json(value: Any) -> None:
    emit_json(json.loads(json.dumps(value, sort_keys=False, default=str)))


@playbooks_app.command("list")
def list_command(json_output: JsonOption = False) -> None:
    """List the bundled playbooks."""
    rows: list[dict[str, Any]] = []
    for name in bundled_playbook_names():
        try:
            playbook = load_playbook(name)
        except PlaybookError as exc:
            rows.append({"name": name, "valid": False, "error": _error_parts(exc)})
            continue
        rows.append(
            {
                "name": playbook.name,
                "valid": True,
                "steps": len(playbook.steps),
                "report": playbook.report,
                "description": playbook.description,
            }
        )
    if json_output:
        _print_json(rows)
        return
    table = Table(title="Bundled playbooks", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("steps", justify="right")
    table.add_column("report")
    table.add_column("description")
    for row in rows:
        if row["valid"]:
            table.add_row(
                escape(row["name"]),
                str(row["steps"]),
                "yes" if row["report"] else "no",
                escape(row["description"]),
            )
        else:
            table.add_row(
                escape(row["name"]), "-", "-", f"[red]invalid:[/] {escape(_error_line(row['error']))}"
            )
    console.print(table)


@playbooks_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="A bundled playbook name (triage-401) or a playbook file.")],
    json_output: JsonOption = False,
) -> None:
    """Show a playbook's parameters and steps."""
    try:
        playbook = load_playbook(name)
    except PlaybookError as exc:
        fail(exc)
    if json_output:
        _print_json(playbook.to_dict())
        return
    _show(playbook)


def _show(playbook: Playbook) -> None:
    console.print(f"[bold]{escape(playbook.name)}[/]  ({escape(playbook.path)})", highlight=False)
    if playbook.description:
        console.print(playbook.description, highlight=False, markup=False)
    console.print(f"report at the end: {'yes' if playbook.report else 'no'}", highlight=False)
    if playbook.parameters:
        params = Table(title="Parameters", title_justify="left")
        for column in ("name", "type", "default", "description"):
            params.add_column(column)
        for parameter in playbook.parameters.values():
            default = parameter.to_dict()["default"]
            if parameter.required:
                default = "[yellow](required)[/]"
            kind: str = parameter.type
            if parameter.choices:
                kind += f" ({' | '.join(map(str, parameter.choices))})"
            params.add_row(
                escape(parameter.name),
                escape(kind),
                str(default) if parameter.required else escape(str(default)),
                escape(parameter.description),
            )
        console.print(params)
    steps = Table(title="Steps (in order, on each host)", title_justify="left")
    steps.add_column("#", justify="right")
    steps.add_column("collector", no_wrap=True)
    for column in ("parameters", "when", "timeout"):
        steps.add_column(column)
    for index, step in enumerate(playbook.steps, start=1):
        parameters = "\n".join(f"{key}: {value}" for key, value in step.raw_parameters.items()) or "-"
        when = step.when.text if step.when else "-"
        timeout = format_duration(step.timeout) if step.timeout else "-"
        steps.add_row(str(index), escape(step.collector), escape(parameters), escape(when), timeout)
    console.print(steps)


@playbooks_app.command("validate")
def validate_command(
    paths: Annotated[list[str], typer.Argument(help="Playbook files (or bundled names) to check.")],
    json_output: JsonOption = False,
) -> None:
    """Validate playbooks; print `file:line: field: message` for each invalid one and exit 2."""
    results: list[dict[str, Any]] = []
    for path in paths:
        try:
            playbook = load_playbook(Path(path) if Path(path).exists() else path)
        except PlaybookError as exc:
            results.append({"path": path, "valid": False, "error": _error_parts(exc)})
            continue
        results.append(
            {
                "path": path,
                "valid": True,
                "name": playbook.name,
                "steps": len(playbook.steps),
                "catalog": playbook.catalog_source,
            }
        )
    invalid = [r for r in results if not r["valid"]]
    if json_output:
        _print_json(results)
    else:
        for result in results:
            if result["valid"]:
                console.print(
                    f"[green]ok[/] {escape(result['path'])} ({escape(result['name'])}, "
                    f"{result['steps']} steps)",
                    highlight=False,
                )
            else:
                err_console.print(_error_line(result["error"]), highlight=False, markup=False, soft_wrap=True)
    if invalid:
        raise typer.Exit(EXIT_USAGE)


def register(app: typer.Typer) -> None:
    """Add `iisfleet playbooks` to the root app."""
    app.add_typer(playbooks_app, name="playbooks")
