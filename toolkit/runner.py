"""Fan a playbook out over a fleet: one worker thread per host session, bounded concurrency.

Each host's steps run in order on that host's own transport session (pypsrp sessions must not be
shared between threads). Whatever happens on one host becomes that host's ``HostResult`` with a
category and a one-line explanation; it never stops the fleet. Results land in the run directory the
moment they are known (``toolkit.rundir``), so an interrupted or killed run keeps everything collected.

Stopping early:

* ``deadline_s`` caps the whole run: hosts not started by then are skipped, running steps get at most
  the time left.
* Ctrl-C (``KeyboardInterrupt`` in the thread calling ``run_playbook``, or ``stop.set()``) starts no new
  host; running hosts finish their steps. A second Ctrl-C (or ``stop_running.set()``, e.g. SIGTERM) stops
  the running steps too: each running transport is cancelled (the remote pipeline is stopped and the
  session closed within a few seconds), and those steps are recorded as cut short. A third Ctrl-C
  records the run as ``interrupted`` and lets ``KeyboardInterrupt`` out at once, without waiting for
  hosts (the caller exits). The run's status is ``interrupted``.

The runner never prints: progress goes through ``RunHooks``, which a CLI implements.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from toolkit.errors import (CollectorError, ConfigError, ContractError, StorageError, ToolkitError, TransportError,
                            UsageError)
from toolkit.models import HostConfig, HostResult, ScriptOutput, StepError, StepResult
from toolkit.rundir import RunDirWriter, utc_now
from toolkit.secrets import MASK, Secret, contains_known_secret, contains_secret_in_stream, redact
from toolkit.textsafe import scrub_surrogates
from toolkit.transports import Transport, create_transport
from toolkit.transports.batch import BatchCall, BatchResult

log = logging.getLogger(__name__)

#: Sized for hundreds of hosts: most of a host's time is spent waiting on the network and the host.
DEFAULT_CONCURRENCY = 32
#: A step without its own timeout gets this many seconds.
DEFAULT_STEP_TIMEOUT = 300.0
#: After these categories the host's session is unusable; its remaining steps are not attempted.
FATAL_CATEGORIES = frozenset({"dns", "connect", "tls", "auth", "config"})
#: Every later step of a host keeps at least this share of the host's time budget (divided between the
#: steps), so one slow collector cannot starve the cheap ones after it.
STEP_RESERVE_SHARE = 0.5
#: A host clock further than this from the controller's has ``utc-time`` parameters (the log and event
#: window) moved onto its own clock: its logs are stamped with that clock.
CLOCK_FOLLOW_S = 60.0
#: A streamed step (raw files in chunks) is resumed on a new session this many times at most after dropped
#: connections, within its timeout; a later drop leaves its partial files for `iisfleet run --resume`.
STREAM_ATTEMPTS = 4
#: Categories that mean "could not reach the host" (exit code 3 of `iisfleet run`).
UNREACHABLE_CATEGORIES = frozenset({"dns", "connect", "tls", "auth", "timeout"})


class RunHooks:
    """Progress callbacks. Called from worker threads (except ``run_*``): implementations must be thread-safe
    and quick. Every method is a no-op here; override what you draw."""

    def run_started(self, run_dir: Path, hosts: list[HostConfig]) -> None: ...

    def host_started(self, host: HostConfig) -> None: ...

    def step_started(self, host: HostConfig, collector_id: str) -> None: ...

    def step_finished(self, host: HostConfig, step: StepResult) -> None: ...

    def host_finished(self, result: HostResult) -> None: ...

    def interrupted(self, level: int) -> None:
        """Ctrl-C number ``level`` arrived (1: no new hosts; 2: no new steps)."""

    def run_finished(self, summary: RunSummary) -> None: ...


@dataclass
class RunSummary:
    run_dir: Path
    playbook: str
    status: str  # complete | interrupted | deadline | storage-error
    started_utc: str
    finished_utc: str
    duration_s: float
    hosts: list[HostResult] = field(default_factory=list)
    report_written: bool = False
    #: Why the run directory could not be written (the run stopped early), or None.
    storage_error: StorageError | None = None

    def count(self, status: str) -> int:
        return sum(1 for h in self.hosts if h.status == status)

    @property
    def unreachable(self) -> list[HostResult]:
        """Hosts that failed outright for a reachability reason."""
        return [h for h in self.hosts
                if h.status == "failed" and h.error is not None and h.error.category in UNREACHABLE_CATEGORIES]


@dataclass
class _PreparedStep:
    step: Any  # toolkit.playbooks.Step
    collector: Any  # toolkit.collectors.Collector
    parameters: dict[str, Any]
    timeout: float
    playbook_parameters: Mapping[str, Any]  # the bound playbook parameters, which `when` may name


#: Used when the error itself carries no explanation, so every failed host has its one line.
DEFAULT_EXPLANATIONS = {
    "contract": "the collector's output does not match the contract of this iisfleet version: the script on "
                "the host was changed, or its output was cut off or mixed with other text",
    "script": "the collector raised an error on the host; the message says which probe failed",
    "timeout": "the host did not finish in time: raise the step timeout or narrow the collector's parameters",
    "config": "fix the inventory or playbook setting named in the message",
}


def _step_error(exc: BaseException) -> StepError:
    # Host text may carry lone surrogates (unwritable as UTF-8) and encoded secrets (withheld by redact).
    if isinstance(exc, ToolkitError):
        explanation = exc.explanation or DEFAULT_EXPLANATIONS.get(exc.category)
        return StepError(category=exc.category, message=scrub_surrogates(redact(exc.message)),
                         explanation=scrub_surrogates(redact(explanation)) if explanation else None)
    return StepError(category="protocol", message=scrub_surrogates(redact(f"{type(exc).__name__}: {exc}")),
                     explanation="an unexpected error inside iisfleet; rerun with --verbose and report it")


def redact_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as they may be stored: secrets masked, strings scrubbed of known secret values."""
    def clean(value: Any) -> Any:
        if isinstance(value, Secret):
            return MASK
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value
    return {str(k): clean(v) for k, v in params.items()}


def _facts_from_envelope(collector_id: str, envelope: dict[str, Any]) -> dict[str, Any]:
    try:
        from toolkit.facts import facts_from_envelope
    except ImportError:  # INVENTORY's module not present yet: `when` conditions see no facts
        return {}
    return facts_from_envelope(collector_id, envelope)


def _validate(stdout: str, collector: Any, host: str) -> dict[str, Any]:
    from toolkit.contract import validate_envelope

    try:
        return validate_envelope(stdout, collector=collector, host=host)
    except ToolkitError:
        raise
    except Exception as exc:  # a validator bug must not pass garbage on, nor crash the host
        raise ContractError(f"the envelope could not be validated: {type(exc).__name__}: {exc}",
                            host=host, collector=collector.id) from None


def _holds_a_secret(value: Any, *, host: str = "?", collector: str = "?") -> bool:
    """Whether a validated envelope holds a known secret value in any form a host can echo it
    (``toolkit.secrets.contains_known_secret``), its blobs included: each blob is inflated as a stream
    (never held whole) and searched, which also refuses a compression bomb before anything is stored.

    Raises:
        ContractError: a blob that does not decode (bomb, bad base64/gzip, size mismatch).
    """
    if isinstance(value, str):
        return contains_known_secret(value)
    if isinstance(value, list):
        return any(_holds_a_secret(item, host=host, collector=collector) for item in value)
    if not isinstance(value, Mapping):
        return False
    if isinstance(value.get("encoding"), str) and isinstance(value.get("content"), str):
        from toolkit.contract import iter_blob

        if contains_known_secret(value["content"]):
            return True
        return contains_secret_in_stream(iter_blob(value, host=host, collector=collector))
    return any(_holds_a_secret(key, host=host, collector=collector)
               or _holds_a_secret(item, host=host, collector=collector) for key, item in value.items())


class _HostClock:
    """How far one host's clock is from the controller's, learnt from its first envelope's ``time_utc``.

    The playbook computes its window (``{{ since | ago }}``) on the controller's clock; a host whose clock
    is off stamps its logs and events with its own, so the window would miss them. Once the offset is
    known (the first step, usually Get-HostFact), ``utc-time`` parameters of later steps are moved by it.
    """

    def __init__(self) -> None:
        self.offset_s: float | None = None

    def observe(self, envelope: Mapping[str, Any], controller_time: float) -> None:
        if self.offset_s is not None:
            return
        try:
            host_time = datetime.strptime(str(envelope.get("time_utc"))[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return
        self.offset_s = host_time.replace(tzinfo=timezone.utc).timestamp() - controller_time

    def followed_offset(self) -> float | None:
        """The offset the window was moved by, or None when the clocks agree (or it is unknown)."""
        if self.offset_s is None or abs(self.offset_s) < CLOCK_FOLLOW_S:
            return None
        # Whole minutes: time_utc has 1 s resolution and the step's duration blurs it further, so two
        # runs against the same host record the same offset.
        return float(round(self.offset_s / 60.0) * 60)

    def parameters_for(self, collector: Any, parameters: Mapping[str, Any]) -> Mapping[str, Any]:
        offset = self.followed_offset()
        if offset is None:
            return parameters
        moved = dict(parameters)
        for spec in collector.parameters:
            value = moved.get(spec.name)
            if spec.format == "utc-time" and isinstance(value, str) and value:
                try:
                    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    continue
                moved[spec.name] = (when + timedelta(seconds=offset)).astimezone(timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
        return moved


class _Run:
    def __init__(self, *, steps: list[_PreparedStep], writer: RunDirWriter, hooks: RunHooks,
                 transport_factory: Callable[[HostConfig], Transport], deadline: float | None,
                 previous: Mapping[str, Any] | None = None) -> None:
        self.steps = steps
        #: host name -> toolkit.resume.PreviousHost: what an interrupted run left (``run --resume``)
        self.previous = previous or {}
        self.writer = writer
        self.hooks = hooks
        self.transport_factory = transport_factory
        self.deadline = deadline
        self.no_new_hosts = threading.Event()
        self.no_new_steps = threading.Event()
        self.interrupt_level = 0
        self.deadline_hit = False
        self._active: dict[str, Transport] = {}  # host name -> its open session, while steps run
        self._active_lock = threading.Lock()

    # ------------------------------------------------------------ control
    def interrupt(self) -> None:
        self.interrupt_level += 1
        self.no_new_hosts.set()
        if self.interrupt_level >= 2 and not self.no_new_steps.is_set():
            self.no_new_steps.set()
            self._cancel_running()
        self.writer.log("interrupt", level=self.interrupt_level)
        self.hooks.interrupted(self.interrupt_level)

    def storage_failed(self) -> bool:
        """Whether the run directory could not be written (a distributed worker's writer never fails so)."""
        return getattr(self.writer, "storage_error", None) is not None

    def _cancel_running(self) -> None:
        """Ask every running session to stop its script now (the transports do it within a few seconds)."""
        with self._active_lock:
            running = list(self._active.values())
        for transport in running:
            cancel = getattr(transport, "cancel", None)
            if cancel is not None:
                try:
                    cancel()
                except Exception:  # best effort: the step timeout still bounds the step
                    log.debug("cancelling a session failed", exc_info=True)

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    # ------------------------------------------------------------ one host
    def skipped(self, host: HostConfig, reason: str) -> HostResult:
        result = HostResult(host=host.name, address=host.address, transport=host.transport, status="skipped",
                            steps=[StepResult(collector=p.collector.id, status="skipped", skipped_reason=reason)
                                   for p in self.steps])
        self.writer.write_host(result, finished=True)
        self.writer.log("host_skipped", host=host.name, reason=reason)
        self.hooks.host_finished(result)
        return result

    def run_host(self, host: HostConfig) -> HostResult:
        previous = self.previous.get(host.name)
        if previous is not None and previous.complete:  # resumed run: this host finished before
            result = previous.result()
            self.writer.log("host_kept", host=host.name, status=result.status)
            self.hooks.host_finished(result)
            return result
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            self.deadline_hit = True
            return self.skipped(host, "the run's deadline passed before this host started")
        if self.storage_failed():
            return self.skipped(host, "the run directory could not be written before this host started")
        if self.no_new_hosts.is_set():
            return self.skipped(host, "the run was interrupted before this host started")
        try:
            return self._run_host(host)
        except Exception as exc:  # never let one host take the fleet down
            # the traceback only with --verbose; the host's result carries the categorised error
            log.debug("unexpected failure on %s", host.name, exc_info=True)
            result = HostResult(host=host.name, address=host.address, transport=host.transport,
                                status="failed", error=_step_error(exc))
            self.writer.write_host(result, finished=True)
            self.writer.log("host_finished", host=host.name, status="failed", category=result.error.category)
            self.hooks.host_finished(result)
            return result

    def _run_host(self, host: HostConfig) -> HostResult:
        started = time.monotonic()
        budget_end = started + host.time_budget
        result = HostResult(host=host.name, address=host.address, transport=host.transport)
        self.hooks.host_started(host)
        log.debug("host %s: starting (%s to %s)", host.name, host.transport, host.address)
        self.writer.log("host_started", host=host.name, address=host.address, transport=host.transport)
        self.writer.write_host(result, finished=False)
        transport: Transport | None = None
        facts: dict[str, dict[str, Any]] = {}
        stop_reason: str | None = None
        clock = _HostClock()
        #: step index -> what a batch already brought back for it (``_run_batch``)
        prefetched: dict[int, BatchResult] = {}
        previous = self.previous.get(host.name)
        if previous is not None:  # steps kept from the interrupted run had their window moved by this much
            clock.offset_s = float(previous.document.get("clock_offset_s") or 0.0)
        try:
            transport = self.transport_factory(host)
            with self._active_lock:
                self._active[host.name] = transport
            if self.no_new_steps.is_set():  # stopped between the factory and the registration
                self._cancel_running()
            plan = getattr(transport, "plan", None)  # optional: load only the core the playbook's steps need
            if callable(plan):
                plan([prepared.collector.id for prepared in self.steps])
            try:
                transport.open()
            except Exception as exc:
                result.error = _step_error(exc)
                stop_reason = f"not run: {result.error.category} failure connecting to the host"
            settled = 0  # steps [0, settled) are decided and recorded, in playbook order

            def settle(index: int, *, may_run: bool) -> bool:
                """Decide and record step ``index``; False (nothing recorded) when it still has to run on the
                host and ``may_run`` is off (a batch's results are being settled as they arrive)."""
                nonlocal stop_reason
                prepared = self.steps[index]
                collector_id = prepared.collector.id
                kept = previous.kept_step(collector_id) if previous is not None else None
                if stop_reason is None:
                    stop_reason = self._why_stop(budget_end, host)
                if kept is not None:  # resumed run: done before, not run again
                    facts[collector_id] = _facts_from_envelope(collector_id, kept.envelope or {})
                    result.steps.append(kept)
                    self.writer.log("step_kept", host=host.name, collector=collector_id)
                    return True
                brought = prefetched.get(index)  # what a batch already brought back for this step
                if stop_reason is not None and not isinstance(brought, ScriptOutput):
                    # (a step a batch finished before the stop is stored below: nothing that arrived is lost)
                    step = StepResult(collector=collector_id, status="skipped", skipped_reason=stop_reason)
                else:
                    should_run, why = prepared.step.should_run(facts, prepared.playbook_parameters)
                    if not should_run:
                        step = StepResult(collector=collector_id, status="skipped", skipped_reason=why)
                    elif brought is None and not may_run:
                        return False
                    else:
                        self.hooks.step_started(host, collector_id)
                        reserve = self._reserve_for_later(host, index)
                        step = self._run_step(host, transport, prepared, budget_end - reserve, facts, clock,
                                              prefetched.pop(index, None))
                        if step.error is not None:
                            if result.error is None:
                                result.error = step.error
                            if step.error.category in FATAL_CATEGORIES:
                                stop_reason = f"not run: {step.error.category} failure earlier on this host"
                result.steps.append(step)
                log.debug("host %s: step %s %s in %.3f s%s", host.name, collector_id, step.status, step.duration_s,
                          f" ({step.error.category}: {step.error.message})" if step.error else "")
                self.hooks.step_finished(host, step)
                self.writer.log("step_finished", host=host.name, collector=collector_id, status=step.status,
                                duration_s=round(step.duration_s, 3),
                                category=step.error.category if step.error else None,
                                message=step.error.message if step.error else step.skipped_reason)
                self.writer.write_host(result, finished=False)
                return True

            def arrived(index: int, outcome: BatchResult) -> None:
                """A batched step's result, as it arrives: record it and whatever follows it that can be."""
                nonlocal settled
                prefetched[index] = outcome
                while settled < len(self.steps) and settle(settled, may_run=False):
                    settled += 1

            while settled < len(self.steps):
                if settle(settled, may_run=False):
                    settled += 1
                    continue
                # The step has to run: with the later steps already known to run, in one pipeline when the
                # session can (their results are settled by ``arrived`` as they come); else on its own.
                waiting = settled
                self._run_batch(host, transport, settled, facts, clock, budget_end, previous, prefetched, arrived)
                if settled == waiting:
                    settle(settled, may_run=True)
                    settled += 1
        finally:
            with self._active_lock:
                self._active.pop(host.name, None)
            if transport is not None:
                try:
                    transport.close()
                except Exception:  # closing is best effort; the results are already recorded
                    log.debug("closing the session to %s failed", host.name, exc_info=True)
        result.status = self._host_status(result)
        result.duration_s = time.monotonic() - started
        result.clock_offset_s = clock.followed_offset()
        self.writer.write_host(result, finished=True)
        self.writer.log("host_finished", host=host.name, status=result.status,
                        duration_s=round(result.duration_s, 3),
                        category=result.error.category if result.error else None)
        self.hooks.host_finished(result)
        return result

    def _reserve_for_later(self, host: HostConfig, index: int) -> float:
        """Seconds of the host's budget kept for the steps after step ``index``: each keeps its share of
        ``STEP_RESERVE_SHARE`` of the budget (or its own timeout, if shorter)."""
        share = host.time_budget * STEP_RESERVE_SHARE / max(1, len(self.steps))
        return sum(min(later.timeout, share) for later in self.steps[index + 1:])

    def _why_stop(self, budget_end: float, host: HostConfig) -> str | None:
        if self.storage_failed():
            return "the run directory could not be written"
        if self.no_new_steps.is_set():
            return "the run was interrupted"
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            self.deadline_hit = True
            return "the run's deadline passed"
        if time.monotonic() >= budget_end:
            return f"the host's time budget was used up ({host.time_budget:.0f} s for all its steps)"
        return None

    def _run_batch(self, host: HostConfig, transport: Transport, index: int, facts: dict[str, dict[str, Any]],
                   clock: _HostClock, budget_end: float, previous: Any, prefetched: Mapping[int, BatchResult],
                   arrived: Callable[[int, BatchResult], None]) -> None:
        """Step ``index`` and the later steps already known to run, in one pipeline when the transport can
        (WinRM with session functions: ``run_batch``); each result goes to ``arrived`` as it comes back.

        A later step joins when it will certainly run with the parameters it would get at its turn: its
        ``when`` reads only facts known now (one that reads a fact still to come evaluates false now and
        is left for its turn, like a FREB step that waits on the W3C step's facts), it does not stream raw
        files, and the host's clock offset is already known (it moves ``utc-time`` parameters). Anything the
        batch did not bring back runs on its own at its turn, so a batch changes how many pipelines a host
        costs, never which steps run or what they return."""
        from toolkit.artefacts import streams_artefacts

        can_batch = getattr(transport, "can_batch", None)
        if can_batch is None or clock.offset_s is None:
            return
        group: list[int] = []
        for later in range(index, len(self.steps)):
            prepared = self.steps[later]
            if later in prefetched or (previous is not None and previous.kept_step(prepared.collector.id) is not None):
                continue
            if streams_artefacts(prepared.collector.id):
                continue
            if later > index and not prepared.step.should_run(facts, prepared.playbook_parameters)[0]:
                continue
            group.append(later)
        if len(group) < 2 or group[0] != index or not can_batch([self.steps[i].collector.script for i in group]):
            return
        now, run_left = time.monotonic(), self.remaining()
        calls = []
        for i in group:
            prepared = self.steps[i]
            limit = min(prepared.timeout, budget_end - self._reserve_for_later(host, i) - now)
            if run_left is not None:
                limit = min(limit, run_left)
            calls.append(BatchCall(prepared.collector.script, dict(clock.parameters_for(prepared.collector,
                                                                                        prepared.parameters)),
                                   max(limit, 0.001)))
        self.writer.log("batch", host=host.name, steps=len(calls))
        transport.run_batch(calls, lambda position, outcome: arrived(group[position], outcome))  # type: ignore[attr-defined]

    def _run_step(self, host: HostConfig, transport: Transport, prepared: _PreparedStep, budget_end: float,
                  facts: dict[str, dict[str, Any]], clock: _HostClock,
                  prefetched: BatchResult = None) -> StepResult:
        collector = prepared.collector
        timeout = min(prepared.timeout, budget_end - time.monotonic())
        # Which limit bounds this step, so a timeout says the truth (not "60 s" after a 600 s host).
        limit = (f"the step's {prepared.timeout:.0f} s timeout" if timeout >= prepared.timeout
                 else f"what was left of the host's {host.time_budget:.0f} s budget")
        remaining = self.remaining()
        if remaining is not None and remaining < timeout:
            timeout, limit = remaining, "what was left of the run's --deadline"
        started = time.monotonic()
        started_wall = time.time()
        step = StepResult(collector=collector.id, status="ok")
        receiver = self._receiver(host, collector)
        try:
            parameters = clock.parameters_for(collector, prepared.parameters)
            if isinstance(prefetched, BaseException):  # the step failed inside a batch
                raise prefetched
            if prefetched is not None:
                output = prefetched
            elif receiver is None:
                output = transport.run_script(collector.script, parameters, timeout=max(timeout, 0.001))
            else:
                output = self._run_streamed(host, transport, collector, parameters, started + timeout, receiver)
            self._raise_for_script_errors(output, host, collector.id)
            self._store(host, collector, receiver.finish() if receiver else output.stdout, step, facts, receiver)
            if step.envelope is not None:
                clock.observe(step.envelope, (started_wall + time.time()) / 2)
        except Exception as exc:
            if not isinstance(exc, ToolkitError):
                log.debug("step %s on %s: unexpected error", collector.id, host.name, exc_info=True)
            step.status = "failed"
            step.error = _step_error(exc)
            arrived = exc.partial_stdout if isinstance(exc, TransportError) else ""
            if receiver is not None:  # the parts that arrived (their chunks are on disk, resumable)
                arrived = receiver.finish()
            if arrived.strip():
                # A collector that streams finished these parts before the step was stopped: keep them (the
                # merged envelope says in errors[] that the rest is missing). Anything unusable is dropped.
                try:
                    self._store(host, collector, arrived, step, facts, receiver)
                except Exception as kept:
                    log.info("the output that arrived from %s before %s failed is unusable: %s", host.name,
                             collector.id, type(kept).__name__)
        step.duration_s = time.monotonic() - started
        ran_out = step.duration_s >= timeout - 1.0  # not a network read timeout well inside the budget
        if isinstance(prefetched, ScriptOutput):  # what the host measured for it inside the batch
            step.duration_s = prefetched.duration_s
        elif prefetched is not None:  # the batch stopped it at its own limit
            ran_out = True
        if step.error is not None and step.error.category == "timeout" and ran_out and not self.no_new_steps.is_set():
            step.error = StepError(category="timeout", message=f"{collector.id}: {step.error.message}; "
                                   f"the limit was {limit}", explanation=step.error.explanation)
        if step.status == "failed" and self.no_new_steps.is_set():
            # cancelled by a second Ctrl-C / SIGTERM: not the host's failure (parts already stored stay)
            step.status, step.error = "skipped", None
            step.skipped_reason = f"the run was interrupted while this step ran (stopped after {step.duration_s:.0f} s)"
        return step

    def _receiver(self, host: HostConfig, collector: Any) -> Any:
        """The receiver of a collector that streams raw files in chunks (None for every other collector,
        and for a writer without a host folder, e.g. a distributed worker's)."""
        from toolkit.artefacts import ARTEFACT_DIR, ArtefactReceiver, streams_artefacts

        host_path = getattr(self.writer, "host_path", None)
        if not streams_artefacts(collector.id) or host_path is None:
            return None
        return ArtefactReceiver(host_path(host.name) / ARTEFACT_DIR, host=host.name, collector=collector.id)

    def _run_streamed(self, host: HostConfig, transport: Transport, collector: Any, parameters: Mapping[str, Any],
                      deadline: float, receiver: Any) -> ScriptOutput:
        """Run a streaming collector, handing each part to ``receiver``; after a dropped connection, run it
        again on a new session with ``Have`` (what is on disk), so only the missing bytes travel."""
        from toolkit.artefacts import have_from_disk, have_lines

        for attempt in range(1, STREAM_ATTEMPTS + 1):
            have = have_from_disk(receiver.dir)
            bound = dict(parameters, Have=have_lines(have)) if have else dict(parameters)
            try:
                return transport.run_script(collector.script, bound, timeout=max(deadline - time.monotonic(), 0.001),
                                            on_output=receiver.feed)
            except TransportError as exc:
                if (exc.category != "connect" or attempt == STREAM_ATTEMPTS or self.no_new_steps.is_set()
                        or deadline - time.monotonic() < 1.0):
                    raise
                log.info("%s: the connection dropped during %s; resuming from %d bytes already received",
                         host.name, collector.id, sum(item["received"] for item in have))
                self.writer.log("transfer_resumed", host=host.name, collector=collector.id, attempt=attempt + 1,
                                message=exc.message)
                receiver.restart()
        raise AssertionError("unreachable")  # the loop returns or raises

    def _store(self, host: HostConfig, collector: Any, stdout: str, step: StepResult,
               facts: dict[str, dict[str, Any]], receiver: Any = None) -> None:
        """Validate a collector's output, write its envelope and compute its facts, counting the envelope
        against the process-wide decode budget meanwhile (toolkit.contract.DecodeBudget)."""
        from toolkit.contract import DECODE_BUDGET, envelope_cost

        with DECODE_BUDGET.reserve(envelope_cost(stdout)):
            self._store_reserved(host, collector, stdout, step, facts, receiver)

    def _store_reserved(self, host: HostConfig, collector: Any, stdout: str, step: StepResult,
                        facts: dict[str, dict[str, Any]], receiver: Any = None) -> None:
        envelope = _validate(stdout, collector, host.name)
        from toolkit.bundle.integrity import refuse_damaged_blobs

        refusals = refuse_damaged_blobs(envelope)  # bytes that differ from the host's SHA-256
        if receiver is not None:
            receiver.annotate(envelope)
            refusals += receiver.refused
        for refused in refusals:
            self.writer.log("integrity_refused", host=host.name, collector=collector.id, **refused)
        if _holds_a_secret(envelope, host=host.name, collector=collector.id):
            # a host echoed a credential back; the run directory must never hold it
            raise ContractError("the collector output contains a credential value; it was not stored",
                                host=host.name, collector=collector.id,
                                explanation="the host echoed a password back: check what the collector "
                                "reads on that host (a config file holding the service account's password?)")
        self.writer.write_envelope(host.name, collector.id, envelope)
        step.envelope = envelope
        try:
            facts[collector.id] = _facts_from_envelope(collector.id, envelope)
        except Exception as exc:
            log.warning("facts for %s on %s failed: %s", collector.id, host.name, type(exc).__name__)
            facts[collector.id] = {}

    @staticmethod
    def _raise_for_script_errors(output: ScriptOutput, host: HostConfig, collector_id: str) -> None:
        if not (output.had_errors or output.errors):
            return
        detail = "; ".join(" ".join(e.split()) for e in output.errors[:3]) or "the script failed without a message"
        if len(detail) > 500:
            detail = detail[:499] + "…"
        raise CollectorError(redact(detail), host=host.name, collector=collector_id,
                             explanation="the collector raised an error on the host; see the message (run "
                             "`iisfleet hosts check` to rule out a session problem)")

    @staticmethod
    def _host_status(result: HostResult) -> str:
        ran = [s for s in result.steps if s.status != "skipped"]
        failed = [s for s in ran if s.status == "failed"]
        ok = [s for s in ran if s.status == "ok"]
        cut_short = any(s.status == "skipped" and (s.skipped_reason or "").startswith(("the run", "the host's"))
                        for s in result.steps)
        if result.error is not None and not ran:
            return "failed"
        if failed and not ok:
            return "failed"
        if failed or (cut_short and ok):
            return "partial"
        if cut_short and not ok:
            return "skipped"
        return "ok"


def run_one_host(host: HostConfig, steps: list[_PreparedStep], writer: Any, *, deadline: float | None = None,
                 transport_factory: Callable[[HostConfig], Transport] | None = None) -> HostResult:
    """One host's steps outside a local fleet run (a distributed worker's task). ``writer`` needs
    ``write_host``, ``write_envelope`` and ``log`` like ``RunDirWriter``; ``deadline`` is monotonic."""
    run = _Run(steps=steps, writer=writer, hooks=RunHooks(), transport_factory=transport_factory or create_transport,
               deadline=deadline)
    return run.run_host(host)


def prepare_steps(playbook: Any, params: Mapping[str, Any], catalog: Mapping[str, Any], *,
                  now: datetime | None = None) -> list[_PreparedStep]:
    """Bind the playbook's parameters and every step's collector parameters once, before any host starts.

    Raises ``ConfigError`` for an unknown collector or a parameter the collector's sidecar refuses, so a
    typo fails the command instead of every host.
    """
    bound = _bind(playbook, params, now)
    prepared: list[_PreparedStep] = []
    for index, step in enumerate(playbook.steps):
        collector = catalog.get(step.collector)
        if collector is None:
            raise ConfigError(f"step {index + 1} names collector {step.collector!r}, which is not bundled "
                              f"(known: {', '.join(sorted(catalog))})", field=f"steps[{index}].collector")
        parameters = collector.bind(step.parameters(bound))
        timeout = float(step.timeout) if getattr(step, "timeout", None) else DEFAULT_STEP_TIMEOUT
        prepared.append(_PreparedStep(step=step, collector=collector, parameters=parameters, timeout=timeout,
                                      playbook_parameters=bound))
    return prepared


def run_playbook(playbook: Any, hosts: list[HostConfig], *, out_dir: Path, params: dict[str, Any],
                 concurrency: int = DEFAULT_CONCURRENCY, deadline_s: float | None = None,
                 hooks: RunHooks | None = None, simulated: bool = False, inventory: str | None = None,
                 catalog: Mapping[str, Any] | None = None,
                 transport_factory: Callable[[HostConfig], Transport] | None = None,
                 stop: threading.Event | None = None, stop_running: threading.Event | None = None,
                 after_hosts: Callable[[Path], None] | None = None, engine: Any = None,
                 resume: bool = False, reference: datetime | None = None) -> RunSummary:
    """Run ``playbook`` on ``hosts`` and record everything in ``out_dir``.

    ``catalog`` defaults to ``toolkit.collectors.load_catalog()``, ``transport_factory`` to
    ``toolkit.transports.create_transport``. ``stop`` lets a caller other than the main thread request
    the same stop as a Ctrl-C, ``stop_running`` the same as two (a SIGTERM
    handler sets both). ``after_hosts(run_dir)`` runs on the controller once every host is done and
    before the report (the directory queries); its failure is logged, never fatal. ``engine`` (e.g.
    ``toolkit.distributed.CeleryEngine``) works the hosts somewhere else: its ``executor(run, hosts)``
    stands in for the local thread pool. ``resume`` finishes the interrupted run in ``out_dir`` (docs/run.md,
    "Resuming"): hosts that finished ok are not contacted, steps recorded ok are kept, the playbook's time
    window is the first run's, partial raw files continue where they stopped. ``reference`` is the "now"
    the playbook's window is computed from (default: the run's start; a resumed run keeps its first's).
    Raises ``ConfigError`` before contacting any host when the playbook does not bind, ``UsageError`` when
    ``out_dir`` already holds a run (``InputError`` when, with ``resume``, it holds none), ``OSError`` when
    it cannot be written; per-host problems are results, never exceptions.
    """
    if catalog is None:
        from toolkit.collectors import load_catalog

        catalog = load_catalog()
    hooks = hooks or RunHooks()
    out_dir = Path(out_dir)
    previous_meta: dict[str, Any] = {}
    previous_hosts: dict[str, Any] = {}
    if resume:
        from toolkit.resume import load_previous

        previous_meta, previous_hosts = load_previous(out_dir)
    elif (out_dir / "run.json").exists():
        raise UsageError(f"{out_dir} already holds a run; choose another --out (runs are never mixed)")
    # the playbook's time window ({{ since | ago }}) is computed from this; a resumed run keeps the first's
    reference = (_parse_utc(previous_meta.get("reference_utc")) or reference
                 or datetime.now(timezone.utc).replace(microsecond=0))
    steps = prepare_steps(playbook, params, catalog, now=reference)
    if len({h.name for h in hosts}) != len(hosts):
        raise ConfigError("the host list names a host twice")
    concurrency = max(1, int(concurrency))
    writer = RunDirWriter(out_dir)
    started_mono = time.monotonic()
    deadline = None if deadline_s is None else started_mono + deadline_s
    run = _Run(steps=steps, writer=writer, hooks=hooks,
               transport_factory=transport_factory or create_transport, deadline=deadline, previous=previous_hosts)
    meta: dict[str, Any] = {
        "playbook": playbook.name,
        "playbook_file": str(getattr(playbook, "path", "") or "") or None,  # what `run --resume` loads again
        "parameters": redact_parameters(_bind(playbook, params, reference)),
        "reference_utc": reference.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inventory": inventory,
        "started_utc": utc_now(),
        "finished_utc": None,
        "status": "running",
        "hosts": [h.name for h in hosts],
        "simulated": simulated,
        "concurrency": concurrency,
        "deadline_s": deadline_s,
    }
    if resume:  # the run keeps its first start; each resumption is recorded
        meta.update(started_utc=previous_meta.get("started_utc") or meta["started_utc"],
                    resumed_utc=[*(previous_meta.get("resumed_utc") or []), utc_now()])
    writer.write_meta(meta)
    writer.log("run_resumed" if resume else "run_started", playbook=playbook.name, hosts=len(hosts), concurrency=concurrency,
               steps=[p.collector.id for p in steps])
    hooks.run_started(out_dir, hosts)

    results: dict[str, HostResult] = {}
    abandoned = False  # a third Ctrl-C: leave without joining the hosts' threads
    executor = engine.executor(run, hosts) if engine is not None else ThreadPoolExecutor(
        max_workers=min(concurrency, max(1, len(hosts))), thread_name_prefix="iisfleet-host")
    try:
        futures = {executor.submit(run.run_host, host): host for host in hosts}
        pending = set(futures)
        while pending:
            try:
                # A short wait keeps the calling thread responsive to Ctrl-C and the deadline.
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if stop is not None and stop.is_set() and run.interrupt_level == 0:
                    run.interrupt()
                if writer.storage_error is not None and not run.no_new_hosts.is_set():
                    run.no_new_hosts.set()
                    run.no_new_steps.set()
                if stop_running is not None and stop_running.is_set() and not run.no_new_steps.is_set():
                    while not run.no_new_steps.is_set():
                        run.interrupt()
                remaining = run.remaining()
                if remaining is not None and remaining <= 0 and not run.no_new_hosts.is_set():
                    run.deadline_hit = True
                    run.no_new_hosts.set()
                    writer.log("deadline", deadline_s=deadline_s)
                for future in done:
                    results[futures[future].name] = future.result()
            except KeyboardInterrupt:
                run.interrupt()
                if run.interrupt_level >= 3:
                    meta.update(finished_utc=utc_now(), status="interrupted")
                    writer.write_meta(meta)
                    writer.log("run_abandoned", reason="a third Ctrl-C: the run stopped without waiting")
                    writer.close()
                    abandoned = True
                    raise
    finally:
        if abandoned and engine is None:
            executor.shutdown(wait=False, cancel_futures=True)
        else:
            executor.shutdown(wait=not abandoned)

    engine_failed = engine is not None and engine.failed  # e.g. the broker went away: a partial run
    status = ("interrupted" if run.interrupt_level or engine_failed
              else "deadline" if run.deadline_hit else "complete")
    if writer.storage_error is not None:
        status = "storage-error"
    summary = RunSummary(run_dir=out_dir, playbook=playbook.name, status=status,
                         started_utc=meta["started_utc"], finished_utc=utc_now(),
                         duration_s=time.monotonic() - started_mono,
                         hosts=[results[h.name] for h in hosts if h.name in results],
                         storage_error=writer.storage_error)
    meta.update(finished_utc=summary.finished_utc, status=status,
                counts={s: summary.count(s) for s in ("ok", "partial", "failed", "skipped")})
    if writer.storage_error is not None:
        meta["error"] = {"category": "storage", "message": writer.storage_error.message}
    writer.write_meta(meta, final=True)
    if after_hosts is not None and writer.storage_error is None:
        try:
            after_hosts(out_dir)
        except Exception as exc:  # noqa: BLE001 - the hosts' evidence is kept whatever happens here
            writer.log("warning", message=redact(f"controller-side step failed: {type(exc).__name__}: {exc}"))
            log.warning("controller-side step failed: %s", redact(str(exc)))
    writer.log("run_finished", status=status, duration_s=round(summary.duration_s, 3), **meta["counts"])
    if getattr(playbook, "report", False) and writer.storage_error is None:
        summary.report_written = _write_reports(out_dir, writer)
    writer.close()
    _seal(out_dir)
    hooks.run_finished(summary)
    return summary


def _bind(playbook: Any, params: Mapping[str, Any], now: datetime | None) -> Any:
    """``playbook.bind`` at the run's reference time (a playbook object without one binds at its own)."""
    if now is not None and "now" in inspect.signature(playbook.bind).parameters:
        return playbook.bind(dict(params), now=now)
    return playbook.bind(dict(params))


def _parse_utc(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _seal(run_dir: Path) -> None:
    """Manifests and the custody log's first entry, once the run wrote its last file (docs/bundle.md)."""
    from toolkit.bundle import seal_run

    try:
        seal_run(run_dir)
    except Exception as exc:  # noqa: BLE001 - the evidence stays; `bundle verify` will say it is not sealed
        log.warning("sealing %s failed: %s", run_dir, redact(f"{type(exc).__name__}: {exc}"))


def _write_reports(run_dir: Path, writer: RunDirWriter) -> bool:
    try:
        from toolkit.report import write_reports  # type: ignore[attr-defined]
    except ImportError:
        writer.log("warning", message="the playbook asks for a report but toolkit.report.write_reports is not "
                   "available in this installation; run `iisfleet report` later")
        log.warning("report requested but toolkit.report.write_reports is not available")
        return False
    try:
        write_reports(run_dir)
    except Exception as exc:
        writer.log("warning", message=f"writing the report failed: {type(exc).__name__}: {exc}")
        log.warning("writing the report for %s failed: %s", run_dir, exc)
        return False
    return True


__all__ = ["DEFAULT_CONCURRENCY", "RunHooks", "RunSummary", "prepare_steps", "redact_parameters", "run_one_host",
           "run_playbook"]
