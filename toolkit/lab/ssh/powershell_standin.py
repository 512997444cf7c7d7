"""A stand-in ``powershell`` executable, so a real OpenSSH ``sshd`` can serve lab collectors.

``install_standin(directory)`` writes ``powershell`` and ``powershell.exe`` wrappers that run this
module with the project's interpreter. Put the directory first on the session's PATH (``SetEnv
PATH=...`` in the test sshd's config) and the client's ``powershell.exe -NoProfile ... -EncodedCommand
<bootstrap>`` command runs here: it is parsed exactly like the in-process lab does it
(``toolkit.lab.winrm.console``) and answered by a backend chosen by environment variables:

* ``IISFLEET_LAB_FLEET=<fleet dir>`` and ``IISFLEET_LAB_HOST=<host name>``: the host's backend from
  ``toolkit.lab.model.load_fleet`` (LAB-MODEL);
* ``IISFLEET_LAB_BACKEND=module:callable``: ``callable(host_name)`` returns a ``HostBackend``;
* otherwise the built-in :class:`EchoBackend`.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from toolkit.lab.backend import HostBackend, ScriptAnswer
from toolkit.lab.winrm import console

ECHO_MARKER = "# lab-echo"


class EchoBackend:
    """A tiny backend for protocol tests: it answers only scripts that carry ``# lab-echo``.

    The first line ``# lab-echo <mode> [seconds]`` chooses the answer:

    * ``echo`` (default): one JSON object ``{"host", "parameters", "script_length"}``;
    * ``fail``: a terminating error; ``warn``: output plus one non-terminating error;
    * ``slow N``: the echo after N seconds; ``lines N``: N output objects.
    Anything else is refused loudly, like the real model refuses unknown collectors.
    """

    def __init__(self, host_name: str = "lab-host") -> None:
        self.host_name = host_name
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def answer(self, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
        self.calls.append((script, parameters))
        header = next((line for line in script.splitlines() if line.startswith(ECHO_MARKER)), None)
        if header is None:
            return ScriptAnswer(
                error=f"unknown collector: the lab host {self.host_name} does not recognise this script"
            )
        words = header[len(ECHO_MARKER) :].split()
        mode = words[0] if words else "echo"
        argument = float(words[1]) if len(words) > 1 else 0.0
        echo = json.dumps(
            {"host": self.host_name, "parameters": parameters, "script_length": len(script)}, sort_keys=True
        )
        if mode == "fail":
            return ScriptAnswer(error=f"simulated terminating error on {self.host_name}")
        if mode == "warn":
            return ScriptAnswer(output=[echo], non_terminating_errors=["simulated non-terminating error"])
        if mode == "slow":
            return ScriptAnswer(output=[echo], delay_s=argument)
        if mode == "lines":
            return ScriptAnswer(output=[f"line {n}" for n in range(int(argument))])
        return ScriptAnswer(output=[echo])


def backend_from_environment(environ: dict[str, str] | None = None) -> HostBackend:
    env = os.environ if environ is None else environ
    host = env.get("IISFLEET_LAB_HOST", "lab-host")
    fleet = env.get("IISFLEET_LAB_FLEET")
    if fleet:
        model = importlib.import_module("toolkit.lab.model")
        for spec, backend in model.load_fleet(Path(fleet)).hosts:
            if spec.name == host:
                return backend
        raise LookupError(f"host {host!r} is not in the fleet at {fleet}")
    factory = env.get("IISFLEET_LAB_BACKEND")
    if factory:
        module_name, _, attribute = factory.partition(":")
        return getattr(importlib.import_module(module_name), attribute)(host)
    return EchoBackend(host)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Re-join as Windows would have received it; the console parser splits it again.
    command_line = "powershell.exe " + " ".join(f'"{a}"' if (" " in a and '"' not in a) else a for a in args)
    program = console.parse_command_line(command_line, os.environ.get("IISFLEET_LAB_HOST", "lab-host"))
    if program.kind == "error" and program.immediate is not None and b"too long" in program.immediate.stderr:
        program = console._parse_powershell(args)  # the 8191 limit is cmd.exe's; sshd on Linux has none
    try:
        backend = backend_from_environment()
    except Exception as exc:  # noqa: BLE001 - report like PowerShell would, never a Python traceback
        sys.stderr.buffer.write(console.clixml_errors([f"lab stand-in could not load its backend: {exc}"]))
        return 1
    if program.kind == "session":
        from toolkit.lab.session import LabSession

        session = LabSession(backend, host_name=os.environ.get("IISFLEET_LAB_HOST", "lab-host"),
                             language_mode=os.environ.get("IISFLEET_LAB_LANGUAGE_MODE", "FullLanguage"))

        def write(data: bytes) -> None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()

        def write_stderr(data: bytes) -> None:
            sys.stderr.buffer.write(data)
            sys.stderr.buffer.flush()

        def read_line() -> bytes | None:
            line = sys.stdin.buffer.readline(console.STDIN_LIMIT)
            return line.rstrip(b"\r\n") if line else None

        return console.serve_session(read_line, write, write_stderr, session)
    stdin = sys.stdin.buffer.read(console.STDIN_LIMIT) if program.reads_stdin else b""
    result = console.run_program(program, stdin, backend)
    if result.delay_s > 0:
        time.sleep(result.delay_s)
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.buffer.flush()
    return result.exit_code


def install_standin(directory: Path, environment: dict[str, str] | None = None) -> Path:
    """Write ``powershell`` and ``powershell.exe`` wrappers into ``directory``; returns the directory.

    ``environment`` gives defaults the wrappers export (e.g. ``IISFLEET_LAB_HOST``) unless the session
    already has them, so no sshd ``SetEnv`` or ``AcceptEnv`` is needed beyond PATH.
    """
    directory.mkdir(parents=True, exist_ok=True)
    project_root = Path(__file__).resolve().parents[3]
    # Defaults only: a variable already set in the session (e.g. by a test) wins.
    exports = "".join(
        f'if [ -z "${{{name}+x}}" ]; then {name}={shlex.quote(value)}; export {name}; fi\n'
        for name, value in (environment or {}).items()
    )
    text = (
        "#!/bin/sh\n"
        "# iisfleet lab stand-in for powershell.exe (SIMULATED; no PowerShell runs here)\n"
        f"export PYTHONPATH={shlex.quote(str(project_root))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f"{exports}"
        f'exec {shlex.quote(sys.executable)} -m toolkit.lab.ssh.powershell_standin "$@"\n'
    )
    for name in ("powershell", "powershell.exe"):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    return directory


if __name__ == "__main__":
    sys.exit(main())
