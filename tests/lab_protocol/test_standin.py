"""The stand-in ``powershell`` executable on its own (what a real sshd would start)."""

from __future__ import annotations

import importlib
import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from toolkit.lab.ssh.powershell_standin import install_standin

from .conftest import BOOTSTRAP, encoded


def run_standin(directory: Path, args: list[str], stdin: bytes, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(directory / "powershell.exe"), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_standin(tmp_path_factory.mktemp("standin"), {"IISFLEET_LAB_HOST": "standin01"})


def test_bootstrap_and_errors_with_the_echo_backend(standin: Path) -> None:
    ok = run_standin(
        standin,
        ["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded(BOOTSTRAP)],
        json.dumps({"script": "# lab-echo\n", "parameters": {"A": [1, 2]}}).encode(),
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"host": "standin01", "parameters": {"A": [1, 2]}, "script_length": 11}

    unknown = run_standin(standin, ["-NoProfile", "-Command", "-"], b"Get-Process\n")
    assert unknown.returncode == 1 and unknown.stderr.startswith(b"#< CLIXML")
    assert b"unknown collector" in unknown.stderr

    broken = run_standin(
        standin,
        ["-EncodedCommand", encoded(BOOTSTRAP)],
        b"{}",
        {"IISFLEET_LAB_BACKEND": "no.such.module:factory"},
    )
    assert broken.returncode == 1 and b"could not load its backend" in broken.stderr


def test_a_generated_fleet_answers_a_bundled_collector_through_the_real_bootstrap(
    standin: Path, tmp_path: Path
) -> None:
    scenarios = importlib.import_module("toolkit.lab.scenarios")
    collectors = importlib.import_module("toolkit.collectors")
    contract = importlib.import_module("toolkit.contract")
    from toolkit.lab.model import load_fleet

    scenarios.generate("healthy", 1, tmp_path / "fleet")
    host = load_fleet(tmp_path / "fleet").hosts[0][0].name
    collector = collectors.load_catalog()["Get-HostFact"]
    bootstrap = base64.b64encode(collectors.ssh_bootstrap().encode("utf-16-le")).decode()
    # The session bootstrap: one request per line, each answer closed by its own end token.
    requests = [{"script": collector.script, "parameters": collector.bind({}), "end": f"#end-{n}#"} for n in (1, 2)]
    result = run_standin(
        standin,
        ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", bootstrap],
        "".join(json.dumps(r) + "\n" for r in requests).encode(),
        {"IISFLEET_LAB_FLEET": str(tmp_path / "fleet"), "IISFLEET_LAB_HOST": host},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.decode("utf-8").splitlines()
    assert [json.loads(line.split("#", 2)[2]) for line in lines if line.startswith("#end-")] == \
        [{"failed": False, "errors": []}] * 2
    envelope = contract.validate_envelope(lines[0], collector=collector, host=host)
    assert envelope and lines[1] == "#end-1#" + '{"failed":false,"errors":[]}'
