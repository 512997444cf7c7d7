"""Host tasks the Redis broker lost, found by the controller so that they can be published again.

Kombu's Redis transport hands a message to a worker in two steps: ``BRPOP`` takes it off the zone's
queue, then the worker records it in the ``unacked`` hash (with its delivery time in ``unacked_index``).
Only a recorded message comes back after the visibility timeout. A worker killed between the two steps
(SIGKILL, the OOM killer, a VM reset; the reply to its ``BRPOP`` may still sit unread in its socket)
takes the message with it: it is in no queue, not unacknowledged, and no result will ever be stored.
Without this check the controller would wait for such a host until its budget plus the visibility
timeout (an hour by default) and then fail it as ``timeout``.

The check, done by the controller every ``CHECK_EVERY_S`` for the hosts it still waits for:

- a task counts as *missing* when its zone's queue is empty, it is not in ``unacked`` (both read in one
  ``MULTI``, so a restore that moves a message from one to the other cannot make it look missing) and it
  has no stored result. ``unacked`` holds whole messages (about 4 KB each, one per host a worker holds),
  so it is read only once some zone's queue is empty;
- a task missing in every check for ``CHECK_EVERY_S`` is *lost*. A live worker records a message
  milliseconds after taking it, so a task that is merely in flight is never missing twice.

While a zone's queue still holds messages its tasks are not judged (reading every queued message to find
one task would cost the whole queue per check); a lost task is found once the queue drains, which is
when its absence starts to matter. A task that is lost is published again with the same id: it has not
started (a started task is in ``unacked`` until its result is stored), so its delivery counter is not
touched and a redelivered host still runs at most twice.

Nothing here applies to RabbitMQ, whose consumer acknowledgements return a dead consumer's messages.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

#: How often the controller looks for lost tasks, and how long a task must stay missing to be lost (s).
CHECK_EVERY_S = 10.0
#: Kombu's Redis transport keeps unacknowledged messages in this hash (its ``unacked_key`` default; the
#: app sets no ``global_keyprefix``).
UNACKED_KEY = "unacked"


def _task_id(raw: Any) -> str | None:
    """The Celery task id of one ``unacked`` entry (``[message, exchange, routing key]`` as JSON)."""
    try:
        message = json.loads(raw)[0]
        return str(message["headers"]["id"])
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def missing_tasks(client: Any, queue_of: Mapping[str, str], result_key: Any) -> set[str]:
    """The task ids of ``queue_of`` (task id -> queue name) that are missing from the broker right now:
    their queue is empty, they are not unacknowledged, and ``result_key(task_id)`` does not exist."""
    queues = sorted(set(queue_of.values()))
    drained = _drained(client, queues)
    if not drained:
        return set()  # the common case while a run is busy: no unacknowledged message is read
    with client.pipeline(transaction=True) as pipe:
        for queue in drained:
            pipe.llen(queue)
        pipe.hvals(UNACKED_KEY)
        replies = pipe.execute()
    drained = [queue for queue, length in zip(drained, replies) if not length]
    held = {_task_id(raw) for raw in replies[-1]}
    candidates = sorted(tid for tid, queue in queue_of.items() if queue in drained and tid not in held)
    if not candidates:
        return set()
    with client.pipeline(transaction=False) as pipe:
        for tid in candidates:
            pipe.exists(result_key(tid))
        stored = pipe.execute()
    return {tid for tid, exists in zip(candidates, stored) if not exists}


def _drained(client: Any, queues: list[str]) -> list[str]:
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue)
        return [queue for queue, length in zip(queues, pipe.execute()) if not length]


class LostTaskWatch:
    """Tells lost tasks from tasks in flight: a task is lost once it was missing in every check for
    ``confirm_s`` seconds."""

    def __init__(self, confirm_s: float = CHECK_EVERY_S) -> None:
        self.confirm_s = confirm_s
        self._missing_since: dict[str, float] = {}

    def observe(self, now: float, missing: Iterable[str]) -> list[str]:
        """Record one check's missing tasks; return those now lost (each once)."""
        self._missing_since = {tid: self._missing_since.get(tid, now) for tid in missing}
        lost = sorted(tid for tid, since in self._missing_since.items() if now - since >= self.confirm_s)
        for tid in lost:
            del self._missing_since[tid]
        return lost
