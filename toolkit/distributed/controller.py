"""The controller side: ``CeleryEngine`` publishes one task per host and assembles the run directory.

``toolkit.runner.run_playbook(..., engine=CeleryEngine(...))`` runs exactly as a local run (same
``run.json``, same per-host files, same log events, same report, same exit codes); only the thread pool
is replaced by ``_CeleryExecutor``, whose futures complete when a host's result arrives:

- each host's task goes to the queue of its zone (``zone_of``) with the id ``<run id>:<host>``;
- envelopes arrive over HTTP(S) at the ``ArtifactReceiver`` and are written as they come;
- a host's result (its host document and log events) is written when it arrives, once: a second result
  for the same host (a redelivery whose first try did finish) is ignored;
- a host whose zone has no worker fails at once, with the zone named; a host whose result does not come
  within its budget plus the visibility timeout (its worker died and no other picked it up) fails as
  ``timeout``;
- Ctrl-C or the deadline sets the run's stop flag in Redis: hosts not yet started come back skipped;
- when the broker stays unreachable for ``broker_grace_s``, every host still out fails with a
  ``connect`` error that names the broker, the run ends as ``interrupted`` and ``failed`` is set; all
  that arrived before stays in the run directory (reportable).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from toolkit import resources
from toolkit.distributed.app import (
    DEFAULT_VISIBILITY_TIMEOUT,
    TASK_NAME,
    broker_url,
    make_app,
    queue_for_zone,
    zone_of,
)
from toolkit.distributed.artifacts import ArtifactReceiver
from toolkit.distributed.lost import CHECK_EVERY_S, LostTaskWatch, missing_tasks
from toolkit.distributed.objectstore import assemble_stored
from toolkit.distributed.worker import stop_key
from toolkit.errors import ConfigError
from toolkit.models import HostConfig, HostResult, StepError, StepResult
from toolkit.rundir import write_json_atomic

log = logging.getLogger(__name__)

_POLL_S = 0.25
#: Even with results pushed, every pending result key is read this often (a message lost in a reconnect).
_SWEEP_S = 5.0


def safe_broker(url: str) -> str:
    """The broker URL as it may be shown: any password masked."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def host_result_from_document(document: dict[str, Any]) -> HostResult:
    def error(value: Any) -> StepError | None:
        if not isinstance(value, dict):
            return None
        return StepError(category=value.get("category") or "protocol", message=str(value.get("message") or ""),
                         explanation=value.get("explanation"))

    steps = [StepResult(collector=str(s.get("collector")), status=s.get("status", "failed"),
                        duration_s=float(s.get("duration_s") or 0.0), error=error(s.get("error")),
                        skipped_reason=s.get("skipped_reason"))
             for s in document.get("steps") or [] if isinstance(s, dict)]
    return HostResult(host=str(document.get("host")), address=str(document.get("address") or ""),
                      transport=document.get("transport") or "winrm", status=document.get("status") or "failed",
                      error=error(document.get("error")), steps=steps,
                      duration_s=float(document.get("duration_s") or 0.0))


def _key_prefix(backend: Any) -> str:
    """The result backend's key (and channel) prefix, ``celery-task-meta-`` for Redis."""
    prefix = getattr(backend, "task_keyprefix", "")
    return prefix.decode() if isinstance(prefix, bytes) else str(prefix)


def _playbook_text(playbook: Any) -> tuple[str, str]:
    """The playbook's YAML as the workers parse it, and the path its messages name."""
    path = Path(str(getattr(playbook, "path", "") or ""))
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    bundled = resources.playbooks_dir().joinpath(f"{playbook.name}.yml")
    return bundled.read_text(encoding="utf-8"), f"playbooks/{playbook.name}.yml"


class CeleryEngine:
    """Work a run's hosts on Celery workers (``iisfleet worker``). One engine per run."""

    def __init__(self, *, playbook: Any, params: dict[str, Any], broker: str | None = None,
                 visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT, artifact_listen: tuple[str, int] = ("127.0.0.1", 0),
                 artifact_url: str | None = None, artifact_cert: str | None = None, artifact_key: str | None = None,
                 broker_grace_s: float = 30.0, deadline_s: float | None = None, worker_check_s: float = 2.0,
                 artifact_store: Any = None) -> None:
        self.broker = broker_url(broker)
        self.playbook, self.params = playbook, dict(params)
        self.visibility_timeout = visibility_timeout
        self.artifact_listen, self.artifact_url = artifact_listen, artifact_url
        self.artifact_cert, self.artifact_key = artifact_cert, artifact_key
        self.broker_grace_s = broker_grace_s
        self.deadline_s = deadline_s
        self.worker_check_s = worker_check_s
        #: ``ObjectStore`` from the inventory's ``artifact_store:``: workers put envelopes there instead of
        #: sending them to the receiver
        self.artifact_store = artifact_store
        self.failed = False
        self.error: str | None = None
        self.stats: dict[str, Any] = {}

    def validate(self, hosts: list[HostConfig]) -> None:
        """Refuse a run whose host budgets reach the visibility timeout (a slow host would run twice)."""
        longest = max((h.time_budget for h in hosts), default=0.0)
        if longest >= self.visibility_timeout:
            raise ConfigError(f"a host's time budget ({longest:g} s) is not shorter than the broker's visibility "
                              f"timeout ({self.visibility_timeout:g} s)",
                              explanation="raise --visibility-timeout (workers and controller alike) or lower "
                                          "time_budget, or a slow host would be delivered to a second worker")

    def executor(self, run: Any, hosts: list[HostConfig]) -> _CeleryExecutor:
        self.validate(hosts)
        return _CeleryExecutor(self, run, hosts)


class _CeleryExecutor:
    """Quacks like ``concurrent.futures.Executor`` for ``run_playbook``: ``submit`` and ``shutdown``."""

    def __init__(self, engine: CeleryEngine, run: Any, hosts: list[HostConfig]) -> None:
        self.engine, self.run = engine, run
        self.app = make_app(engine.broker, visibility_timeout=engine.visibility_timeout)
        self.run_id = uuid.uuid4().hex
        self.token = secrets.token_urlsafe(32)
        self.playbook_text, self.playbook_path = _playbook_text(engine.playbook)
        self.deadline_epoch = None if engine.deadline_s is None else time.time() + engine.deadline_s
        self.receiver = ArtifactReceiver(
            self.run_id, self.token, [h.name for h in hosts], [p.collector.id for p in run.steps],
            run.writer.write_envelope, listen=engine.artifact_listen, public_url=engine.artifact_url,
            certfile=engine.artifact_cert, keyfile=engine.artifact_key).start()
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[HostConfig, Future[HostResult], float]] = {}  # task id -> host, future, give up at
        self._done = threading.Event()
        self._stop_sent = False
        self._zones_without_worker = self._zones_without_worker_of(hosts)
        self._published = 0
        self._republished = 0
        self._messages: dict[str, tuple[dict[str, Any], str]] = {}  # task id -> payload, queue (to publish again)
        # Only a Redis broker loses tasks this way, and the check reads result keys from it: the broker must
        # also be the result backend (the default).
        self._lost_watch = LostTaskWatch() if (engine.broker.startswith(("redis://", "rediss://"))
                                               and self.app.conf.result_backend == engine.broker) else None
        self.stored_bytes = 0
        self._pubsub = self._subscribe()  # before the first task is published, so no result can be missed
        self._poller = threading.Thread(target=self._poll, name="iisfleet-celery-results", daemon=True)
        self._poller.start()

    # ------------------------------------------------------------------ publishing
    def _zones_without_worker_of(self, hosts: list[HostConfig]) -> set[str]:
        zones = {zone_of(h) for h in hosts}
        try:
            replies = self.app.control.inspect(timeout=self.engine.worker_check_s).active_queues() or {}
        except Exception as exc:  # the broker is down: publishing will say so per host
            log.debug("asking the workers for their queues failed: %s", exc)
            return set()
        served = {q.get("name") for queues in replies.values() for q in queues or []}
        return {zone for zone in zones if queue_for_zone(zone) not in served}

    def submit(self, _work: Any, host: HostConfig) -> Future[HostResult]:
        future: Future[HostResult] = Future()
        zone = zone_of(host)
        if self.engine.failed:
            self._fail(host, future, self._broker_error())
            return future
        if zone in self._zones_without_worker:
            self._fail(host, future, StepError(
                category="connect", message=f"no worker serves zone {zone!r} (queue {queue_for_zone(zone)})",
                explanation=f"start one where the zone's hosts are reachable: iisfleet worker --zone {zone} -i "
                            "INVENTORY"))
            return future
        payload = {"run": self.run_id, "host": host.name, "zone": zone, "playbook_text": self.playbook_text,
                   "playbook_path": self.playbook_path, "params": self.engine.params,
                   "deadline_epoch": self.deadline_epoch, "artifact_url": self.receiver.url, "token": self.token,
                   "delivery": "store" if self.engine.artifact_store is not None else "http"}
        task_id = f"{self.run_id}:{host.name}"
        give_up_at = time.monotonic() + host.time_budget + self.engine.visibility_timeout + 30.0
        with self._lock:
            self._pending[task_id] = (host, future, give_up_at)
            self._messages[task_id] = (payload, queue_for_zone(zone))
        try:
            self._publish(task_id)
            self._published += 1
        except Exception as exc:
            log.debug("publishing %s failed: %s", host.name, exc)
            self._mark_broker_down()
            with self._lock:
                self._pending.pop(task_id, None)
            self._fail(host, future, self._broker_error())
        return future

    def _publish(self, task_id: str) -> None:
        payload, queue = self._messages[task_id]
        self.app.send_task(TASK_NAME, kwargs={"payload": payload}, queue=queue, task_id=task_id,
                           retry=True, retry_policy={"max_retries": 2, "interval_start": 0.5, "interval_step": 1.0})

    def _republish_lost(self) -> None:
        """Publish again the tasks the Redis broker lost (``toolkit.distributed.lost``)."""
        client = getattr(self.app.backend, "client", None)
        if self._lost_watch is None or self.engine.failed or client is None:
            return
        prefix = _key_prefix(self.app.backend)
        with self._lock:
            queue_of = {tid: self._messages[tid][1] for tid in self._pending}
        try:
            missing = missing_tasks(client, queue_of, lambda tid: f"{prefix}{tid}") if queue_of else set()
        except Exception as exc:  # the broker is down: the result poll says so
            log.debug("looking for lost tasks failed: %s", exc)
            return
        for task_id in self._lost_watch.observe(time.monotonic(), missing):
            with self._lock:
                entry = self._pending.get(task_id)
            if entry is None:
                continue
            try:
                self._publish(task_id)
            except Exception as exc:
                log.debug("publishing %s again failed: %s", task_id, exc)
                continue
            self._republished += 1
            self.run.writer.log("task_lost", host=entry[0].name,
                                message="the broker lost the host's task (a worker died taking it off the queue); "
                                        "it was published again")

    # ------------------------------------------------------------------ results
    def _broker_error(self) -> StepError:
        return StepError(category="connect",
                         message=f"no result: the broker {safe_broker(self.engine.broker)} became unreachable",
                         explanation="the run stopped waiting; everything that arrived before is in the run "
                                     "directory. Check the broker, then rerun the missing hosts with --limit")

    def _mark_broker_down(self) -> None:
        if not self.engine.failed:
            self.engine.failed = True
            self.engine.error = (f"the broker {safe_broker(self.engine.broker)} became unreachable during the run; "
                                 "hosts still out were recorded as failed")
            self.run.writer.log("engine_error", message=self.engine.error)

    def _fail(self, host: HostConfig, future: Future[HostResult], error: StepError) -> None:
        result = HostResult(host=host.name, address=host.address, transport=host.transport, status="failed",
                            error=error)
        self.run.writer.write_host(result, finished=True)
        self.run.writer.log("host_finished", host=host.name, status="failed", duration_s=0.0, category=error.category)
        self.run.hooks.host_finished(result)
        future.set_result(result)

    def _accept(self, task_id: str, value: Any) -> None:
        with self._lock:
            entry = self._pending.pop(task_id, None)
        if entry is None:
            return  # already settled (a second delivery's result): the first one stands
        host, future, _ = entry
        if not isinstance(value, dict) or not isinstance(value.get("host"), dict):
            self._fail(host, future, StepError(category="protocol", message=f"the worker's task failed: {value!r}"[:500],
                                               explanation="see the worker's log"))
            return
        document = dict(value["host"])
        document["host"] = host.name  # the controller's name is the one the run directory uses
        self._fetch_stored(host, document, value.get("artifacts"))
        for event in value.get("events") or []:
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                fields = {k: v for k, v in event.items() if k not in ("event", "time_utc")}
                if event["event"] == "host_finished":
                    fields["status"] = document.get("status")  # a stored envelope that failed its check
                self.run.writer.log(event["event"], **fields)
        write_json_atomic(self.run.writer.host_path(host.name) / "host.json", document)
        result = host_result_from_document(document)
        self.run.hooks.host_finished(result)
        future.set_result(result)

    def _fetch_stored(self, host: HostConfig, document: dict[str, Any], references: Any) -> None:
        if references:
            self.stored_bytes += assemble_stored(self.engine.artifact_store, self.run.writer, host.name, document,
                                                 references, self.receiver.collectors)

    def _subscribe(self) -> Any:
        """With Redis as result backend every stored result is also published on its key's channel: listen to
        this run's, so results are pushed instead of polled. ``None`` (polling only) for other backends."""
        backend = self.app.backend
        client = getattr(backend, "client", None)
        if client is None:
            return None
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(f"{_key_prefix(backend)}{self.run_id}:*")
            return pubsub
        except Exception as exc:  # the broker is down: publishing will say so per host
            log.debug("subscribing to results failed: %s", exc)
            return None

    def _poll(self) -> None:
        """Settle hosts as results arrive: pushed results when subscribed, and a sweep of every pending result
        key every ``_SWEEP_S`` (or every poll without a subscription) so that nothing missed stays pending."""
        from celery.exceptions import TimeoutError as ResultsNotReady

        backend = self.app.backend
        prefix = _key_prefix(backend)
        down_since: float | None = None
        last_sweep = last_lost_check = time.monotonic()
        while not self._done.is_set():
            if self.run.no_new_hosts.is_set() and not self._stop_sent:
                self._send_stop()
            with self._lock:
                ids = list(self._pending)
            if not ids:
                self._done.wait(_POLL_S)
                continue
            try:
                if self._pubsub is not None and time.monotonic() - last_sweep < _SWEEP_S:
                    message = self._pubsub.get_message(timeout=_POLL_S)
                    while message is not None:
                        channel = message.get("channel")
                        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                        meta = backend.decode_result(message["data"])
                        self._settle(channel.removeprefix(prefix), meta)
                        message = self._pubsub.get_message(timeout=0)
                else:
                    last_sweep = time.monotonic()
                    for task_id, meta in backend.get_many(ids, timeout=_POLL_S, interval=0.05, no_ack=True):
                        self._settle(task_id, meta)
                down_since = None
            except ResultsNotReady:
                down_since = None
            except Exception as exc:  # the broker/result backend is unreachable
                now = time.monotonic()
                down_since = down_since or now
                log.debug("result backend: %s", exc)
                if now - down_since >= self.engine.broker_grace_s:
                    self._mark_broker_down()
                    self._fail_all(self._broker_error())
                    return
                self._done.wait(_POLL_S)
            self._expire()
            if time.monotonic() - last_lost_check >= CHECK_EVERY_S:
                last_lost_check = time.monotonic()
                self._republish_lost()

    def _settle(self, task_id: str, meta: dict[str, Any]) -> None:
        state = meta.get("status")
        if state not in ("SUCCESS", "FAILURE", "REVOKED"):
            return
        self._accept(task_id, meta.get("result") if state == "SUCCESS" else f"{state}: {meta.get('result')}")

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [(tid, entry) for tid, entry in self._pending.items() if entry[2] <= now]
            for tid, _ in late:
                self._pending.pop(tid)
        for _, (host, future, _) in late:
            zone = zone_of(host)
            self._fail(host, future, StepError(
                category="timeout", message=f"no worker of zone {zone!r} returned a result within the host's budget "
                "and the visibility timeout", explanation="a worker may have died with no other left to take the "
                "host over; check the zone's workers"))

    def _fail_all(self, error: StepError) -> None:
        with self._lock:
            entries = list(self._pending.values())
            self._pending.clear()
        for host, future, _ in entries:
            self._fail(host, future, error)

    def _send_stop(self) -> None:
        self._stop_sent = True
        client = getattr(self.app.backend, "client", None)
        if client is not None:
            try:
                client.set(stop_key(self.run_id), "1", ex=86400)
            except Exception as exc:
                log.debug("setting the stop flag failed: %s", exc)

    def shutdown(self, wait: bool = True) -> None:
        self._done.set()
        self._poller.join(timeout=5)
        self.engine.stats = {"tasks_published": self._published, "tasks_republished": self._republished,
                             "envelopes_received": self.receiver.received,
                             "envelope_bytes_received": self.receiver.received_bytes,
                             "envelope_bytes_from_store": self.stored_bytes}
        self.receiver.stop()
        try:
            if self._pubsub is not None:
                self._pubsub.close()
            self.app.close()
        except Exception:  # closing is best effort
            log.debug("closing the Celery app failed", exc_info=True)
