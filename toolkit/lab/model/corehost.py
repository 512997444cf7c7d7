"""The lab's bridge to the target-side C# core: one long-lived Mono process per lab server.

The process is ``toolkit/lab/targethost/*.cs`` compiled together with the core (``ps_scripts/core``).
It speaks JSON lines (protocol in ``Harness.cs``): the lab sends a collector id, the bound parameters and
the simulated host (name, clock, which local folders its Windows paths map to), and gets back the output
objects the core's entry point produced, one line each, as soon as each is produced. So what a lab host
returns for a file-based collector is produced by the code that runs on Windows.

Requests are served one at a time per process (a lock); the core answers a collector in milliseconds.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.targetcore import compile_assembly, core_source
from toolkit.targetcore.mono import mono_command


class CoreHostError(ToolkitError):
    """The harness process failed (died, answered garbage); ``category`` config so the lab says so loudly."""

    category = "config"


@dataclass(frozen=True)
class SimulatedHost:
    """What the core needs to know about one simulated host."""

    computer_name: str
    utc_now: str  # ISO 8601 with Z, seconds precision
    mounts: Sequence[tuple[str, str]]  # (Windows path prefix, local folder); the longest prefix wins
    variables: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"computer_name": self.computer_name, "utc_now": self.utc_now,
                "mounts": [list(m) for m in self.mounts], "variables": dict(self.variables)}


@dataclass
class CoreAnswer:
    outputs: list[str] = field(default_factory=list)
    error: str | None = None  # the core threw: a terminating error on a real host
    error_type: str | None = None


def harness_sources() -> list[tuple[str, str]]:
    folder = resources.files("toolkit.lab").joinpath("targethost")
    return sorted((entry.name, entry.read_text(encoding="utf-8-sig")) for entry in folder.iterdir()
                  if entry.name.endswith(".cs"))


def compile_harness(extra_sources: Sequence[tuple[str, str]] = ()) -> Path:
    """Core + harness (+ e.g. test-only entry points) as one program; cached by content."""
    core = core_source()
    return compile_assembly([("core.cs", core.text), *harness_sources(), *extra_sources],
                            name=f"iisfleet-labcore-{core.version}", target="exe")


class CoreHost:
    """One harness process, started on first use. Raises MonoUnavailable when Mono is not installed."""

    def __init__(self, extra_sources: Sequence[tuple[str, str]] = ()) -> None:
        self._extra = tuple(extra_sources)
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._next_id = 0

    def _start(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            program = compile_harness(self._extra)
            self._process = subprocess.Popen(mono_command(program), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, text=True, encoding="utf-8", bufsize=1)
        return self._process

    def stream(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Send one request and yield its reply lines up to (not including) the end line.

        The lock is held while the caller iterates: consume the iterator fully."""
        with self._lock:
            process = self._start()
            assert process.stdin is not None and process.stdout is not None
            self._next_id += 1
            ident = self._next_id
            try:
                process.stdin.write(json.dumps({**request, "id": ident}) + "\n")
                process.stdin.flush()
            except OSError as exc:
                self._kill()
                raise CoreHostError(f"the lab's core process is gone ({exc})") from None
            while True:
                line = process.stdout.readline()
                if not line:
                    self._kill()
                    raise CoreHostError("the lab's core process exited in the middle of an answer")
                try:
                    reply = json.loads(line)
                except ValueError:
                    self._kill()
                    raise CoreHostError(f"the lab's core process wrote a line that is not JSON: {line[:200]!r}") from None
                if reply.get("id") != ident:
                    self._kill()
                    raise CoreHostError(f"the lab's core process answered request {reply.get('id')}, not {ident}")
                if reply.get("end"):
                    return
                yield reply

    def ping(self) -> dict[str, Any]:
        replies = list(self.stream({"op": "ping"}))
        return replies[0] if replies else {}

    def run(self, collector: str, host: SimulatedHost, parameters: dict[str, Any]) -> CoreAnswer:
        answer = CoreAnswer()
        for reply in self.stream({"op": "run", "collector": collector, "host": host.as_json(),
                                  "parameters": parameters}):
            if "output" in reply:
                answer.outputs.append(reply["output"])
            elif "error" in reply:
                answer.error, answer.error_type = str(reply["error"]), str(reply.get("type") or "")
        return answer

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                assert self._process.stdin is not None
                self._process.stdin.close()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None


_shared: CoreHost | None = None
_shared_lock = threading.Lock()


def shared_core_host() -> CoreHost:
    """The process-wide harness: one Mono process per lab server process, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = CoreHost()
            atexit.register(_shared.close)
        return _shared
