"""What a Windows console does with a command line: ``cmd.exe /c`` and ``powershell.exe``.

Shared by the WinRS shell (WinRM) and the Windows-OpenSSH emulation, which both hand a command line
to ``cmd.exe`` on a real host. No PowerShell runs: a ``powershell`` invocation is decoded to the script
it would run and the host's ``HostBackend`` answers it.

Behaviour copied from real hosts (facts, see the lab notes):

* ``cmd.exe`` refuses command lines over 8191 characters with "The command line is too long.";
* ``-EncodedCommand`` carries base64 of the UTF-16LE script;
* the SSH bootstrap (recognised by its marker line) in version 1 reads one JSON document
  ``{"script", "parameters"}`` from stdin and writes each output object as one UTF-8 line; version 2 (the
  bundled one) serves requests line by line for the whole connection (:func:`serve_session`);
* a terminating error goes to stderr as ``#< CLIXML`` and gives exit code 1; non-terminating errors go
  to stderr too but leave the exit code at 0;
* without the bootstrap, output is in the OEM code page (437).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from toolkit.lab.backend import ConnectionCut, HostBackend, ScriptAnswer

#: The line that identifies ps_scripts/_ssh_bootstrap.ps1 (docs/contracts.md, team sheet): version 1 runs
#: one request per process, version 2 one session (many requests) per process.
BOOTSTRAP_MARKER = "# collector-id: _ssh_bootstrap/1"
SESSION_BOOTSTRAP_MARKER = "# collector-id: _ssh_bootstrap/2"
#: cmd.exe's maximum command-line length (characters).
CMD_LINE_LIMIT = 8191
#: Cap on what the lab accepts on stdin for one process (a JSON document with a collector script).
STDIN_LIMIT = 8 * 1024 * 1024

_POWERSHELL_NAMES = {"powershell", "powershell.exe", "pwsh", "pwsh.exe"}


@dataclass
class ProcessResult:
    stdout: bytes
    stderr: bytes
    exit_code: int
    delay_s: float = 0.0


@dataclass
class ConsoleProgram:
    """A parsed command line, ready to run once its stdin (if it reads any) is complete."""

    kind: str  # "powershell" | "bootstrap" | "session" | "builtin" | "error"
    script: str = ""
    reads_stdin: bool = False
    immediate: ProcessResult | None = None


def clixml_errors(messages: list[str]) -> bytes:
    """The ``#< CLIXML`` document PowerShell writes to a redirected stderr for error records."""
    parts = [
        "#< CLIXML\r\n",
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">',
    ]
    for message in messages:
        for line in message.splitlines() or [""]:
            parts.append(f'<S S="Error">{_clixml_escape(line)}_x000D__x000A_</S>')
    parts.append("</Objs>")
    return "".join(parts).encode("utf-8")


def _clixml_escape(text: str) -> str:
    # CLIXML escapes "_x" itself and control characters as _xHHHH_; then ordinary XML escaping.
    text = text.replace("_x", "_x005F_x")
    text = re.sub(r"[\x00-\x1f]", lambda m: f"_x{ord(m.group()):04X}_", text)
    return escape(text)


def split_windows_args(command_line: str) -> list[str]:
    """Split like ``CommandLineToArgvW`` for the simple cases real clients send (quotes, no escapes)."""
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    has_token = False
    for char in command_line:
        if char == '"':
            in_quotes = not in_quotes
            has_token = True
        elif char in " \t" and not in_quotes:
            if has_token:
                args.append("".join(current))
                current, has_token = [], False
        else:
            current.append(char)
            has_token = True
    if has_token:
        args.append("".join(current))
    return args


def _matches(arg: str, full: str, shortest: int) -> bool:
    """PowerShell accepts any unambiguous prefix of a parameter name, with ``-`` or ``/``."""
    if not arg or arg[0] not in "-/":
        return False
    name = arg[1:].lower()
    return len(name) >= shortest and full.lower().startswith(name)


def parse_command_line(command_line: str, hostname: str) -> ConsoleProgram:
    """What ``cmd.exe /c <command_line>`` would start."""
    if len(command_line) > CMD_LINE_LIMIT:
        return ConsoleProgram("error", immediate=ProcessResult(b"", b"The command line is too long.\r\n", 1))
    args = split_windows_args(command_line)
    if not args:
        return ConsoleProgram("builtin", immediate=ProcessResult(b"", b"", 0))
    program = args[0].replace("/", "\\").rsplit("\\", 1)[-1].lower()
    if program in _POWERSHELL_NAMES:
        return _parse_powershell(args[1:])
    if program == "hostname":
        return ConsoleProgram("builtin", immediate=ProcessResult(hostname.upper().encode() + b"\r\n", b"", 0))
    if program == "echo":
        text = command_line.split(None, 1)[1] if len(args) > 1 else "ECHO is on."
        return ConsoleProgram(
            "builtin", immediate=ProcessResult(text.encode("cp437", "replace") + b"\r\n", b"", 0)
        )
    message = (
        f"'{args[0]}' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    return ConsoleProgram("error", immediate=ProcessResult(b"", message.encode("cp437", "replace"), 9009))


def _parse_powershell(args: list[str]) -> ConsoleProgram:
    index = 0
    while index < len(args):
        arg = args[index]
        if _matches(arg, "EncodedCommand", 1) or arg.lower() in ("-ec", "/ec"):
            if index + 1 >= len(args):
                return _usage_error("Missing argument for parameter -EncodedCommand.")
            try:
                script = base64.b64decode(args[index + 1], validate=True).decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError):
                return _usage_error(
                    "Cannot process the command because the value specified with "
                    "-EncodedCommand is not properly encoded. The value must be Base64 encoded."
                )
            if any(line.strip() == BOOTSTRAP_MARKER for line in script.splitlines()):
                return ConsoleProgram("bootstrap", script=script, reads_stdin=True)
            if any(line.strip() == SESSION_BOOTSTRAP_MARKER for line in script.splitlines()):
                return ConsoleProgram("session", script=script, reads_stdin=True)
            return ConsoleProgram("powershell", script=script)
        if _matches(arg, "Command", 1):
            rest = args[index + 1 :]
            if rest == ["-"]:
                return ConsoleProgram("powershell", reads_stdin=True)
            return ConsoleProgram("powershell", script=" ".join(rest))
        if (
            _matches(arg, "ExecutionPolicy", 2)
            or _matches(arg, "InputFormat", 2)
            or _matches(arg, "OutputFormat", 1)
            or _matches(arg, "WindowStyle", 1)
        ):
            index += 2
            continue
        if arg[:1] in "-/":
            index += 1  # switches such as -NoProfile, -NonInteractive, -NoLogo
            continue
        # A bare first argument is the -Command text.
        return ConsoleProgram("powershell", script=" ".join(args[index:]))
    # "powershell" alone would start an interactive prompt reading stdin.
    return ConsoleProgram("powershell", reads_stdin=True)


def _usage_error(message: str) -> ConsoleProgram:
    return ConsoleProgram("error", immediate=ProcessResult(b"", message.encode() + b"\r\n", 64))


def run_program(program: ConsoleProgram, stdin: bytes, backend: HostBackend) -> ProcessResult:
    """Run ``program`` with its complete stdin; the backend answers the PowerShell part."""
    if program.immediate is not None:
        return program.immediate
    if program.kind == "bootstrap":
        try:
            document = json.loads(stdin.decode("utf-8-sig"))
            script = document["script"]
            parameters = document.get("parameters") or {}
            if not isinstance(script, str) or not isinstance(parameters, dict):
                raise TypeError("script must be a string and parameters an object")
        except (ValueError, KeyError, TypeError) as exc:
            return ProcessResult(b"", clixml_errors([f"The bootstrap could not read its input: {exc}"]), 1)
        return _answer_to_result(_safe_answer(backend, script, parameters), utf8=True)
    script = program.script
    if program.reads_stdin:
        # `-Command -` reads the script line by line from stdin (REPL semantics; close enough here).
        script = stdin.decode("utf-8-sig", "replace")
    return _answer_to_result(_safe_answer(backend, script, {}), utf8=False)


def _safe_answer(backend: HostBackend, script: str, parameters: dict[str, Any]) -> ScriptAnswer:
    """A backend bug becomes the host's terminating error, never a dead server thread."""
    try:
        return backend.answer(script, parameters)
    except Exception as exc:  # noqa: BLE001 - the lab must keep serving other requests
        return ScriptAnswer(error=f"lab backend failed: {type(exc).__name__}: {exc}")


def _answer_to_result(answer: ScriptAnswer, *, utf8: bool) -> ProcessResult:
    encoding = "utf-8" if utf8 else "cp437"
    stdout = "".join(f"{line}\r\n" for line in answer.output).encode(encoding, "replace")
    errors = list(answer.non_terminating_errors)
    if answer.error is not None:
        errors.append(answer.error)
    stderr = clixml_errors(errors) if errors else b""
    return ProcessResult(stdout, stderr, 1 if answer.error is not None else 0, answer.delay_s)


def serve_session(read_line: Callable[[], bytes | None], write: Callable[[bytes], None],
                  write_stderr: Callable[[bytes], None], backend: HostBackend,
                  sleep: Callable[[float], None] = time.sleep) -> int:
    """Run the version-2 bootstrap: answer one request line at a time until stdin ends; the exit code.

    ``backend`` is the process's session (``toolkit.lab.session.LabSession``), so what one request loads
    (the C# core) is there for the next. A line that is not a request ends the process as
    ConvertFrom-Json's terminating error would: CLIXML on stderr and exit code 1.
    """
    while True:
        line = read_line()
        if line is None:
            return 0
        if not line.strip():
            continue
        try:
            request = json.loads(line.decode("utf-8-sig"))
            script, parameters = request["script"], request.get("parameters") or {}
            end = str(request.get("end") or "")
            if not isinstance(script, str) or not isinstance(parameters, dict):
                raise TypeError("script must be a string and parameters an object")
        except (ValueError, KeyError, TypeError) as exc:
            write_stderr(clixml_errors([f"The bootstrap could not read its input: {exc}"]))
            return 1
        answer = _safe_answer(backend, script, parameters)
        if answer.delay_s > 0:
            sleep(answer.delay_s)
        errors = list(answer.non_terminating_errors) + ([answer.error] if answer.error is not None else [])
        status = json.dumps({"failed": answer.error is not None, "errors": errors}, separators=(",", ":"))
        if answer.output:
            write("".join(f"{item}\n" for item in answer.output).encode("utf-8"))
        if answer.drop_connection:
            raise ConnectionCut("the lab cuts this connection mid-answer (a transfer fault)")
        if answer.stall_s > 0:
            sleep(answer.stall_s)  # the parts above are already on the wire, as a streaming collector's are
        write((end + status + "\n").encode("utf-8"))
