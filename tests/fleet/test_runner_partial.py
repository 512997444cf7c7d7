"""A step that times out keeps the parts a streaming collector had finished (docs/contracts.md 1.4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit.collectors import Collector
from toolkit.errors import TransportError
from toolkit.models import ScriptOutput
from toolkit.rundir import load_run
from toolkit.runner import run_playbook

from fleet_helpers import MemoryTransport, StubPlaybook, StubStep, memory_host

STREAM_ID = "Test-Stream"
STREAM = Collector(id=STREAM_ID, version=1, script="# collector-id: Test-Stream/1\n",
                   sidecar={"name": STREAM_ID, "version": 1,
                            "output": {"data": {"files": {"type": "list", "items": {"path": {"type": "string"}}}}}},
                   parameters=())


def part(index: int, files: list[str], *, final: bool = False) -> str:
    return json.dumps({"schema": "iisfleet.collector/1", "collector": STREAM_ID, "version": 1, "host": "WEB01",
                       "time_utc": "2026-11-24T21:00:00Z", "data": {"files": [{"path": f} for f in files]},
                       "errors": [], "part": {"index": index, "final": final}})


class StoppedMidStream(MemoryTransport):
    """Two files' parts arrived, then the step's time ran out (what a transport reports on timeout)."""

    def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float) -> ScriptOutput:
        arrived = {"parts": "\n".join([part(0, []), part(1, ["a.log"]), part(2, ["b.log"])]),
                   "garbage": "<html>half a page", "nothing": ""}[self.behaviour]
        error = TransportError("the script did not finish within 1 s", host=self.host.name, category="timeout")
        error.partial_stdout = arrived
        raise error


def test_the_finished_parts_of_a_timed_out_step_are_kept(tmp_path: Path) -> None:
    hosts = [memory_host("web01", behaviour="parts"), memory_host("web02", behaviour="garbage"),
             memory_host("web03", behaviour="nothing")]
    summary = run_playbook(StubPlaybook("t", [StubStep(STREAM_ID)]), hosts, out_dir=tmp_path / "run", params={},
                           catalog={STREAM_ID: STREAM}, transport_factory=StoppedMidStream)
    by_name = {h.host: h for h in summary.hosts}
    for name in ("web01", "web02", "web03"):
        (step,) = by_name[name].steps
        assert step.status == "failed" and step.error.category == "timeout"  # the step still says it timed out
    run = load_run(tmp_path / "run")
    kept = run.hosts["web01"].envelopes[STREAM_ID]
    assert [f["path"] for f in kept["data"]["files"]] == ["a.log", "b.log"]
    assert [(e["probe"], e["category"]) for e in kept["errors"]] == [("parts", "timeout")]
    assert run.hosts["web02"].envelopes == {} and run.hosts["web03"].envelopes == {}
