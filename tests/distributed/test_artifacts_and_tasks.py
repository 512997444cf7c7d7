"""The pieces of a distributed run that need no broker: the artifact receiver (real HTTP on loopback) and
the worker's answers for hosts it must not work on."""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from toolkit.distributed.artifacts import ArtifactReceiver, upload_envelope
from toolkit.distributed.worker import MAX_DELIVERIES, WorkerState, run_host_payload
from toolkit.errors import HostError
from toolkit.models import HostConfig
from toolkit.rundir import RunDirWriter

ENVELOPE = {"schema": "iisfleet.collector/1", "collector": "Get-HostFact", "version": 1, "host": "WEB01",
            "time_utc": "2026-12-01T00:00:00Z", "data": {"note": "ünïcode"}, "errors": []}


@pytest.fixture
def receiver(tmp_path: Path):
    writer = RunDirWriter(tmp_path / "run")
    server = ArtifactReceiver("run1", "s3cret-token", ["web01"], ["Get-HostFact"], writer.write_envelope).start()
    try:
        yield server, writer
    finally:
        server.stop()
        writer.close()


def _put(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_envelope_arrives_whole_and_is_written_atomically(receiver) -> None:
    server, writer = receiver
    sent = upload_envelope(server.url, "s3cret-token", "run1", "web01", "Get-HostFact", ENVELOPE)
    stored = json.loads((writer.host_path("web01") / "Get-HostFact.json").read_text(encoding="utf-8"))
    assert stored == ENVELOPE and server.received == 1 and server.received_bytes == sent
    upload_envelope(server.url, "s3cret-token", "run1", "web01", "Get-HostFact", ENVELOPE)  # a redelivery: same file
    assert [p.name for p in writer.host_path("web01").iterdir()] == ["Get-HostFact.json"]


def test_the_receiver_refuses_what_is_not_this_runs_evidence(receiver) -> None:
    server, writer = receiver
    body = json.dumps(ENVELOPE).encode()
    good = {"Authorization": "Bearer s3cret-token", "X-Content-SHA256": hashlib.sha256(body).hexdigest()}
    assert _put(f"{server.url}/run1/web01/Get-HostFact", body, {**good, "Authorization": "Bearer guess"}) == 403
    assert _put(f"{server.url}/run2/web01/Get-HostFact", body, good) == 404
    assert _put(f"{server.url}/run1/web99/Get-HostFact", body, good) == 404
    assert _put(f"{server.url}/run1/web01/Get-Other", body, good) == 404
    assert _put(f"{server.url}/run1/web01/Get-HostFact", body[:-5], good) == 422  # damaged in transit
    assert _put(f"{server.url}/run1/web01/Get-HostFact", gzip.compress(b"[1]"),
                {**good, "Content-Encoding": "gzip", "X-Content-SHA256": hashlib.sha256(b"[1]").hexdigest()}) == 422
    assert not writer.host_path("web01").exists()
    with pytest.raises(HostError) as raised:
        upload_envelope(server.url, "wrong", "run1", "web01", "Get-HostFact", ENVELOPE)
    assert raised.value.category == "connect" and "403" in raised.value.message


def _payload(host: str) -> dict:
    from toolkit.resources import playbooks_dir

    text = playbooks_dir().joinpath("health-sweep.yml").read_text(encoding="utf-8")
    return {"run": "r", "host": host, "playbook_text": text, "playbook_path": "playbooks/health-sweep.yml",
            "params": {}, "artifact_url": "http://127.0.0.1:9", "token": "t"}


def test_a_worker_answers_hosts_it_must_not_work_on_without_contacting_them() -> None:
    dmz = HostConfig(name="web01", address="192.0.2.1", vars={"zone": "dmz"})
    branch = HostConfig(name="web02", address="192.0.2.2", vars={"zone": "branch"})
    state = WorkerState("dmz", [dmz, branch])

    unknown = run_host_payload(state, _payload("web77"))["host"]
    assert (unknown["status"], unknown["error"]["category"]) == ("failed", "config")
    other_zone = run_host_payload(state, _payload("web02"))["host"]
    assert other_zone["error"]["category"] == "config" and "'branch'" in other_zone["error"]["message"]
    third = run_host_payload(state, _payload("web01"), deliveries=MAX_DELIVERIES + 1)["host"]
    assert third["status"] == "failed" and "not tried again" in third["error"]["message"]
    stopped = run_host_payload(state, _payload("web01"), stopped=True)
    assert stopped["host"]["status"] == "skipped" and stopped["events"][0]["event"] == "host_skipped"
    assert stopped["host"]["steps"] and {s["status"] for s in stopped["host"]["steps"]} == {"skipped"}
