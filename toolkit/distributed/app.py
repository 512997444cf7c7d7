"""The Celery application both sides build from the same settings.

Task settings for a fleet job:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a host's message is acknowledged only when its
  work is done, so a worker that dies mid-host leaves it to be delivered again;
- ``worker_prefetch_multiplier = 1``: a worker holds no more hosts than it is working on (a dead worker
  strands as few hosts as possible);
- ``visibility_timeout`` (Redis): how long an unacknowledged host stays invisible before the broker
  hands it out again. It must exceed the longest host budget, or a slow host would run twice; the
  controller refuses a run where it does not.
- results live one day in the result backend; task ids are ``<run id>:<host>``, so a redelivered host
  writes the same result key (idempotent).
"""

from __future__ import annotations

import os
from typing import Any

from toolkit.models import HostConfig

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
#: How long a worker-held host stays invisible before it is delivered again (seconds).
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
TASK_NAME = "iisfleet.run_host"
QUEUE_PREFIX = "iisfleet."
DEFAULT_ZONE = "default"


def zone_of(host: HostConfig) -> str:
    """A host's zone: its ``zone`` variable (set it in a group's ``vars`` to zone a whole group), else
    ``default``."""
    value = host.vars.get("zone") if isinstance(host.vars, dict) else None
    return str(value).strip() if value not in (None, "") else DEFAULT_ZONE


def queue_for_zone(zone: str) -> str:
    return f"{QUEUE_PREFIX}{zone}"


def broker_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("IISFLEET_BROKER") or DEFAULT_BROKER


def make_app(broker: str, *, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
             restore_interval: float = 10.0) -> Any:
    """A Celery app on ``broker`` (Redis also as result backend; for RabbitMQ set ``IISFLEET_RESULT_BACKEND``)."""
    from celery import Celery

    app = Celery("iisfleet", broker=broker, backend=os.environ.get("IISFLEET_RESULT_BACKEND") or broker)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_track_started=False, result_expires=86400, task_default_queue=queue_for_zone(DEFAULT_ZONE),
        broker_connection_retry_on_startup=True, broker_connection_max_retries=3,
        worker_hijack_root_logger=False, worker_send_task_events=False,
        broker_transport_options={"visibility_timeout": visibility_timeout,
                                  "unacked_restore_interval": restore_interval,
                                  "unacked_restore_throttle": 1},
        result_backend_transport_options={"retry_policy": {"max_retries": 0}},
    )
    return app
