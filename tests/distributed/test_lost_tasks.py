"""Tasks the Redis broker lost (taken off the queue by a worker that died before recording them).

Against a real redis-server: the broker state is planted in kombu's own layout (the zone's queue list,
the ``unacked`` hash of ``[message, exchange, routing key]``, Celery's result keys), then the end-to-end
case with real workers: a message taken off the queue and dropped, as a worker SIGKILLed between its
``BRPOP`` and recording the message would drop it.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest
from celery_fleet import events
from test_celery_runs import _controller

from toolkit.distributed.app import queue_for_zone
from toolkit.distributed.lost import UNACKED_KEY, LostTaskWatch, missing_tasks
from toolkit.lab.broker import start_worker, stop_process

RESULT_PREFIX = "celery-task-meta-"


def _message(task_id: str) -> bytes:
    return json.dumps([{"headers": {"id": task_id}, "body": "", "properties": {}}, "", "iisfleet.dmz"]).encode()


def _result_key(task_id: str) -> str:
    return RESULT_PREFIX + task_id


def test_a_task_in_no_queue_not_held_and_without_result_is_missing(redis_server) -> None:
    client = redis_server.client
    client.hset(UNACKED_KEY, "tag-1", _message("run:web03"))  # held by a worker
    client.set(_result_key("run:web05"), "{}")  # done
    client.hset(UNACKED_KEY, "tag-2", b"not json")  # another application's entry: ignored
    queue_of = {"run:web01": "iisfleet.dmz", "run:web03": "iisfleet.dmz", "run:web05": "iisfleet.dmz"}
    assert missing_tasks(client, queue_of, _result_key) == {"run:web01"}


def test_tasks_of_a_zone_whose_queue_still_holds_messages_are_not_judged(redis_server) -> None:
    client = redis_server.client
    client.lpush("iisfleet.branch", _message("run:web02"))
    queue_of = {"run:web01": "iisfleet.dmz", "run:web04": "iisfleet.branch"}
    assert missing_tasks(client, queue_of, _result_key) == {"run:web01"}


def test_a_task_is_lost_only_when_missing_in_every_check_for_the_confirmation_time() -> None:
    watch = LostTaskWatch(confirm_s=10.0)
    assert watch.observe(0.0, {"a", "b"}) == []
    assert watch.observe(5.0, {"a"}) == []  # b reappeared (it was in flight): its clock restarts
    assert watch.observe(9.0, {"a", "b"}) == []
    assert watch.observe(10.0, {"a", "b"}) == ["a"]
    assert watch.observe(19.0, {"a", "b"}) == ["b"]  # b missing since 9.0
    # a was reported (and published again) at 10.0: missing from 19.0 on, it is lost again 10 s later
    assert watch.observe(28.0, {"a"}) == []
    assert watch.observe(29.0, {"a"}) == ["a"]


@pytest.mark.timeout(300)  # a hang guard for a loaded machine
def test_a_task_taken_off_the_queue_and_dropped_is_published_again(zoned_lab, redis_server, tmp_path: Path) -> None:
    inventory, zones = zoned_lab
    hosts = sorted(name for name, zone in zones.items() if zone == "dmz")
    client = redis_server.client
    worker = start_worker("dmz", inventory, redis_server.url, visibility=3600.0, concurrency=1,
                          log=tmp_path / "worker.log")
    out = tmp_path / "run"
    controller = _controller(inventory, out, redis_server.url, "--limit", ",".join(hosts), visibility=3600.0)
    try:
        dropped = None
        while dropped is None:  # the worker holds one host (prefetch 1): take the next one as a dying worker would
            assert controller.poll() is None, controller.communicate()
            if client.llen(queue_for_zone("dmz")) >= 2:
                dropped = json.loads(client.rpop(queue_for_zone("dmz")))["headers"]["id"].rsplit(":", 1)[1]
        stdout, stderr = controller.communicate(timeout=240)
    finally:
        stop_process(controller, signal.SIGKILL)
        stop_process(worker, signal.SIGKILL)
    assert controller.returncode == 0, (controller.returncode, stdout[-3000:], stderr[-3000:])
    log = events(out)
    assert [e["host"] for e in log if e.get("event") == "task_lost"] == [dropped]
    assert Counter(e["host"] for e in log if e.get("event") == "host_finished") == Counter(hosts)
    for name in hosts:
        assert json.loads((out / "hosts" / name / "host.json").read_text(encoding="utf-8"))["status"] == "ok"
    deliveries = {key.decode().rsplit(":", 1)[1]: int(client.get(key)) for key in client.keys("iisfleet:attempts:*")}
    assert deliveries == {name: 1 for name in hosts}, "the dropped host ran once, like every other"
