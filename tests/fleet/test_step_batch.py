"""Several steps of a host in one WinRM pipeline (``Invoke-IisFleetStepBatch``, issue 17: bytes per host).

Real parts: the lab's WinRM server and host model, the real transport and runner. The batch must change how
many pipelines a host costs, never what a step returns: the same envelopes as one pipeline per step, a
failing step fails alone, a slow step is stopped at its own timeout and the steps after it still run."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from toolkit.collectors import load_catalog
from toolkit.contract import validate_envelope
from toolkit.errors import TransportError
from toolkit.inventory import load_inventory
from toolkit.lab.backend import ScriptAnswer
from toolkit.models import ScriptOutput
from toolkit.transports import create_transport
from toolkit.transports.batch import MARKER, BatchCall, BatchReader


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.scenarios import generate
    from toolkit.lab.server import LabServer

    fleet_dir = tmp_path_factory.mktemp("batch") / "fleet"
    generate("seed-catalog", 6, fleet_dir, seed=0)
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=False) as server:
        inventory = write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path,
                                    fleet_dir / "inventory.yml")
        yield server, load_inventory(Path(inventory)).select(None)


STEPS = (("Get-IisConfig", {"MaxWebConfigDepth": 2}), ("Get-IisSpn", {}), ("Get-LocalUserRight", {}))


def _without_clock(envelope: dict) -> dict:
    return {k: v for k, v in envelope["data"].items() if k != "utc_now"}


def _backend(server, name: str):
    return dict((spec.name, backend) for spec, backend in server.hosts)[name]


def _opened(host):
    transport = create_transport(host)
    transport.open()
    # the loader runs before the first bundled step and defines the functions, the batch's among them
    transport.run_script(load_catalog()["Get-HostFact"].script, {}, timeout=60)
    return transport


def _batch(transport, calls: list[BatchCall]) -> list:
    """Each step's result as ``run_batch`` hands it over (None for a step that got none), checking it
    hands each over once."""
    results: list = [None] * len(calls)

    def arrived(position: int, outcome) -> None:
        assert results[position] is None
        results[position] = outcome

    assert transport.run_batch(calls, arrived) is None
    return results


def test_a_batch_returns_what_each_step_returns_in_its_own_pipeline(served) -> None:
    server, hosts = served
    host, catalog = hosts[0], load_catalog()
    transport = _opened(host)
    try:
        alone = [transport.run_script(catalog[cid].script, params, timeout=60) for cid, params in STEPS]
        assert transport.can_batch([catalog[cid].script for cid, _ in STEPS])
        session = server.sessions(host.name)[-1]
        pipelines_before = len(session.scopes)
        batched = _batch(transport, [BatchCall(catalog[cid].script, params, 60) for cid, params in STEPS])
        pipelines = len(session.scopes) - pipelines_before
    finally:
        transport.close()
    assert pipelines == 1
    for (cid, _), one, many in zip(STEPS, alone, batched):
        assert isinstance(many, ScriptOutput) and not many.errors and not many.had_errors, (cid, many)
        first = validate_envelope(one.stdout, collector=catalog[cid], host=host.name)
        second = validate_envelope(many.stdout, collector=catalog[cid], host=host.name)
        assert _without_clock(first) == _without_clock(second), cid


def test_a_failing_step_fails_alone_and_a_slow_one_is_stopped_at_its_own_timeout(served, monkeypatch) -> None:
    server, hosts = served
    host, catalog = hosts[1], load_catalog()
    backend = _backend(server, host.name)
    original = backend.answer

    def faulty(script: str, parameters: dict) -> ScriptAnswer:
        if "# collector-id: Get-IisSpn/" in script:
            return ScriptAnswer(error="setspn exploded")
        if "# collector-id: Get-IisConfig/" in script:
            return replace(original(script, parameters), delay_s=6.0)
        return original(script, parameters)

    monkeypatch.setattr(backend, "answer", faulty)
    transport = _opened(host)
    try:
        calls = [BatchCall(catalog["Get-IisSpn"].script, {}, 30), BatchCall(catalog["Get-LocalUserRight"].script, {}, 30),
                 BatchCall(catalog["Get-IisConfig"].script, {"MaxWebConfigDepth": 2}, 1.5),
                 BatchCall(catalog["Get-HostFact"].script, {}, 30)]
        failed, rights, slow, never = _batch(transport, calls)
        # the session is still good after the stop: the step that never ran runs on its own
        after = transport.run_script(catalog["Get-HostFact"].script, {}, timeout=60)
    finally:
        transport.close()
    assert isinstance(failed, ScriptOutput) and failed.had_errors and "setspn exploded" in failed.errors[0]
    assert isinstance(rights, ScriptOutput) and not rights.errors
    assert validate_envelope(rights.stdout, collector=catalog["Get-LocalUserRight"], host=host.name)
    assert isinstance(slow, TransportError) and slow.category == "timeout" and "budget" in slow.message
    assert never is None
    assert json.loads(after.stdout)["collector"] == "Get-HostFact"


def _envelopes(run_dir: Path) -> dict:
    from toolkit.rundir import load_run

    run = load_run(run_dir)
    return {(name, cid): _without_clock(envelope) for name, record in run.hosts.items()
            for cid, envelope in record.envelopes.items() if cid != "Get-HostFact"}


def test_a_triage_run_in_batches_equals_one_pipeline_per_step(served, tmp_path) -> None:
    """The same run directory's evidence either way, FREB included where the W3C logs show terminal 401s
    (its ``when`` reads the W3C step's facts, so it waits for them instead of joining the batch)."""
    from toolkit.playbooks import load_playbook
    from toolkit.rundir import load_run
    from toolkit.runner import run_playbook

    server, hosts = served
    playbook = load_playbook("triage-401")
    unbatched = [replace(h, winrm=replace(h.winrm, session_functions=False)) for h in hosts]
    run_playbook(playbook, hosts, out_dir=tmp_path / "batched", params={}, concurrency=6, simulated=True)
    run_playbook(playbook, unbatched, out_dir=tmp_path / "single", params={}, concurrency=6, simulated=True)
    batched, single = _envelopes(tmp_path / "batched"), _envelopes(tmp_path / "single")
    assert batched.keys() == single.keys() and batched == single
    assert any(cid == "Get-IisFailedRequestTrace" for _, cid in batched)
    events = [json.loads(line) for line in (tmp_path / "batched" / "log.jsonl").read_text().splitlines()]
    batches = [e for e in events if e.get("event") == "batch"]
    assert len(batches) == len(hosts) and all(e["steps"] >= 5 for e in batches)
    assert not [e for e in (json.loads(line) for line in (tmp_path / "single" / "log.jsonl").read_text()
                            .splitlines()) if e.get("event") == "batch"]
    for name, record in load_run(tmp_path / "batched").hosts.items():
        assert record.status == load_run(tmp_path / "single").hosts[name].status


def _packed(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode()


def _reader(steps: int = 2, cap: int = 1000) -> BatchReader:
    return BatchReader(steps, max_chars=cap, host="web01")


@pytest.mark.parametrize("line", [
    "plain output", f"{MARKER} begin 0", f"{MARKER} end x ok 5", f"{MARKER} end 9 ok 5", f"{MARKER} end -1 ok 5",
    f"{MARKER} end 0 ok", f"{MARKER} end 0 maybe 5", f"{MARKER} end 0 ok -5", f"{MARKER} end 0 ok 5 not!base64",
    f"{MARKER} out 0 not!base64", f"{MARKER} out 0 {base64.b64encode(b'not gzip').decode()}",
    f"{MARKER} out 0 {_packed('x')[:-8]}", f"{MARKER} out 7 {_packed('x')}", f"{MARKER} out 0",
])
def test_lines_that_are_not_well_formed_batch_lines_are_ignored(line: str) -> None:
    reader = _reader()
    assert reader.feed(line) is None
    assert reader.partial(0) == "" and reader.results == [None, None]


def test_a_steps_objects_and_end_line_make_its_output() -> None:
    reader = _reader()
    error = base64.b64encode("Zugriff verweigert".encode()).decode()
    assert reader.feed(f"{MARKER} out 1 {_packed('part one')}") is None
    second = _packed('{"a":1}')
    assert reader.feed(f"{MARKER} out 1 {second}") is None
    assert reader.partial(1) == 'part one\n{"a":1}'
    decided = reader.feed(f"{MARKER} end 1 failed 1250 {error}")
    assert decided == (1, ScriptOutput(stdout='part one\n{"a":1}', errors=("Zugriff verweigert",), had_errors=True,
                                       duration_s=1.25))
    # a step's result is decided once: a second end line or a late object for it changes nothing
    assert reader.feed(f"{MARKER} end 1 ok 1") is None and reader.feed(f"{MARKER} out 1 {_packed('x')}") is None
    assert reader.results[1] == decided[1]


def test_a_gzip_bomb_stops_at_the_output_cap() -> None:
    bomb = _packed("A" * 5_000_000)
    assert len(bomb) < 20_000
    reader = _reader(1, cap=100_000)
    assert reader.feed(f"{MARKER} out 0 {_packed('B' * 60_000)}") is None
    decided = reader.feed(f"{MARKER} out 0 {bomb}")  # past what is left of the cap
    assert decided is not None and isinstance(decided[1], TransportError)
    assert decided[1].category == "protocol" and decided[1].host == "web01"


def test_a_step_stopped_at_its_timeout_keeps_the_parts_it_had_sent(served, monkeypatch) -> None:
    """A collector that writes its parts as it goes (docs/contracts.md 1.4) and then hangs: the batch stops it
    at its own timeout, and the parts that had arrived come with the timeout, as over its own pipeline."""
    server, hosts = served
    host, catalog = hosts[2], load_catalog()
    backend = _backend(server, host.name)
    original = backend.answer
    parts = ['{"part":1}', '{"part":2}']

    def hangs_after_its_parts(script: str, parameters: dict) -> ScriptAnswer:
        if "# collector-id: Get-IisSpn/" in script:
            return ScriptAnswer(output=list(parts), stall_s=60.0)
        return original(script, parameters)

    monkeypatch.setattr(backend, "answer", hangs_after_its_parts)
    transport = _opened(host)
    try:
        rights, stalled, never = _batch(transport, [
            BatchCall(catalog["Get-LocalUserRight"].script, {}, 30), BatchCall(catalog["Get-IisSpn"].script, {}, 2),
            BatchCall(catalog["Get-HostFact"].script, {}, 30)])
    finally:
        transport.close()
    assert isinstance(rights, ScriptOutput) and not rights.errors
    assert isinstance(stalled, TransportError) and stalled.category == "timeout"
    assert stalled.partial_stdout == "\n".join(parts)
    assert never is None
