"""Small wording fixes an admin reads: each message says what it means once, in the terms of the file
the admin wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.collectors import load_catalog
from toolkit.contract import validate_envelope
from toolkit.errors import ContractError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("output", ['{"schema": "iisfleet.collector/1", "host": "unterminated', "{\"a\": 1,"])
def test_truncated_json_is_described_without_a_doubled_word(output: str) -> None:
    collector = load_catalog()["Get-HostFact"]
    with pytest.raises(ContractError) as caught:
        validate_envelope(output, collector=collector, host="web01")
    message = str(caught.value)
    assert "at at" not in message and "(character " in message, message


def test_unset_env_variable_in_an_ansible_inventory_is_explained_in_ansible_terms(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(
        "[web]\nweb01 ansible_host=127.0.0.1\n\n[web:vars]\nansible_connection=psrp\n"
        "ansible_user=CONTOSO\\svc\nansible_password=\"{{ lookup('env', 'IISFLEET_SURELY_UNSET_PW') }}\"\n")
    done = subprocess.run([sys.executable, "-m", "toolkit", "hosts", "check", "-i", str(tmp_path / "hosts.ini")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    first, explanation = done.stderr.splitlines()[:2]
    assert first == (f"error: {tmp_path / 'hosts.ini'}:7 (ansible_password): environment variable "
                     "IISFLEET_SURELY_UNSET_PW is not set (ansible_password reads it with "
                     "lookup('env', 'IISFLEET_SURELY_UNSET_PW'))")
    assert "{prompt: true}" not in done.stderr and "credentials." not in done.stderr
    assert "export IISFLEET_SURELY_UNSET_PW=" in explanation


def test_lab_generate_counts_in_words(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "toolkit", "lab", "generate", str(tmp_path / "f"), "--scenario",
                           "healthy", "--hosts", "1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 host, 0 planted causes, 1 host without one." in done.stdout


def test_password_prompt_has_one_colon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inventory's prompt text already ends with ": "; typer must not add its own."""
    import typer

    from toolkit.cli import run as run_cli

    asked: list[tuple[str, str]] = []

    def fake_prompt(text: str, *, prompt_suffix: str = ": ", **_: object) -> str:
        asked.append((text, prompt_suffix))
        return "typed"

    monkeypatch.setattr(run_cli.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(typer, "prompt", fake_prompt)
    assert run_cli.prompt_secret("Password for CONTOSO\\svc (credential ops): ") == "typed"
    shown = asked[0][0] + asked[0][1]
    assert shown == "Password for CONTOSO\\svc (credential ops): "
