"""The worker side: one Celery task per host, run with the worker's own inventory and credentials.

The task message names the run, the host, the playbook (its YAML text) and parameters, the run's
deadline and where to deliver evidence. It never carries a credential: the worker finds the host in the
inventory it was started with (``iisfleet worker -i``) and resolves that inventory's credential
references itself (environment variables, keyring, a prompt at start-up), exactly as `iisfleet run`
does on one machine. The host's steps then run through the same code as a local run
(``toolkit.runner.run_one_host``); envelopes go to the controller over HTTP(S), and the task's result is
the small host document plus the host's log events.

A host whose worker died is delivered again once (the broker's redelivery of an unacknowledged task); a
third delivery is answered with a failed host instead of a third try. A run the controller stopped
(Ctrl-C, deadline) answers its remaining hosts as skipped.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from toolkit.distributed.app import TASK_NAME, make_app, queue_for_zone, zone_of
from toolkit.distributed.artifacts import upload_envelope
from toolkit.distributed.objectstore import store_envelope
from toolkit.errors import HostError
from toolkit.models import HostConfig, HostResult, StepError, StepResult
from toolkit.rundir import host_document, utc_now
from toolkit.secrets import redact

#: A host delivered more often than this (its workers died each time) is answered as failed.
MAX_DELIVERIES = 2
_KEY_TTL_S = 86400


def attempts_key(run_id: str, host: str) -> str:
    return f"iisfleet:attempts:{run_id}:{host}"


def stop_key(run_id: str) -> str:
    return f"iisfleet:stop:{run_id}"


class _RemoteWriter:
    """Stands in for ``RunDirWriter`` on a worker: envelopes go to the controller (or to the artifact store,
    their references then travel with the result), the rest is returned."""

    def __init__(self, payload: dict[str, Any], cafile: str | None, store: Any = None, delivery: int = 1) -> None:
        self.payload = payload
        self.cafile = cafile
        self.store, self.delivery = store, delivery
        self.events: list[dict[str, Any]] = []
        self.document: dict[str, Any] | None = None
        self.stored: list[dict[str, Any]] = []

    def write_envelope(self, host: str, collector_id: str, envelope: dict[str, Any]) -> None:
        p = self.payload
        if p.get("delivery") == "store":
            if self.store is None:
                raise HostError("the controller expects evidence in the artifact store, but this worker's inventory "
                                "has no artifact_store:", host=host, category="config", collector=collector_id,
                                explanation="give the worker the same artifact_store: section as the controller")
            self.stored.append(store_envelope(self.store, p["run"], host, self.delivery, collector_id, envelope))
            return
        upload_envelope(p["artifact_url"], p["token"], p["run"], host, collector_id, envelope, cafile=self.cafile)

    def write_host(self, result: HostResult, *, finished: bool) -> None:
        self.document = host_document(result, finished=finished)

    def log(self, event: str, **fields: Any) -> None:
        record: dict[str, Any] = {"time_utc": utc_now(), "event": event}
        for key, value in fields.items():
            record[key] = redact(value) if isinstance(value, str) else value
        self.events.append(record)


class WorkerState:
    """What one worker process knows: its zone, its inventory's hosts, prepared playbooks per run."""

    def __init__(self, zone: str, hosts: list[HostConfig], *, cafile: str | None = None, catalog: Any = None,
                 store: Any = None) -> None:
        self.zone = zone
        self.store = store  # ObjectStore from this worker's inventory (artifact_store:), or None
        self.hosts = {h.name: h for h in hosts}
        self.cafile = cafile
        self.catalog = catalog
        self._steps: dict[str, Any] = {}
        self._lock = threading.Lock()

    def steps_for(self, payload: dict[str, Any]) -> Any:
        from toolkit.playbooks import parse_playbook
        from toolkit.runner import prepare_steps

        with self._lock:
            if payload["run"] not in self._steps:
                if self.catalog is None:
                    from toolkit.collectors import load_catalog

                    self.catalog = load_catalog()
                playbook = parse_playbook(payload["playbook_text"], payload["playbook_path"])
                self._steps[payload["run"]] = prepare_steps(playbook, payload["params"], self.catalog)
            return self._steps[payload["run"]]

    def serves(self, host: HostConfig) -> bool:
        return zone_of(host) == self.zone


def _failed(payload: dict[str, Any], host: HostConfig | None, category: str, message: str,
            explanation: str, status: str = "failed") -> dict[str, Any]:
    result = HostResult(host=payload["host"], address=host.address if host else "",
                        transport=host.transport if host else "winrm", status=status,  # type: ignore[arg-type]
                        error=StepError(category=category, message=message, explanation=explanation)  # type: ignore[arg-type]
                        if status == "failed" else None)
    event = {"time_utc": utc_now(), "event": "host_finished", "host": payload["host"], "status": status,
             "duration_s": 0.0, "category": category if status == "failed" else None}
    return {"host": host_document(result, finished=True), "events": [event]}


def run_host_payload(state: WorkerState, payload: dict[str, Any], *, deliveries: int = 1,
                     stopped: bool = False) -> dict[str, Any]:
    """The work of one task (separate from Celery so that it can be read and tested on its own)."""
    from toolkit.runner import run_one_host

    host = state.hosts.get(payload["host"])
    if host is None:
        return _failed(payload, None, "config", f"host {payload['host']!r} is not in this worker's inventory",
                       f"give the workers of zone {state.zone!r} an inventory that lists it")
    if not state.serves(host):
        return _failed(payload, host, "config", f"host {host.name!r} is in zone {zone_of(host)!r}, not in this "
                       f"worker's zone {state.zone!r}", "the controller's and the worker's inventories disagree on "
                       "the host's zone")
    if deliveries > MAX_DELIVERIES:
        return _failed(payload, host, "protocol", f"the workers working on this host stopped {deliveries - 1} times "
                       "(killed or out of memory); it was not tried again",
                       "check the workers' logs and memory; run the host alone with `iisfleet run --limit`")
    if stopped:  # the same record as a local run's host that an interrupt kept from starting
        reason = "the run was interrupted before this host started"
        result = HostResult(host=host.name, address=host.address, transport=host.transport, status="skipped",
                            steps=[StepResult(collector=p.collector.id, status="skipped", skipped_reason=reason)
                                   for p in state.steps_for(payload)])
        writer = _RemoteWriter(payload, state.cafile)
        writer.log("host_skipped", host=host.name, reason=reason)
        return {"host": host_document(result, finished=True), "events": writer.events}
    steps = state.steps_for(payload)
    deadline = None
    if payload.get("deadline_epoch") is not None:
        deadline = time.monotonic() + (float(payload["deadline_epoch"]) - time.time())
    writer = _RemoteWriter(payload, state.cafile, state.store, deliveries)
    result = run_one_host(host, steps, writer, deadline=deadline)
    document = writer.document or host_document(result, finished=True)
    return {"host": document, "events": writer.events, "artifacts": writer.stored}


def register_task(app: Any, state: WorkerState) -> Any:
    """The Celery task (name ``iisfleet.run_host``) bound to this worker's state."""

    @app.task(name=TASK_NAME, bind=True)
    def run_host(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
        client = getattr(app.backend, "client", None)  # Redis: delivery counter and the run's stop flag
        deliveries, stopped = 1, False
        if client is not None:
            key = attempts_key(payload["run"], payload["host"])
            deliveries = int(client.incr(key))
            client.expire(key, _KEY_TTL_S)
            stopped = bool(client.exists(stop_key(payload["run"])))
        return run_host_payload(state, payload, deliveries=deliveries, stopped=stopped)

    return run_host


def serve(zone: str, hosts: list[HostConfig], *, broker: str, concurrency: int = 8,
          visibility_timeout: float, restore_interval: float = 10.0, cafile: str | None = None,
          name: str | None = None, store: Any = None) -> None:
    """Run a Celery worker (thread pool) on the zone's queue until it is stopped (SIGTERM/SIGINT: warm
    shutdown, running hosts finish)."""
    app = make_app(broker, visibility_timeout=visibility_timeout, restore_interval=restore_interval)
    state = WorkerState(zone, [h for h in hosts if zone_of(h) == zone], cafile=cafile, store=store)
    register_task(app, state)
    node = name or f"iisfleet-{zone}-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(["worker", "--queues", queue_for_zone(zone), "--pool", "threads", "--concurrency",
                     str(concurrency), "--loglevel", "WARNING", "--hostname", node, "--without-gossip",
                     "--without-mingle", "--without-heartbeat"])
