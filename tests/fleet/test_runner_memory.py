"""Runner logic against an in-memory transport: ordering, failures as results, interrupts, deadline."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from toolkit.collectors import Collector
from toolkit.errors import ConfigError
from toolkit.models import Credential, HostConfig, ScriptOutput
from toolkit.rundir import load_run
from toolkit.runner import RunHooks, run_playbook
from toolkit.secrets import Secret

from fleet_helpers import ECHO_ID, MemoryTransport, StubPlaybook, StubStep, memory_host


def test_each_host_failure_is_a_result_and_the_rest_complete(tmp_path: Path, catalog) -> None:
    hosts = [memory_host("web01"), memory_host("web02", behaviour="refused"), memory_host("web03", behaviour="garbage"),
             memory_host("web04", behaviour="script-error"), memory_host("web05", delay=2.0), memory_host("web06")]
    playbook = StubPlaybook("t", [StubStep(ECHO_ID, {"Message": "$msg"}, timeout=0.3),
                                  StubStep(ECHO_ID, {"Count": 2})], defaults={"msg": "hi"})
    summary = run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, concurrency=4,
                           catalog=catalog, transport_factory=MemoryTransport)
    by_name = {h.host: h for h in summary.hosts}
    assert summary.status == "complete"
    assert by_name["web01"].status == "ok" and by_name["web06"].status == "ok"
    assert by_name["web02"].status == "failed" and by_name["web02"].error.category == "connect"
    assert [s.status for s in by_name["web02"].steps] == ["skipped", "skipped"]
    assert by_name["web03"].error.category == "contract"
    assert by_name["web04"].error.category == "script" and "Cannot find path" in by_name["web04"].error.message
    # the slow host timed out on the first step but its second step ran
    assert by_name["web05"].steps[0].error.category == "timeout"
    assert by_name["web05"].status == "partial"

    run = load_run(tmp_path / "run")
    assert run.status == "complete"
    assert run.meta["parameters"] == {"msg": "hi"}
    assert set(run.hosts) == {f"web0{i}" for i in range(1, 7)}
    assert run.hosts["web01"].envelopes[ECHO_ID]["data"] == {"message": "hello", "count": 2}  # the later step wins
    assert run.hosts["web02"].error["category"] == "connect"
    assert run.hosts["web02"].envelopes == {}
    events = [e["event"] for e in run.events]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert events.count("host_finished") == 6


def test_unknown_collector_fails_before_any_host(tmp_path: Path, catalog) -> None:
    playbook = StubPlaybook("t", [StubStep("Get-Nope")])
    with pytest.raises(ConfigError, match="Get-Nope"):
        run_playbook(playbook, [memory_host("web01")], out_dir=tmp_path / "run", params={}, catalog=catalog,
                     transport_factory=MemoryTransport)
    assert not (tmp_path / "run").exists()


def test_bad_collector_parameter_fails_before_any_host(tmp_path: Path, catalog) -> None:
    playbook = StubPlaybook("t", [StubStep(ECHO_ID, {"Count": "many"})])
    with pytest.raises(ConfigError, match="Count"):
        run_playbook(playbook, [memory_host("web01")], out_dir=tmp_path / "run", params={}, catalog=catalog,
                     transport_factory=MemoryTransport)


def test_when_sees_facts_of_earlier_steps(tmp_path: Path, catalog, monkeypatch) -> None:
    import toolkit.runner as runner

    monkeypatch.setattr(runner, "_facts_from_envelope", lambda cid, env: {"count": env["data"]["count"]})
    seen: list[dict] = []

    def only_if_count_is_two(facts):
        seen.append(dict(facts))
        return (facts[ECHO_ID]["count"] == 2, "count was not 2")

    playbook = StubPlaybook("t", [StubStep(ECHO_ID, {"Count": "$n"}), StubStep(ECHO_ID, {}, when=only_if_count_is_two)])
    summary = run_playbook(playbook, [memory_host("web01")], out_dir=tmp_path / "a", params={"n": 3},
                           catalog=catalog, transport_factory=MemoryTransport)
    assert summary.hosts[0].steps[1].status == "skipped"
    assert summary.hosts[0].steps[1].skipped_reason == "count was not 2"
    assert summary.hosts[0].status == "ok"
    assert seen == [{ECHO_ID: {"count": 3}}]


def test_stop_event_starts_no_new_host_and_keeps_what_was_collected(tmp_path: Path, catalog) -> None:
    stop = threading.Event()

    class StopAfterFirst(RunHooks):
        def host_finished(self, result):
            stop.set()

    hosts = [memory_host(f"web{i:02}", delay=0.05) for i in range(1, 9)]
    summary = run_playbook(StubPlaybook("t", [StubStep(ECHO_ID)]), hosts, out_dir=tmp_path / "run", params={},
                           concurrency=1, hooks=StopAfterFirst(), catalog=catalog, transport_factory=MemoryTransport,
                           stop=stop)
    assert summary.status == "interrupted"
    statuses = [h.status for h in summary.hosts]
    assert statuses[0] == "ok"
    assert statuses.count("skipped") >= 5  # at most one more host was already queued in the worker
    run = load_run(tmp_path / "run")
    assert run.status == "interrupted"
    assert run.hosts["web01"].envelopes[ECHO_ID]["collector"] == ECHO_ID
    assert run.hosts["web08"].status == "skipped"


def test_deadline_skips_hosts_not_started(tmp_path: Path, catalog) -> None:
    hosts = [memory_host(f"web{i:02}", delay=0.4) for i in range(1, 6)]
    summary = run_playbook(StubPlaybook("t", [StubStep(ECHO_ID)]), hosts, out_dir=tmp_path / "run", params={},
                           concurrency=1, deadline_s=0.6, catalog=catalog, transport_factory=MemoryTransport)
    assert summary.status == "deadline"
    assert summary.hosts[0].status == "ok"
    assert summary.hosts[-1].status == "skipped"
    assert "deadline" in summary.hosts[-1].steps[0].skipped_reason
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "deadline"


def test_report_flag_without_report_module_is_logged(tmp_path: Path, catalog, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "toolkit.report", None)  # makes `from toolkit.report import ...` fail
    summary = run_playbook(StubPlaybook("t", [StubStep(ECHO_ID)], report=True), [memory_host("web01")],
                           out_dir=tmp_path / "run", params={}, catalog=catalog, transport_factory=MemoryTransport)
    run = load_run(tmp_path / "run")
    assert summary.report_written is False
    assert any(e["event"] == "warning" and "write_reports" in e["message"] for e in run.events)


def test_report_flag_writes_the_report_into_the_run_directory(tmp_path: Path, catalog) -> None:
    summary = run_playbook(StubPlaybook("t", [StubStep(ECHO_ID)], report=True), [memory_host("web01")],
                           out_dir=tmp_path / "run", params={}, catalog=catalog, transport_factory=MemoryTransport)
    assert summary.report_written is True
    from toolkit.report import FILE_NAMES

    assert sorted(p.name for p in (tmp_path / "run" / "report").iterdir()) == sorted(FILE_NAMES.values())


def test_hooks_see_every_host_once_even_when_iisfleet_itself_fails(tmp_path: Path, catalog) -> None:
    seen: dict[str, list[str]] = {"started": [], "finished": []}

    class Recorder(RunHooks):
        def host_started(self, host):
            seen["started"].append(host.name)

        def host_finished(self, result):
            seen["finished"].append(result.host)

    def factory(host):
        if host.name == "boom":
            raise RuntimeError("a bug in a transport factory")
        return MemoryTransport(host)

    hosts = [memory_host("web01"), memory_host("boom"), memory_host("web02")]
    summary = run_playbook(StubPlaybook("t", [StubStep(ECHO_ID)]), hosts, out_dir=tmp_path / "run", params={},
                           hooks=Recorder(), catalog=catalog, transport_factory=factory)
    assert sorted(seen["finished"]) == ["boom", "web01", "web02"]
    assert sorted(seen["started"]) == ["boom", "web01", "web02"]
    by_name = {h.host: h for h in summary.hosts}
    assert by_name["boom"].status == "failed" and by_name["boom"].error.category == "protocol"
    assert by_name["web01"].status == by_name["web02"].status == "ok"


def test_an_existing_run_directory_is_never_mixed(tmp_path: Path, catalog) -> None:
    from toolkit.errors import UsageError

    playbook = StubPlaybook("t", [StubStep(ECHO_ID)])
    run_playbook(playbook, [memory_host("web01")], out_dir=tmp_path / "run", params={}, catalog=catalog,
                 transport_factory=MemoryTransport)
    before = (tmp_path / "run" / "run.json").read_text()
    with pytest.raises(UsageError, match="already holds a run"):
        run_playbook(playbook, [memory_host("web02")], out_dir=tmp_path / "run", params={}, catalog=catalog,
                     transport_factory=MemoryTransport)
    assert (tmp_path / "run" / "run.json").read_text() == before


_BLOB_ID = "Test-Blob"
_BLOB_COLLECTOR = Collector(
    id=_BLOB_ID, version=1, script=f"# collector-id: {_BLOB_ID}/1\n", parameters=(),
    sidecar={"name": _BLOB_ID, "version": 1,
             "output": {"data": {"file": {"type": "blob"}, "note": {"type": "string"}}}},
)
_QUOTED_PASSWORD = 'Quote"And\\Slash-Passw0rd!'  # JSON-escaped on the wire: a search of stdout misses it


class _FileEchoTransport:
    """Returns one envelope whose ``file`` blob and ``note`` string are set by the host's vars."""

    def __init__(self, host: HostConfig) -> None:
        self.host = host

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float) -> ScriptOutput:
        data: bytes = self.host.vars["file"]
        encoding = self.host.vars["encoding"]
        content = gzip.compress(data) if encoding == "gzip+base64" else data
        envelope = {"schema": "iisfleet.collector/1", "collector": _BLOB_ID, "version": 1, "host": "WEB01",
                    "time_utc": "2026-11-24T21:00:00Z", "errors": [],
                    "data": {"note": self.host.vars.get("note", ""),
                             "file": {"encoding": encoding, "content": base64.b64encode(content).decode(),
                                      "bytes": len(data), "truncated": False}}}
        return ScriptOutput(stdout=json.dumps(envelope))


@pytest.mark.parametrize(
    ("file", "encoding", "note", "leaks"),
    [
        (b'<identity impersonate="true" password="{pw}" />', "gzip+base64", "", True),  # web.config
        ("[Privilege Rights]\r\nX = {pw}\r\n".encode("utf-16-le"), "base64", "", True),  # secedit export
        (b"nothing to see", "base64", "copied from a file: {pw}", True),  # a plain string, JSON-escaped
        (b'<identity impersonate="true" password="[enc:AesProvider:abc:enc]" />', "gzip+base64", "", False),
    ],
    ids=["gzip-utf8-blob", "utf16-blob", "json-escaped-string", "no-secret-is-stored"],
)
def test_a_credential_inside_a_blob_or_escaped_string_never_reaches_the_run_directory(
    tmp_path: Path, file: bytes, encoding: str, note: str, leaks: bool
) -> None:
    pw = _QUOTED_PASSWORD
    file = file.replace(b"{pw}", pw.encode()).replace("{pw}".encode("utf-16-le"), pw.encode("utf-16-le"))
    host = HostConfig(name="web01", address="web01.lab.invalid",
                      credential=Credential(name="ops", username="svc", password=Secret(pw)),
                      vars={"file": file, "encoding": encoding, "note": note.replace("{pw}", pw)})
    summary = run_playbook(StubPlaybook("t", [StubStep(_BLOB_ID)]), [host], out_dir=tmp_path / "run", params={},
                           catalog={_BLOB_ID: _BLOB_COLLECTOR}, transport_factory=_FileEchoTransport)
    stored = load_run(tmp_path / "run").hosts["web01"].envelopes
    if leaks:
        assert stored == {}
        step = summary.hosts[0].steps[0]
        assert step.status == "failed" and step.error.category == "contract"
        assert "contains a credential value" in step.error.message
    else:
        assert list(stored) == [_BLOB_ID] and summary.hosts[0].status == "ok"
    escaped = json.dumps(pw)[1:-1].encode()  # as it would stand in a JSON file
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert pw.encode() not in path.read_bytes() and escaped not in path.read_bytes(), path
