"""What `run` and `hosts check` print is text (brackets in inventory lines or host errors are not markup),
and their input errors are one line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.cli.run import summary_table
from toolkit.models import HostResult, StepError


def test_summary_table_prints_host_error_text_verbatim() -> None:
    hostile = "fault [/] from [bold]the host[/bold] [web:bogus]"
    result = HostResult("web01", "10.0.0.1", "winrm", status="failed", duration_s=1.0,
                        error=StepError("protocol", hostile, explanation="see [/x]"))
    console = Console(width=400, record=True, color_system=None)
    console.print(summary_table([result]))  # a markup error here would be a traceback at the end of a run
    text = console.export_text()
    assert "protocol: " + hostile in text
    assert "see [/x]" in text


@pytest.mark.parametrize(
    ("ini", "shown"),
    [
        ("[web:bogus]\nweb01\n", "bad section header '[web:bogus]'"),  # was swallowed as a style tag
        ("[web]\nweb01 [/]x\n", "got '[/]x'"),  # was a rich MarkupError traceback
    ],
)
@pytest.mark.parametrize("command", [["hosts", "check"], ["run", "triage-401"]])
def test_inventory_errors_with_brackets_are_printed_as_written(
    tmp_path: Path, command: list[str], ini: str, shown: str
) -> None:
    (tmp_path / "inv.ini").write_text(ini)
    out = ["--out", str(tmp_path / "run")] if command[0] == "run" else []
    result = CliRunner().invoke(app, [*command, "-i", str(tmp_path / "inv.ini"), *out])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "".join(shown.split()) in "".join(result.output.split())  # rich wraps and folds long lines
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["hosts", "check"], ["run", "triage-401"]])
def test_password_prompt_with_closed_stdin_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "inv.yml").write_text("credentials:\n  ops: {username: svc, password: {prompt: true}}\n"
                                      "hosts:\n  web01: {address: 127.0.0.1, credential: ops}\n")
    result = CliRunner().invoke(app, [*command, "-i", str(tmp_path / "inv.yml")], input="")  # EOF at once
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    text = " ".join(result.output.split())
    # no terminal: iisfleet does not prompt (getpass would warn and read the answer from the pipe)
    assert 'error: no terminal to ask "Password for svc (credential ops)"' in text
    assert "Aborted" not in text and "GetPassWarning" not in text


@pytest.mark.parametrize("command", [["hosts", "check"], ["run", "triage-401"]])
@pytest.mark.parametrize("content", ["hosts: {}\n", None])  # None: an Ansible inventory folder without hosts
def test_an_inventory_without_hosts_is_named_in_the_error(
    tmp_path: Path, command: list[str], content: str | None
) -> None:
    inventory = tmp_path / "inv.yml"
    if content is None:
        inventory.mkdir()
        (inventory / "hosts.ini").write_text("[web]\n")
    else:
        inventory.write_text(content)
    result = CliRunner().invoke(app, [*command, "-i", str(inventory)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"error:{inventory}:theinventoryhasnohosts" in "".join(result.output.split())
