"""WinRM transport: one pypsrp ``WSMan`` + ``RunspacePool`` per host, reused for every collector.

pypsrp 0.9.1 keeps NTLM/Kerberos sequence numbers, the message-encryption context and PSRP fragment
counters without locks, so a session is driven by exactly one thread (the runner's worker for this
host). Scripts go in with ``add_script`` and their values with ``add_parameters``: nothing from the
inventory or playbook is ever pasted into script text. A pipeline is judged on ``had_errors`` (a
terminating error) *and* ``streams.error`` (non-terminating ``Write-Error`` records).

On other endpoints the first bundled collector of a session is preceded by the core loader, which also
defines every bundled wrapper as a session function (``toolkit.collectors.session_functions_text``, sent
gzip-compressed once); from then on a bundled collector is one ``add_cmdlet`` of its function with its
parameters, so no wrapper text is sent again in that runspace pool (issue 17: bytes per host). Any other
script, a session whose loader could not define the functions (ConstrainedLanguage), and a host with the
WinRM option ``session_functions: false`` get the script.

JEA endpoints (``jea: true``, or detected for a custom ``configuration_name``) run in NoLanguage mode and
refuse any script. There each collector is one ``add_cmdlet(<function>)`` of the exported iisfleet module
with named parameters (``toolkit.jea``); no script text is ever sent, and the output has the same shape.

Two failures earn one rebuild-and-retry of the whole session: a dropped keep-alive connection (over HTTP
with message encryption the re-authenticated connection cannot decrypt the old context's messages) and
a WinRM quota fault (stale shells from an earlier run). Collectors are read-only, so running one again is
safe.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from toolkit.collectors import (STEP_BATCH_FUNCTION, bundled_collector, core_loader, core_loader_parameters,
                                 session_function_name, uses_core)
from toolkit.errors import HostError, TransportError
from toolkit.models import HostConfig, ScriptOutput
from toolkit.transports.base import MAX_OUTPUT_CHARS, OutputSink, stopped_on_request
from toolkit.transports.batch import MARKER as BATCH_MARKER
from toolkit.transports.batch import BatchCall, BatchReader, BatchResult
from toolkit.transports.core import CoreStatus, core_files_to_load, core_lacks, parse_loader_output
from toolkit.transports.errors import is_dropped_connection, is_quota_fault, winrm_error

log = logging.getLogger(__name__)

#: PSInvocationState.RUNNING in pypsrp's numbering.
_RUNNING = 1
#: The longest single Receive long-poll; shorter polls let a step timeout land close to its deadline.
_MAX_POLL_S = 5
#: In a step batch, the pause before the next Receive once one brought output (``run_batch``).
_BATCH_POLL_GAP_S = 0.2


def is_loopback(address: str) -> bool:
    """True for 127/8, ::1 and ``localhost``: traffic that must never go through a proxy."""
    if address.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class WinRMTransport:
    """A PSRP session to one host over WinRM (HTTP with message encryption, or HTTPS)."""

    name = "winrm"

    def __init__(self, host: HostConfig) -> None:
        self.host = host
        self.options = host.winrm
        self._wsman: Any = None
        self._pool: Any = None
        self._broken = False
        #: the batch function failed in this session: steps go one pipeline each (``run_batch``)
        self._batch_refused = False
        #: True when collectors are called as the iisfleet JEA module's functions (decided once per session).
        self.jea = bool(host.winrm.jea)
        #: what the core loader reported in the current runspace pool (None: not loaded in this pool yet)
        self.core_status: CoreStatus | None = None
        #: the collectors the runner plans to run (``plan``); None: load the whole core
        self._planned: frozenset[str] | None = None
        #: the core files the current pool's loader compiled (None: all of them)
        self.core_files: frozenset[str] | None = None
        self._cancelled = threading.Event()  # set by cancel() from another thread
        # Not for concurrency (pypsrp must not be shared) but to fail loudly if someone tries.
        self._driver = threading.Lock()

    # ------------------------------------------------------------------ session
    def wsman_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``pypsrp.wsman.WSMan``, secrets revealed only here."""
        opts = self.options
        cred = self.host.credential
        https = opts.scheme == "https"
        encryption = opts.encryption
        if opts.auth == "basic" and not https:
            if not opts.allow_insecure_basic:
                raise TransportError(
                    f"Basic authentication over plain HTTP to {self.host.address} refused",
                    host=self.host.name, category="config",
                    explanation="Basic sends the password readable on the wire: use scheme https, or set "
                    "allow_insecure_basic for a lab that really needs it")
            encryption = "never"  # Basic cannot seal messages; the user opted in explicitly
        if opts.auth == "certificate" and not https:
            raise TransportError("certificate authentication needs HTTPS", host=self.host.name,
                                 category="config", explanation="client certificates are a TLS feature: "
                                 "use scheme https")
        cert_validation: bool | str = bool(opts.cert_validation)
        if opts.cert_validation and opts.ca_bundle:
            cert_validation = opts.ca_bundle
        operation_timeout = max(1, int(math.ceil(opts.operation_timeout)))
        # The server may hold a Receive for the whole operation timeout; the HTTP read must outlast it.
        read_timeout = max(int(math.ceil(opts.read_timeout)), operation_timeout + 5)
        kwargs: dict[str, Any] = {
            "server": self.host.address,
            "port": opts.effective_port,
            "ssl": https,
            "path": opts.path,
            "auth": opts.auth,
            "cert_validation": cert_validation,
            "encryption": encryption,
            "connection_timeout": max(1, int(math.ceil(opts.connect_timeout))),
            "operation_timeout": operation_timeout,
            "read_timeout": read_timeout,
            # HTTP(S)_PROXY from the environment would route loopback/lab traffic into a proxy.
            "no_proxy": is_loopback(self.host.address),
            "negotiate_send_cbt": opts.send_cbt,
            "negotiate_service": opts.negotiate_service,
        }
        if opts.negotiate_hostname_override:
            kwargs["negotiate_hostname_override"] = opts.negotiate_hostname_override
        if cred is not None:
            if cred.username:
                kwargs["username"] = cred.username
            if cred.password is not None and opts.auth != "certificate":
                kwargs["password"] = cred.password.reveal()
            if opts.auth == "certificate":
                kwargs["certificate_pem"] = cred.certificate_pem
                kwargs["certificate_key_pem"] = cred.certificate_key_pem
        return kwargs

    def _classify(self, exc: BaseException, stage: str) -> TransportError:
        opts = self.options
        return winrm_error(exc, host=self.host.name, stage=stage,  # type: ignore[arg-type]
                           scheme=opts.scheme, encryption=opts.encryption, auth=opts.auth,
                           address=self.host.address, port=opts.effective_port)

    def _connect(self) -> None:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        self._broken = False
        opts = self.options
        log.debug("opening a WinRM session to %s (%s://%s:%d, auth %s, encryption %s, endpoint %s)", self.host.name,
                  opts.scheme, self.host.address, opts.effective_port, opts.auth, opts.encryption,
                  opts.configuration_name)
        self._wsman = WSMan(**self.wsman_kwargs())
        self._pool = RunspacePool(self._wsman, configuration_name=self.options.configuration_name)
        self.core_status = None  # a new pool is a new process on the host: the core must be loaded again
        self._pool.open()
        if not self.jea and _custom_endpoint(self.options.configuration_name):
            self.jea = self._endpoint_has_iisfleet_functions()

    def _endpoint_has_iisfleet_functions(self) -> bool:
        """Whether the endpoint shows the iisfleet module's functions (``Get-Command`` is visible in every
        RestrictedRemoteServer session). A command, not a script: a JEA endpoint would refuse a script."""
        from pypsrp.powershell import PowerShell

        from toolkit.jea import function_name

        probe = PowerShell(self._pool)
        probe.add_cmdlet("Get-Command").add_parameter("Name", function_name("Get-HostFact"))
        try:
            output = probe.invoke()
        except Exception as exc:  # an endpoint that cannot even list commands is treated as a normal one
            log.debug("JEA detection on %s failed: %s", self.host.name, type(exc).__name__)
            return False
        found = bool(output) and not probe.had_errors
        log.debug("endpoint %s on %s %s the iisfleet functions", self.options.configuration_name, self.host.name,
                  "shows" if found else "does not show")
        return found

    def _teardown(self) -> None:
        pool, wsman = self._pool, self._wsman
        self._pool = self._wsman = None
        if pool is not None:
            try:
                pool.close()
            except Exception as exc:  # a dead session cannot be closed politely; that is fine
                log.debug("closing the runspace pool on %s failed: %s", self.host.name, type(exc).__name__)
        if wsman is not None:
            try:
                wsman.close()
            except Exception:
                pass

    def open(self) -> None:
        with self._guard():
            self._open_with_retry()

    def _open_with_retry(self) -> None:
        try:
            self._connect()
        except TransportError:
            self._teardown()
            raise
        except Exception as exc:
            self._teardown()
            if not (is_dropped_connection(exc) or is_quota_fault(exc)):
                raise self._classify(exc, "open") from None
            log.info("session to %s dropped while opening (%s); rebuilding once", self.host.name,
                     type(exc).__name__)
            try:
                self._connect()
            except Exception as again:
                self._teardown()
                raise self._classify(again, "open") from None

    def close(self) -> None:
        self._teardown()

    def plan(self, collector_ids: Iterable[str]) -> None:
        """Load only the core files these collectors need (``toolkit.transports.core``)."""
        self._planned = frozenset(collector_ids)

    def cancel(self) -> None:
        """From any thread: the running pipeline is stopped at its next poll (at most ``_MAX_POLL_S``)."""
        self._cancelled.set()

    def _guard(self) -> "_Guard":
        return _Guard(self._driver, self.host.name)

    # ------------------------------------------------------------------ running
    def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float,
                   on_output: OutputSink | None = None) -> ScriptOutput:
        with self._guard():
            deadline = time.monotonic() + max(0.0, timeout)
            if self._pool is None or self._broken:
                self._teardown()
                self._open_with_retry()
            try:
                return self._run(script, parameters, deadline, on_output)
            except HostError:  # already classified (TransportError, environment)
                raise
            except Exception as exc:
                # A streamed step is not run again from its start here: its caller resumes it from what
                # it received (toolkit.transports.base, ``on_output``).
                if (not (is_dropped_connection(exc) or is_quota_fault(exc)) or time.monotonic() >= deadline
                        or on_output is not None):
                    self._broken = True
                    raise self._classify(exc, "run") from None
                log.info("session to %s failed mid-run (%s); rebuilding once", self.host.name,
                         type(exc).__name__)
            self._teardown()
            try:
                self._connect()
                return self._run(script, parameters, deadline)
            except HostError:  # already classified (TransportError, environment)
                raise
            except Exception as exc:
                self._broken = True
                raise self._classify(exc, "run") from None

    def _run(self, script: str, parameters: dict[str, Any], deadline: float,
             on_output: OutputSink | None = None) -> ScriptOutput:
        if self.jea:
            return self._invoke_function(script, parameters, deadline, on_output)
        return self._invoke(script, parameters, deadline, on_output)

    def _invoke(self, script: str, parameters: dict[str, Any], deadline: float,
                on_output: OutputSink | None = None) -> ScriptOutput:
        bundled = bundled_collector(script) if self.options.session_functions else None
        if core_lacks(self.core_status, self.core_files, script):  # outside the plan: a new pool, whole core
            log.info("%s needs more of the core than this session loaded; opening a new session", self.host.name)
            self._planned = None
            self._teardown()
            self._connect()
        if (bundled is not None or uses_core(script)) and self.core_status is None:
            self.core_files = core_files_to_load(self._planned, script)
            loader_parameters = core_loader_parameters(functions=bundled is not None, files=self.core_files)
            if bundled is None or on_output is not None:
                self._load_core(self._invoke_script(core_loader(), loader_parameters, deadline))
            else:  # the step rides with the loader: one pipeline, its output compressed
                loader_parameters["Step"] = [_batch_step(script, parameters)]
                answered = self._alone(script, parameters, deadline, loader_parameters=loader_parameters)
                if answered is not None:
                    return answered
        if bundled is not None and self.core_status is not None and self.core_status.functions:
            if on_output is None and not self._batch_refused:  # its output comes back compressed
                answered = self._alone(script, parameters, deadline)
                if answered is not None:
                    return answered
            return self._invoke_command(session_function_name(bundled.id), parameters, deadline, on_output)
        return self._invoke_script(script, parameters, deadline, on_output)

    def _load_core(self, loader: ScriptOutput) -> None:
        self.core_status = parse_loader_output(loader, host=self.host.name)
        log.debug("core on %s: loaded %s, compiled %s in %d ms, functions %s, error %s", self.host.name,
                  self.core_status.loaded, self.core_status.compiled, self.core_status.compile_ms,
                  self.core_status.functions, self.core_status.error)

    def _alone(self, script: str, parameters: dict[str, Any], deadline: float, *,
               loader_parameters: dict[str, Any] | None = None) -> ScriptOutput | None:
        """One bundled step through the batch protocol (so its output comes back compressed): a batch of one,
        or inside the loader's pipeline when ``loader_parameters`` (with its ``Step``) are given. Its output,
        or None when the batch function did not answer for it (the caller calls the step's own function); a
        timeout or a stop is raised as from any script."""
        from pypsrp.powershell import PowerShell

        got: list[BatchResult] = []

        def keep(_position: int, outcome: BatchResult) -> None:
            got.append(outcome)

        timeout = max(0.0, deadline - time.monotonic())
        if loader_parameters is None:
            self._batch([BatchCall(script, parameters, timeout)], keep)
        else:
            ps = PowerShell(self._pool)
            ps.add_script(core_loader(), use_local_scope=True)
            ps.add_parameters(loader_parameters)
            status: list[str] = []
            self._drive(ps, [timeout], keep, status)
            self._raise_if_scripts_refused(ps)
            self._load_core(ScriptOutput(stdout="\n".join(status), errors=tuple(_error_text(r) for r in ps.streams.error),
                                         had_errors=bool(ps.had_errors)))
        if got and isinstance(got[0], TransportError):
            raise got[0]
        return got[0] if got else None

    def _invoke_script(self, script: str, parameters: dict[str, Any], deadline: float,
                       on_output: OutputSink | None = None) -> ScriptOutput:
        from pypsrp.powershell import PowerShell

        ps = PowerShell(self._pool)
        # A local scope, so a collector's variables (buffers, lists) die with it instead of living on in
        # the pooled runspace while later steps run. Types Add-Type loaded are per process, not per scope.
        ps.add_script(script, use_local_scope=True)
        if parameters:
            ps.add_parameters(parameters)
        return self._collect(ps, deadline, on_output)

    def _invoke_function(self, script: str, parameters: dict[str, Any], deadline: float,
                         on_output: OutputSink | None = None) -> ScriptOutput:
        """JEA: call the exported module's function for the collector ``script`` is; never send the script."""
        from toolkit.collectors import parse_marker
        from toolkit.jea import DEFAULT_ENDPOINT, function_name

        marker = parse_marker(script)
        if marker is None or marker[0].startswith("_"):
            raise TransportError(
                f"endpoint {self.options.configuration_name} is a JEA endpoint and this step is not an iisfleet "
                "collector", host=self.host.name, category="config",
                explanation="JEA endpoints run only the functions of their role: use the Microsoft.PowerShell "
                f"endpoint for this, or the iisfleet collectors through the '{DEFAULT_ENDPOINT}' endpoint")
        return self._invoke_command(function_name(marker[0]), parameters, deadline, on_output)

    def _invoke_command(self, command: str, parameters: dict[str, Any], deadline: float,
                        on_output: OutputSink | None = None) -> ScriptOutput:
        """One command (a function of the session or of the JEA module) with named parameters: no script."""
        from pypsrp.powershell import PowerShell

        ps = PowerShell(self._pool)
        ps.add_cmdlet(command)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        return self._collect(ps, deadline, on_output)

    def _collect(self, ps: Any, deadline: float, on_output: OutputSink | None = None) -> ScriptOutput:
        started = time.monotonic()
        if self._cancelled.is_set():
            raise stopped_on_request(self.host.name, 0.0)
        ps.begin_invoke()
        while ps.state == _RUNNING:
            remaining = deadline - time.monotonic()
            if self._cancelled.is_set():
                self._stop(ps)
                self._broken = True  # the runner closes the session next
                raise stopped_on_request(self.host.name, time.monotonic() - started)
            if remaining <= 0:
                self._stop(ps)
                timeout = TransportError(
                    f"the script did not finish within its {deadline - started:.0f} s budget (stopped after "
                    f"{time.monotonic() - started:.0f} s)", host=self.host.name,
                    category="timeout", explanation="the collector is slower than its step timeout: raise the "
                    "step's timeout in the playbook or narrow its parameters (time window, caps)")
                # What arrived before the stop: the finished parts of a collector that streams.
                timeout.partial_stdout = "\n".join(_as_text(o) for o in ps.output)
                raise timeout
            # WSMan OperationTimeout has whole-second resolution; never ask for less than 1 s.
            poll = max(1, min(_MAX_POLL_S, int(self.options.operation_timeout), int(math.ceil(remaining))))
            ps.poll_invoke(timeout=poll)
            self._check_size(ps.output)
            _hand_over(ps.output, on_output)

        output = ps.output
        self._check_size(output)
        _hand_over(output, on_output)
        self._raise_if_scripts_refused(ps)
        errors = tuple(_error_text(record) for record in ps.streams.error)
        return ScriptOutput(stdout="\n".join(_as_text(o) for o in output), errors=errors,
                            had_errors=bool(ps.had_errors), duration_s=time.monotonic() - started)

    # ------------------------------------------------------------------ batches
    def can_batch(self, scripts: list[str]) -> bool:
        """Whether ``run_batch`` can run these scripts in one pipeline now: an open session whose loader
        defined the session functions (so also the batch function), every script a bundled collector whose
        core files this session loaded (one outside them goes alone, to a session with the whole core)."""
        return (not self.jea and not self._broken and not self._batch_refused and self._pool is not None
                and self.options.session_functions and self.core_status is not None and self.core_status.functions
                and all(bundled_collector(script) is not None
                        and not core_lacks(self.core_status, self.core_files, script) for script in scripts))

    def run_batch(self, calls: list[BatchCall], on_result: Callable[[int, BatchResult], None]) -> None:
        """Run bundled collectors one after another in one pipeline (``Invoke-IisFleetStepBatch``), each
        within its own ``timeout`` counted from the end of the step before it. Each step's result goes to
        ``on_result(position, result)`` once, as it arrives: its output, or the failure that ended it (a step
        that overruns stops the pipeline and gets the timeout). Steps that never ran get no call, nor does
        any step when the pipeline itself fails or the connection drops: the caller runs those with
        ``run_script``, which rebuilds the session and retries like any step. An exception ``on_result``
        raises stops the pipeline and propagates. Only ``can_batch`` scripts may be given."""
        with self._guard():
            try:
                self._batch(calls, on_result)
            except _HandlerFailed as failed:
                raise failed.__cause__ from None  # type: ignore[misc]
            except HostError:
                raise
            except Exception as exc:  # a dropped connection, a fault: the unfinished steps run on their own
                self._broken = True
                log.info("batch on %s failed (%s: %s); its unfinished steps run one by one", self.host.name,
                         type(exc).__name__, self._classify(exc, "run").message)

    def _batch(self, calls: list[BatchCall], on_result: Callable[[int, BatchResult], None]) -> None:
        from pypsrp.powershell import PowerShell

        ps = PowerShell(self._pool)
        ps.add_cmdlet(STEP_BATCH_FUNCTION).add_parameter("Step", [_batch_step(call.script, call.parameters)
                                                                   for call in calls])
        results = self._drive(ps, [call.timeout for call in calls], on_result)
        if ps.had_errors and not any(result is not None for result in results):
            # The batch function itself failed (not defined, refused by the endpoint): never batch again
            # in this session; its steps run one pipeline each.
            self._batch_refused = True
            log.info("batch on %s failed before any step ended: %s", self.host.name,
                     "; ".join(_error_text(r) for r in ps.streams.error[:2])[:300] or "no message")

    def _drive(self, ps: Any, timeouts: list[float], on_result: Callable[[int, BatchResult], None],
               other_lines: list[str] | None = None) -> list[BatchResult]:
        """Run ``ps`` (a step batch, or the loader running its first steps) to its end, handing each step's
        result to ``on_result`` as it is decided; every step's result (None: it got none). Lines that are not
        batch lines go to ``other_lines`` (the loader's status). A step is timed from the end of the one before it."""
        reader = BatchReader(len(timeouts), max_chars=MAX_OUTPUT_CHARS, host=self.host.name)

        def deliver(position: int, outcome: BatchResult) -> None:
            reader.results[position] = outcome
            try:
                on_result(position, outcome)
            except BaseException as exc:
                if ps.state == _RUNNING:
                    self._stop(ps)
                raise _HandlerFailed() from exc

        if self._cancelled.is_set():
            deliver(0, stopped_on_request(self.host.name, 0.0))
            return reader.results
        # The step running is the first without a result; it began when the one before it ended.
        current, current_started = 0, time.monotonic()
        ps.begin_invoke()
        while True:
            lines = _take_output(ps)
            for line in lines:
                decided = reader.feed(line)  # None for a step already decided
                if decided is not None:
                    deliver(*decided)
                    if isinstance(decided[1], TransportError):  # output past the cap: stop sending it
                        self._stop(ps)
                        self._broken = True
                        return reader.results
                elif other_lines is not None and not line.startswith(BATCH_MARKER):
                    other_lines.append(line)
            if current < len(timeouts) and reader.results[current] is not None:
                while current < len(timeouts) and reader.results[current] is not None:
                    current += 1
                current_started = time.monotonic()
            if ps.state != _RUNNING or current == len(timeouts):
                break
            elapsed = time.monotonic() - current_started
            if self._cancelled.is_set():
                self._stop(ps)
                self._broken = True
                deliver(current, stopped_on_request(self.host.name, elapsed))
                return reader.results
            if elapsed >= timeouts[current]:
                self._stop(ps)
                timeout = TransportError(
                    f"the script did not finish within its {timeouts[current]:.0f} s budget (stopped after "
                    f"{elapsed:.0f} s)", host=self.host.name, category="timeout",
                    explanation="the collector is slower than its step timeout: raise the step's timeout in the "
                    "playbook or narrow its parameters (time window, caps)")
                timeout.partial_stdout = reader.partial(current)  # the parts it finished (a streaming collector)
                deliver(current, timeout)
                return reader.results
            remaining = timeouts[current] - elapsed
            if lines:
                # A Receive answers as soon as any output is there, and each costs about 3 KB: let steps
                # that end close together come back in one.
                time.sleep(min(_BATCH_POLL_GAP_S, max(0.0, remaining)))
            poll = max(1, min(_MAX_POLL_S, int(self.options.operation_timeout), int(math.ceil(remaining))))
            ps.poll_invoke(timeout=poll)
        ending = time.monotonic() + _MAX_POLL_S * 2
        while ps.state == _RUNNING:  # every step ended: only the pipeline's own end is still to come
            if time.monotonic() > ending:
                self._stop(ps)
                break
            ps.poll_invoke(timeout=max(1, min(_MAX_POLL_S, int(self.options.operation_timeout))))
            for line in _take_output(ps):
                if other_lines is not None and not line.startswith(BATCH_MARKER):
                    other_lines.append(line)
        return reader.results

    def _raise_if_scripts_refused(self, ps: Any) -> None:
        """A NoLanguage endpoint (JEA) refused the script: an environment error that says so."""
        if any(str(getattr(r, "fq_error", "") or "").startswith("ScriptsNotAllowed") for r in ps.streams.error):
            from toolkit.jea.rights import RIGHTS

            raise HostError(f"endpoint {self.options.configuration_name} runs in NoLanguage mode and refused the "
                            "collector script (ScriptsNotAllowed)", host=self.host.name, category="environment",
                            explanation=RIGHTS["no-language"].fix)

    def _stop(self, ps: Any) -> None:
        """Best-effort Ctrl-C of a pipeline that ran out of time; a failure marks the session for rebuild."""
        try:
            ps.stop()
        except Exception as exc:
            log.debug("stopping the pipeline on %s failed: %s", self.host.name, type(exc).__name__)
            self._broken = True

    def _check_size(self, output: list[Any]) -> None:
        if sum(len(_as_text(o)) for o in output) > MAX_OUTPUT_CHARS:
            self._broken = True
            raise TransportError(f"the host sent more than {MAX_OUTPUT_CHARS} characters of output",
                                 host=self.host.name, category="protocol",
                                 explanation="output beyond the controller's cap was refused: the "
                                 "collector's own caps did not hold")

    # ------------------------------------------------------------------ checks
    def max_envelope_size(self) -> int:
        """The host's ``MaxEnvelopeSizekb`` in bytes (a WSMan Get on the config); adopts it for this session."""
        with self._guard():
            if self._wsman is None:
                self._open_with_retry()
            try:
                self._wsman.update_max_payload_size()
            except Exception as exc:
                raise self._classify(exc, "run") from None
            return int(self._wsman.max_envelope_size)


class _HandlerFailed(Exception):
    """Carries (as ``__cause__``) what a batch's ``on_result`` raised past the transport's own handling."""


def _custom_endpoint(configuration_name: str) -> bool:
    """A configuration other than the ones Windows ships (``microsoft.powershell``, ``…32``, ``…workflow``)."""
    return not configuration_name.lower().startswith("microsoft.")


def _hand_over(output: list[Any], on_output: OutputSink | None) -> None:
    """Give the output objects received so far to ``on_output`` and forget them (a streamed step keeps
    no more than one Receive's objects in memory)."""
    if on_output is None:
        return
    while output:
        on_output(_as_text(output.pop(0)))


def _batch_step(script: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """One step as the batch function takes it: its collector's session function and its parameters."""
    return {"Name": session_function_name(bundled_collector(script).id),  # type: ignore[union-attr]
            "Parameters": dict(parameters)}


def _take_output(ps: Any) -> list[str]:
    """The output objects received so far, as text, removed from ``ps`` (a batch keeps none twice)."""
    taken = [_as_text(o) for o in ps.output]
    del ps.output[:]
    return taken


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _error_text(record: Any) -> str:
    """A readable line for a PSRP ErrorRecord (its ToString, else its exception message)."""
    text = ""
    try:
        text = str(record)
    except Exception:
        pass
    if not text or text == "None":
        exception = getattr(record, "exception", None)
        text = str(getattr(exception, "message", "") or getattr(record, "reason", "") or "error record")
    return text


class _Guard:
    def __init__(self, lock: threading.Lock, host: str) -> None:
        self._lock = lock
        self._host = host

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(f"WinRM session to {self._host} used by two threads at once (pypsrp is not "
                               "thread-safe)")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
