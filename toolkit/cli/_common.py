"""Helpers shared by the command modules: consoles, exit codes, error rendering."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.markup import escape

from toolkit.errors import ToolkitError
from toolkit.secrets import redact
from toolkit.textsafe import display_text

#: Exit codes used by every command (documented in README.md).
EXIT_OK = 0
EXIT_FINDINGS = 1  # findings at/above --fail-on, or hosts failed in `hosts check`
EXIT_USAGE = 2  # bad command line, unusable input or configuration
EXIT_UNREACHABLE = 3  # some hosts could not be reached (when nothing else applies)

# The output policy lives in toolkit.cli.output; these names stay for the command modules.
from toolkit.cli.output import console, emit_json, err_console  # noqa: E402,F401


def fail(error: ToolkitError | str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one clear error line (and its explanation) to stderr and exit with ``code``."""
    # Messages quote inventory lines and host output: "[web:bogus]" or "[/]" in them is text, not markup.
    # Host output can carry terminal escapes and bidi overrides: shown as visible escapes, never acted on.
    message = escape(display_text(redact(str(error))))
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    explanation = getattr(error, "explanation", None)
    if explanation:
        err_console.print(f"  {display_text(redact(explanation))}", highlight=False, markup=False)
    raise typer.Exit(code)


def is_tty() -> bool:
    return sys.stdout.isatty()


def plural(count: int, noun: str) -> str:
    """``1 host``, ``2 hosts``, ``0 planted causes``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
