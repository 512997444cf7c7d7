"""Shared pieces for the fleet tests: a trivial test collector, stand-in playbooks, an in-memory transport.

The in-memory transport implements ``toolkit.transports.Transport`` and is used only for the runner's
own logic (ordering, interrupts, deadlines, run directory); every transport test drives the real
pypsrp/paramiko clients against the lab servers.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from toolkit.collectors import Collector, ParamSpec
from toolkit.errors import TransportError
from toolkit.models import HostConfig, ScriptOutput

ECHO_ID = "Test-Echo"
ECHO_SCRIPT = (
    "# collector-id: Test-Echo/1\n"
    "param([string]$Message = 'hello', [int]$Count = 1)\n"
    "# test collector: echoes its parameters inside an envelope\n"
)


def echo_collector() -> Collector:
    sidecar = {"name": ECHO_ID, "version": 1, "output": {"data": {"message": {"type": "string"},
                                                                  "count": {"type": "int"}}}}
    return Collector(id=ECHO_ID, version=1, script=ECHO_SCRIPT, sidecar=sidecar,
                     parameters=(ParamSpec("Message", "string", "hello", "text to echo"),
                                 ParamSpec("Count", "int", 1, "a number")))


def echo_envelope(host: str, params: dict[str, Any]) -> str:
    return json.dumps({"schema": "iisfleet.collector/1", "collector": ECHO_ID, "version": 1, "host": host.upper(),
                       "time_utc": "2026-11-24T21:00:00Z",
                       "data": {"message": str(params.get("Message", "hello")), "count": int(params.get("Count", 1))},
                       "errors": []}, separators=(",", ":"))


@dataclass
class StubStep:
    """Stand-in for toolkit.playbooks.Step (same attributes and methods)."""

    collector: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    when: Any = None  # callable(facts) -> (bool, reason)

    def parameters(self, bound: dict[str, Any]) -> dict[str, Any]:
        return {k: (bound[v[1:]] if isinstance(v, str) and v.startswith("$") else v) for k, v in self.params.items()}

    def should_run(self, facts: dict[str, dict], params: dict[str, Any] | None = None) -> tuple[bool, str]:
        return self.when(facts) if self.when else (True, "")


@dataclass
class StubPlaybook:
    """Stand-in for toolkit.playbooks.Playbook."""

    name: str
    steps: list[StubStep]
    defaults: dict[str, Any] = field(default_factory=dict)
    report: bool = False

    def bind(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **overrides}


class MemoryTransport:
    """Answers the echo collector in memory; ``behaviour`` says how this host misbehaves."""

    opened: list[str] = []
    lock = threading.Lock()

    def __init__(self, host: HostConfig) -> None:
        self.host = host
        self.behaviour = host.vars.get("behaviour", "ok")

    def open(self) -> None:
        if self.behaviour == "refused":
            raise TransportError("connection refused", host=self.host.name, category="connect",
                                 explanation="nothing listens")
        with MemoryTransport.lock:
            MemoryTransport.opened.append(self.host.name)

    def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float) -> ScriptOutput:
        delay = float(self.host.vars.get("delay", 0))
        if delay:
            end = time.monotonic() + min(delay, timeout)
            while time.monotonic() < end:
                time.sleep(0.01)
            if delay > timeout:
                raise TransportError("too slow", host=self.host.name, category="timeout")
        if self.behaviour == "garbage":
            return ScriptOutput(stdout="<html>not json")
        if self.behaviour == "script-error":
            return ScriptOutput(stdout="", errors=("Get-Item : Cannot find path 'C:\\nope'",), had_errors=True)
        return ScriptOutput(stdout=echo_envelope(self.host.name, parameters))

    def close(self) -> None:
        pass


def memory_host(name: str, **vars: Any) -> HostConfig:
    return HostConfig(name=name, address=f"{name}.lab.invalid", vars=vars)
