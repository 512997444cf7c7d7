"""Distributed runs on Celery: `iisfleet worker --zone NAME` serves the hosts of one network zone, and
`iisfleet run --engine celery` publishes one task per host and assembles the same run directory as a
local run while results arrive.

- ``app``: the Celery application and the task settings that fit a fleet job (acks late, a redelivery
  after a worker dies, a visibility timeout longer than any host budget).
- ``artifacts``: collector envelopes travel from worker to controller over HTTP(S), checked by SHA-256,
  never through the broker.
- ``controller``: ``CeleryEngine`` for ``toolkit.runner.run_playbook(engine=...)``.
- ``worker``: the task a worker runs for one host (credentials resolved from the worker's own inventory).

Celery is an optional extra (``pip install iisfleet[celery]``); nothing here is imported by local runs.
Docs: docs/distributed.md.
"""

from __future__ import annotations

from toolkit.distributed.app import DEFAULT_BROKER, queue_for_zone, zone_of

__all__ = ["DEFAULT_BROKER", "queue_for_zone", "zone_of"]
