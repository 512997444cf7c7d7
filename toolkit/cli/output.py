"""The one output policy of the ``iisfleet`` command line (every command prints through this module).

* Machine-readable output (``--json``, CSV) is written as plain text with :func:`emit_json` /
  ``typer.echo``: never wrapped, never coloured, whatever the terminal.
* Human output on a terminal adapts to its width (Rich wraps text and folds table cells).
* Human output that is not going to a terminal (a pipe, a file, cron, CI) is never wrapped or cropped:
  a message or a path stays on one line, and a table cell is printed whole (the table is as wide as its
  content). ``COLUMNS`` is ignored there: it describes a terminal that is not the reader.
* ``--help`` is Click's plain help: no type placeholders, nothing cut with an ellipsis; it wraps to the
  terminal, and off a terminal each paragraph stays on one line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, ConsoleDimensions

#: Width a console pretends to have when it is not writing to a terminal: wider than any line we print, so
#: Rich never wraps a message nor squeezes a table column.
PIPE_WIDTH = 100_000


class PolicyConsole(Console):
    """A Rich console that follows the policy above, deciding per call (tests and callers swap
    ``sys.stdout``/``sys.stderr``, and the same process may print to a terminal and to a pipe)."""

    @property
    def size(self) -> ConsoleDimensions:
        if self.is_terminal:
            return super().size
        return ConsoleDimensions(PIPE_WIDTH, 25)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:  # Rich's setter, kept for its callers
        width, height = new_size
        self._width, self._height = width, height

    def _render_buffer(self, buffer: Any) -> str:
        text = super()._render_buffer(buffer)
        if self.is_terminal:
            return text
        # A left-justified table title is padded to the table's width: no trailing blanks in a pipe.
        return "\n".join(line.rstrip(" ") for line in text.split("\n"))


console = PolicyConsole(highlight=False)
err_console = PolicyConsole(stderr=True, highlight=False)


def emit_json(document: Any) -> None:
    """A JSON document on stdout: indented, never wrapped or styled, ASCII only (host-supplied text with
    terminal escapes or bidi controls stays inert as \\u escapes)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def help_context_settings() -> dict[str, Any]:
    """Click context settings for the root app (sub-commands inherit them): on a terminal, wrap help to
    the terminal (up to 100 columns); elsewhere never wrap it."""
    if sys.stdout.isatty():
        return {"max_content_width": 100}
    return {"terminal_width": PIPE_WIDTH, "max_content_width": PIPE_WIDTH}


def plain_metavars(command: Any) -> None:
    """Give every option and argument of ``command`` (and its sub-commands) a plain metavar: ``PATH``,
    ``TEXT``, ``INTEGER``, ``[winrm|ssh]`` instead of Typer's ``<list[str]>`` and ``<int range>``."""
    import enum
    import typing
    from pathlib import Path

    for param in getattr(command, "params", []):
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        while args:  # list[str], Path | None
            annotation, args = args[0], [a for a in typing.get_args(args[0]) if a is not type(None)]
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            param.metavar = "[" + "|".join(str(member.value) for member in annotation) + "]"
        elif getattr(param, "param_type_name", "") == "argument":
            param.metavar = (param.name or "value").upper()
            param.display_type_rich = lambda ctx: None  # the name says it: no "<str>" after it
        else:
            param.metavar = {int: "INTEGER", float: "NUMBER", Path: "PATH"}.get(annotation, "TEXT")
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)


def run_command_line(command: Any) -> None:
    """Run the Click command like its standalone mode does, but word usage errors plainly: Typer passes a
    choice typo on as pydantic's "Value error, 'bogus' is not one of ..."."""
    import typer

    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    try:
        code = command.main(prog_name="iisfleet", standalone_mode=False)
    except click_exception as error:  # type: ignore[misc]
        error.message = str(error.message).replace("Value error, ", "")
        error.show()
        sys.exit(error.exit_code)
    except typer.Abort as error:  # Ctrl-C or end of input at a prompt, outside any run
        sys.stderr.write("\naborted\n")
        sys.exit(130 if isinstance(error.__context__, KeyboardInterrupt) else 1)
    sys.exit(code if isinstance(code, int) else 0)
