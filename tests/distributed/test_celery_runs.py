"""Distributed runs with real parts: redis-server, `iisfleet worker` processes, a lab fleet over WinRM.

1. A run split over two zones gives the same run directory and report (but for times) as a local run.
2. A worker SIGKILLed mid-run loses no host: its hosts are delivered again and finish once.
3. A broker that dies mid-run ends the run with a clear error and a partial run that still reports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery_fleet import BUDGET, events
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.lab.broker import REPO, start_worker, stop_process

VISIBILITY = BUDGET + 5
_TIMES = {"time_utc", "utc_now", "duration_s", "started_utc", "finished_utc", "modified_utc", "offset_s"}
#: Times inside text: ISO instants, instants to the minute ("NotAfter 2026-11-29 03:01Z is before
#: 2026-12-05 03:03Z": each run judges certificates as of its own time, so two runs a minute apart differ),
#: days until such an instant, and a clock offset in seconds (each host's clock is read when its turn
#: comes, so the offset from the fleet median moves by the seconds between two hosts' turns).
_TIME_TEXT = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?Z|\b\d+(\.\d+)? days\b|[+-]?\d+ s(econds)?\b")


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    if isinstance(value, str):
        return _TIME_TEXT.sub("<time>", value)
    return value


def _tree(run_dir: Path) -> dict[str, Any]:
    """Every file of a run directory, JSON parsed and times dropped (log.jsonl as a multiset of events)."""
    tree: dict[str, Any] = {}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(run_dir))
        if name == "log.jsonl":
            tree[name] = Counter(json.dumps(_without_times(e), sort_keys=True) for e in events(run_dir))
        elif name == "manifest.json" or name.startswith("manifests/"):
            # the seal (run and host manifests): digests of the files compared here, whose times differ
            manifest = json.loads(path.read_text(encoding="utf-8"))
            manifest["files"] = sorted(item["path"] for item in manifest["files"])
            tree[name] = _without_times(manifest)
        elif path.suffix == ".json":
            tree[name] = _without_times(json.loads(path.read_text(encoding="utf-8")))
        else:
            tree[name] = path.stat().st_size > 0
    return tree


def assert_same_run(local: Any, remote: Any, local_dir: Path, remote_dir: Path) -> None:
    """Same exit code, and the same run directory file by file (but for times)."""
    assert remote.exit_code == local.exit_code, remote.output
    local_tree, remote_tree = _tree(local_dir), _tree(remote_dir)
    assert sorted(remote_tree) == sorted(local_tree)
    for name in local_tree:
        assert remote_tree[name] == local_tree[name], name


def _run_cli(*args: str) -> Any:
    env = {"IISFLEET_HISTORY": "off"}
    return CliRunner().invoke(app, list(args), env=env)


def test_two_zones_give_the_run_directory_of_a_local_run(zoned_lab, redis_server, tmp_path: Path) -> None:
    inventory, zones = zoned_lab
    workers = [start_worker(zone, inventory, redis_server.url, visibility=VISIBILITY, log=tmp_path / f"{zone}.log")
               for zone in ("dmz", "branch")]
    try:
        local = _run_cli("run", "triage-401", "-i", str(inventory), "--out", str(tmp_path / "local"))
        remote = _run_cli("run", "triage-401", "-i", str(inventory), "--out", str(tmp_path / "celery"),
                          "--engine", "celery", "--broker", redis_server.url, "--visibility-timeout", str(VISIBILITY))
    finally:
        for worker in workers:
            stop_process(worker)
    assert_same_run(local, remote, tmp_path / "local", tmp_path / "celery")
    report = json.loads((tmp_path / "celery" / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["findings"] and report["summary"]["hosts_ok"] == len(zones)
    # both zones did work: every host's task went to its own zone's worker
    logs = {zone: (tmp_path / f"{zone}.log").read_text(errors="replace") for zone in ("dmz", "branch")}
    assert all("Traceback" not in text for text in logs.values()), logs


def _controller(inventory: Path, out: Path, broker: str, *extra: str, visibility: float = VISIBILITY) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", "triage-401", "-i", str(inventory), "--out", str(out),
         "--engine", "celery", "--broker", broker, "--visibility-timeout", str(visibility), *extra],
        cwd=inventory.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "IISFLEET_HISTORY": "off"})


def _wait_for_finished_hosts(run_dir: Path, count: int, process: subprocess.Popen) -> None:
    """Until ``count`` hosts finished (or the controller ended); pytest's timeout guards against a hang."""
    while sum(1 for e in events(run_dir) if e.get("event") == "host_finished") < count:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


#: The kill test's host budget and visibility timeout: far above what a host takes even on a loaded machine,
#: so no live host is ever delivered twice; the dead worker's hosts are made visible by the test instead.
KILL_BUDGET, KILL_VISIBILITY = 600.0, 900.0
_RESULT_PREFIX = b"celery-task-meta-"
#: How long the kill test waits for the run once the survivor is up: its hosts take seconds, a lost task is
#: published again within 20 s of its queue draining (toolkit.distributed.lost).
KILL_WAIT_S = 300.0


def _broker_state(client: Any, zone: str) -> str:
    """What the broker holds for a zone, to explain a run that did not end: queued and unacknowledged task
    ids, delivery counters, stored results, kombu's restore lock."""
    def task_id(raw: bytes, unacked: bool) -> str:
        message = json.loads(raw)
        return (message[0] if unacked else message)["headers"]["id"]

    queued = [task_id(raw, False) for raw in client.lrange(f"iisfleet.{zone}", 0, -1)]
    unacked = {tag.decode(): (task_id(raw, True), client.zscore("unacked_index", tag))
               for tag, raw in client.hgetall("unacked").items()}
    attempts = {key.decode(): client.get(key) for key in client.keys("iisfleet:attempts:*")}
    results = sorted(key.decode() for key in client.keys(_RESULT_PREFIX + b"*"))
    return (f"queued {queued}\nunacked {unacked}\nattempts {attempts}\nresults {results}\n"
            f"unacked_mutex {client.get('unacked_mutex')!r}")


def _held_and_done(client: Any) -> tuple[set[str], set[str]]:
    """Hosts a worker started (its delivery counter exists) without a stored result, and hosts with one."""
    held, done = set(), set()
    for key in client.keys("iisfleet:attempts:*"):
        task_id = key.removeprefix(b"iisfleet:attempts:")
        host = task_id.decode().rsplit(":", 1)[1]
        (done if client.exists(_RESULT_PREFIX + task_id) else held).add(host)
    return held, done


def _stop_while_holding_hosts(worker: subprocess.Popen, client: Any, controller: subprocess.Popen) -> set[str]:
    """SIGSTOP the worker at a moment it holds a started host and another host is done; SIGKILL it there.
    Returns the hosts it held. Waits on the broker's state, not on a clock."""
    while True:
        assert controller.poll() is None, controller.communicate()
        assert worker.poll() is None, "the worker exited by itself"
        held, done = _held_and_done(client)
        if held and done:
            worker.send_signal(signal.SIGSTOP)  # frozen: what it holds cannot change any more
            held, done = _held_and_done(client)
            if held and done:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                return held
            worker.send_signal(signal.SIGCONT)
        time.sleep(0.02)


@pytest.mark.timeout(900)  # a hang guard for a loaded machine, not a budget the test relies on
def test_a_killed_worker_loses_no_host(zoned_lab, redis_server, tmp_path: Path) -> None:
    """A worker SIGKILLed while it holds started hosts: another worker of the zone gets them (the broker's
    redelivery of unacknowledged messages), each host finishes exactly once and ok.

    The visibility timeout is the time after which the broker gives a held host to another worker; waiting
    for it would make the test as slow as the timeout, and a short one makes slow live hosts run twice on a
    loaded machine. So the timeout is long and, once the worker is dead, the test ages the broker's
    unacknowledged-message index (the delivery times the timeout is measured from) as if it had passed: the
    surviving worker's own restore then redelivers the held hosts. The kill may also fall between the worker
    taking its next host off the queue and recording it (kombu's BRPOP, then the unacked hash): the broker has
    lost that host, and the controller publishes it again (tests/distributed/test_lost_tasks.py); it then runs
    once, so the test checks only that the held hosts ran twice."""
    inventory, zones = zoned_lab
    zone = "dmz"
    hosts = sorted(name for name, z in zones.items() if z == zone)
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    document["defaults"]["time_budget"] = KILL_BUDGET
    inventory = inventory.with_name("kill-inventory.yml")
    inventory.write_text(yaml.safe_dump(document), encoding="utf-8")
    client = redis_server.client
    doomed = start_worker(zone, inventory, redis_server.url, visibility=KILL_VISIBILITY, concurrency=3,
                          log=tmp_path / "doomed.log")
    survivor = None
    out = tmp_path / "run"
    controller = _controller(inventory, out, redis_server.url, "--limit", ",".join(hosts),
                             visibility=KILL_VISIBILITY)
    try:
        held = _stop_while_holding_hosts(doomed, client, controller)
        unacked = client.zrange("unacked_index", 0, -1)
        assert unacked, "the dead worker's hosts are unacknowledged in the broker"
        client.zadd("unacked_index", {tag: 0 for tag in unacked})  # delivered "long ago": visible again
        # A worker frozen inside its own restore sweep dies holding kombu's restore lock, which expires only
        # after 300 s; until then no other worker restores anything. Let it have expired too.
        client.delete("unacked_mutex")
        survivor = start_worker(zone, inventory, redis_server.url, visibility=KILL_VISIBILITY, concurrency=3,
                                log=tmp_path / "survivor.log")
        try:
            stdout, stderr = controller.communicate(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not end {KILL_WAIT_S:g} s after the survivor started; held {sorted(held)}\n"
                        f"{_broker_state(client, zone)}\nsurvivor's log:\n"
                        f"{(tmp_path / 'survivor.log').read_text(errors='replace')[-3000:]}")
    finally:
        stop_process(controller, signal.SIGKILL)
        stop_process(doomed, signal.SIGKILL)
        if survivor is not None:
            stop_process(survivor)
    assert controller.returncode == 0, (controller.returncode, stdout[-3000:], stderr[-3000:])
    finished = Counter(e["host"] for e in events(out) if e.get("event") == "host_finished")
    assert finished == Counter(hosts), "every host finishes exactly once"
    for name in hosts:
        document = json.loads((out / "hosts" / name / "host.json").read_text(encoding="utf-8"))
        assert document["status"] == "ok", (name, document["error"])
    deliveries = {key.decode().rsplit(":", 1)[1]: int(client.get(key)) for key in client.keys("iisfleet:attempts:*")}
    assert set(deliveries) == set(hosts)
    assert all(deliveries[name] == 2 for name in held), f"held {held}, deliveries {deliveries}"
    assert max(deliveries.values()) == 2, "no host was delivered a third time"
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["status"] == "complete"


def test_a_broker_outage_ends_with_a_clear_error_and_a_reportable_run(zoned_lab, redis_server, tmp_path: Path) -> None:
    inventory, zones = zoned_lab
    worker = start_worker("dmz", inventory, redis_server.url, visibility=VISIBILITY, concurrency=1,
                          log=tmp_path / "worker.log")
    out = tmp_path / "run"
    controller = _controller(inventory, out, redis_server.url, "--broker-grace", "3",
                             "--limit", ",".join(n for n, z in zones.items() if z == "dmz"))
    try:
        _wait_for_finished_hosts(out, 1, controller)
        redis_server.kill()
        stdout, stderr = controller.communicate(timeout=120)
    finally:
        stop_process(controller, signal.SIGKILL)
        stop_process(worker, signal.SIGKILL)
    assert controller.returncode == 3, (controller.returncode, stdout[-3000:], stderr[-3000:])
    text = " ".join(stderr.split())
    assert "became unreachable" in text and "iisfleet report" in text, stderr
    assert "Traceback" not in stderr
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["status"] == "interrupted"
    statuses = {}
    for name in run["hosts"]:
        document = json.loads((out / "hosts" / name / "host.json").read_text(encoding="utf-8"))
        statuses[name] = document["status"]
        if document["status"] == "failed":
            assert document["error"]["category"] == "connect" and "broker" in document["error"]["message"]
    assert "ok" in statuses.values() and "failed" in statuses.values(), statuses
    report = CliRunner().invoke(app, ["report", str(out), "--format", "json"])
    assert report.exit_code in (1, 3), report.output
    assert json.loads(report.stdout)["summary"]["hosts_failed"] >= 1
