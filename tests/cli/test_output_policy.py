"""The output policy (toolkit/cli/output.py): every command, piped, at widths 40, 80 and 200.

Piped output is never wrapped or cut: each error is one line holding the whole path, each table cell is
whole, JSON parses. Cases come from output_cases.yml; `--help` of every command is checked as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "output_cases.yml").read_text(encoding="utf-8"))
WIDTHS = (40, 80, 200)
IISFLEET = [sys.executable, "-c", "from toolkit.cli import main; main()"]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("policy")
    long = root / ("a-folder-whose-name-is-long-enough-to-be-wrapped-by-any-terminal-" * 2).rstrip("-") / "logs"
    long.mkdir(parents=True)
    inventory = root / "inventory.yml"
    inventory.write_text(
        "defaults: {transport: winrm, credential: ops, winrm: {scheme: http, port: 1}}\n"
        "credentials:\n  ops: {username: 'CONTOSO\\svc', password: {env: IISFLEET_POLICY_PW}}\n"
        "hosts:\n  web-with-a-rather-long-name-01.app-tier.contoso.example: {address: 127.0.0.1}\n",
        encoding="utf-8")
    prompt_inventory = root / "prompt.yml"
    prompt_inventory.write_text(inventory.read_text().replace("{env: IISFLEET_POLICY_PW}", "{prompt: true}"),
                                encoding="utf-8")
    demo_dir = root / "demo-20261124T220000Z"  # what `demo` leaves: the run is one level down
    (demo_dir / "run").mkdir(parents=True)
    (demo_dir / "run" / "run.json").write_text("{}")
    scratch = root / "not-empty"
    scratch.mkdir()
    (scratch / "keep.txt").write_text("x")
    return {"tmp": str(scratch), "long": str(long), "inventory": str(inventory),
            "prompt_inventory": str(prompt_inventory), "demo_dir": str(demo_dir)}


def _fill(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


def _run(args: list[str], width: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH")}
    env.update(COLUMNS=str(width), IISFLEET_POLICY_PW="not-a-real-password", PYTHONIOENCODING="utf-8")
    return subprocess.run(IISFLEET + args, capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_piped_output_is_whole(case: dict, width: int, places: dict[str, str]) -> None:
    done = _run([_fill(a, places) for a in case["args"]], width)
    streams = {"stdout": done.stdout, "stderr": done.stderr}
    assert done.returncode == case["exit"], streams
    assert "Traceback" not in done.stderr
    for name, text in streams.items():
        assert "…" not in text, f"{name} holds a cut cell or message:\n{text}"
    for text in case.get("absent", []):
        assert text not in done.stdout + done.stderr
    if case.get("json"):
        json.loads(done.stdout)
    for expect in case.get("lines", []):
        fragments = [_fill(f, places) for f in expect["all"]]
        lines = streams[expect["stream"]].splitlines()
        assert any(all(f in line for f in fragments) for line in lines), (
            f"no single {expect['stream']} line holds all of {fragments}:\n{streams[expect['stream']]}")


def _command_paths() -> list[list[str]]:
    import typer

    from toolkit.cli import app

    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, prefix + [name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("width", (40, 200))
def test_help_of_every_command_is_whole(width: int) -> None:
    paths = _command_paths()
    assert ["hosts", "check"] in paths and ["report"] in paths
    for path in paths:
        done = _run(path + ["--help"], width)
        assert done.returncode == 0, (path, done.stderr)
        assert "…" not in done.stdout and "<bool>" not in done.stdout and "<str>" not in done.stdout, done.stdout
        assert "Usage: iisfleet" in done.stdout
