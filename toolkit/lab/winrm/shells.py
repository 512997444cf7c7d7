"""The two kinds of WinRS shell a WinRM client creates: PowerShell (PSRP) and ``cmd``.

A shell outlives HTTP connections (pypsrp may reconnect), so shells belong to the host. Each shell has
one lock: psrpcore is not thread-safe, and a client may poll one pipeline while sending to another.
Receive long-polls: it waits for output up to the request's ``OperationTimeout`` and then answers with
the 0x80338029 fault, which clients treat as "poll again".

The host's answer is computed on a worker thread (a model may read files), and a script "runs" until
``ScriptAnswer.delay_s`` has passed since its Command arrived.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from psrpcore import PSRPCoreError, PSRPPayload, ServerPipeline, ServerRunspacePool, StreamType
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, ErrorRecord, NETException, PSInvocationState

from toolkit.lab.backend import ConnectionCut, HostBackend, ScriptAnswer
from toolkit.lab.winrm import console, soap
from toolkit.lab.winrm.endpoints import EndpointSession
from toolkit.lab.winrm.soap import NS, Request, SoapError

_SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
_SIGNAL_CTRL_C = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
# MS-PSRP spells this one "crtl_c"; accept both spellings.
_PS_SIGNAL_CTRL_C = ("powershell/signal/crtl_c", "powershell/signal/ctrl_c")


class ScriptRun:
    """One script answer being "executed": the backend call runs on a worker thread.

    An answer in parts (``ScriptAnswer.then``, a step batch) goes on computing its next part as soon as one
    is done, whether or not the client is receiving, as a host runs its script regardless of the Receives:
    the parts done so far wait in :meth:`take_parts`."""

    def __init__(self, compute: Any) -> None:
        self.started = time.monotonic()
        self.answer: Any = None  # the last part, once the script has finished
        self.finished = threading.Event()
        #: set when a part is done and not yet taken (or the script finished)
        self.progress = threading.Event()
        self._parts: list[Any] = []
        self._parts_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(compute,), daemon=True, name="lab-script")
        self._thread.start()

    def _run(self, compute: Any) -> None:
        started = self.started
        while True:
            try:
                answer = compute()
            except Exception as exc:  # noqa: BLE001 - a model bug becomes the host's error, not a dead thread
                answer = ScriptAnswer(error=f"lab backend failed: {type(exc).__name__}: {exc}")
            delay = getattr(answer, "delay_s", 0.0) or 0.0
            remaining = started + delay - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
            following = getattr(answer, "then", None)
            with self._parts_lock:
                self._parts.append(answer)
                if following is None:
                    self.answer = answer
                    self.finished.set()
                self.progress.set()
            if following is None:
                return
            compute, started = following, time.monotonic()

    def take_parts(self) -> list[Any]:
        """The parts done since the last call, in order (the last one has no ``then`` once finished)."""
        with self._parts_lock:
            parts, self._parts = self._parts, []
            if not self.finished.is_set():
                self.progress.clear()
        return parts


class Shell:
    shell_id: str
    resource_uri: str

    def __init__(self, shell_id: str, resource_uri: str, owner: str, client_ip: str) -> None:
        self.shell_id = shell_id
        self.resource_uri = resource_uri
        self.owner = owner
        self.client_ip = client_ip
        self.lock = threading.Condition()
        self.created = time.monotonic()

    def shell_xml(self, *, input_streams: str, output_streams: str) -> str:
        seconds = int(time.monotonic() - self.created)
        return (
            f'<rsp:Shell xmlns:rsp="{NS["rsp"]}"><rsp:ShellId>{self.shell_id}</rsp:ShellId>'
            f"<rsp:ResourceUri>{escape(self.resource_uri)}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(self.owner)}</rsp:Owner><rsp:ClientIP>{escape(self.client_ip)}</rsp:ClientIP>"
            "<rsp:ProcessId>4242</rsp:ProcessId><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{input_streams}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{output_streams}</rsp:OutputStreams>"
            f"<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</rsp:Locale>"
            f"<rsp:DataLocale>en-US</rsp:DataLocale><rsp:CompressionMode>NoCompression</rsp:CompressionMode>"
            f"<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>"
            f"<rsp:BufferMode>Block</rsp:BufferMode><rsp:State>Connected</rsp:State>"
            f"<rsp:ShellRunTime>P0DT0H0M{seconds}S</rsp:ShellRunTime>"
            f"<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
        )

    def create_response_body(self) -> str:
        raise NotImplementedError

    def get_xml(self) -> str:
        raise NotImplementedError

    def command(self, request: Request) -> str:
        raise NotImplementedError

    def send(self, request: Request) -> str:
        raise NotImplementedError

    def receive(self, request: Request) -> str:
        raise NotImplementedError

    def signal(self, request: Request) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _stream_elements(request: Request) -> list[tuple[str, str | None, bytes, bool]]:
    """(stream name, CommandId, data, end) for each ``rsp:Send/rsp:Stream``."""
    streams = []
    for node in request.body.findall("rsp:Send/rsp:Stream", NS):
        try:
            data = base64.b64decode((node.text or "").strip())
        except ValueError as exc:
            raise SoapError(soap.CODE_INVALID_ARGS, f"Send stream is not base64: {exc}", sender=True) from exc
        end = node.attrib.get("End", "").lower() == "true"
        streams.append((node.attrib.get("Name", "stdin"), node.attrib.get("CommandId"), data, end))
    return streams


def _receive_target(request: Request) -> str | None:
    desired = request.body.find("rsp:Receive/rsp:DesiredStream", NS)
    if desired is None:
        raise SoapError(soap.CODE_INVALID_ARGS, "Receive without DesiredStream.", sender=True)
    command_id = desired.attrib.get("CommandId")
    return command_id.upper() if command_id else None


def _long_poll_budget(request: Request) -> float:
    # Answer a little before the client's own OperationTimeout so the fault arrives before its HTTP
    # read timeout would fire.
    return max(0.05, request.operation_timeout_s - 0.25)


# --------------------------------------------------------------------------------------------- PSRP


@dataclass
class _PipelineState:
    pipeline: ServerPipeline
    run: ScriptRun | None = None
    finalised: bool = False
    out_lines: bool = False  # execute_ps shape: Out-String -Stream after Invoke-Expression
    #: a transfer fault (toolkit.lab.model.transfer): the output was written and the script hangs (stall),
    #: or the connection is cut once that output was received (drop)
    hanging: bool = False
    cut: bool = False
    #: some parts of the answer were written and the script goes on (``ScriptAnswer.then``)
    partial: bool = False


def _plain(value: Any) -> Any:
    """psrpcore's deserialised values (PSString, PSInt, PSDict, ...) as plain Python values."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def extract_script(metadata: Any) -> tuple[str, dict[str, Any], bool]:
    """The script and named parameters of a CreatePipeline, in the shapes pypsrp sends.

    * ``add_script(text).add_parameters({...})``: a script command;
    * ``Client.execute_ps``: ``Invoke-Expression -Command <text> | Out-String -Stream``, possibly
      after ``New-Item env:...`` statements when an environment was given;
    * ``add_cmdlet(name)``: the cmdlet name is handed to the backend as the script text.
    Positional arguments (``add_argument``) are passed as ``"0"``, ``"1"``, ... keys.
    """
    commands = list(getattr(metadata, "commands", []) or [])
    if not commands:
        raise ValueError("the pipeline has no commands")
    index = next(
        (
            i
            for i, c in enumerate(commands)
            if c.is_script or str(c.command_text).lower() in ("invoke-expression", "iex")
        ),
        0,
    )
    chosen = commands[index]
    parameters: dict[str, Any] = {}
    positional = 0
    for name, value in chosen.parameters:
        if name is None:
            parameters[str(positional)] = _plain(value)
            positional += 1
        else:
            parameters[str(name).lstrip("-")] = _plain(value)
    if chosen.is_script:
        return str(chosen.command_text), parameters, False
    if str(chosen.command_text).lower() in ("invoke-expression", "iex"):
        script = parameters.pop("Command", None) or parameters.pop("0", "")
        out_lines = any(str(c.command_text).lower() == "out-string" for c in commands[index + 1 :])
        return str(script), {}, out_lines
    return str(chosen.command_text), parameters, False


def _local_scope(metadata: Any) -> bool | None:
    """The ``UseLocalScope`` flag of the pipeline's script command (None when the client left it unset)."""
    for command in getattr(metadata, "commands", []) or []:
        if command.is_script:
            return getattr(command, "use_local_scope", None)
    return None


def _error_record(message: str, error_id: str, category: ErrorCategory,
                  error_type: str = "System.Management.Automation.RuntimeException") -> ErrorRecord:
    exception = NETException(Message=message)
    exception.PSObject.type_names.insert(0, error_type)
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=ErrorCategoryInfo(Category=category, Reason=error_type.rsplit(".", 1)[-1]),
        FullyQualifiedErrorId=error_id,
    )


class PowerShellShell(Shell):
    """A Runspace Pool behind a WinRS shell (resource URI ``.../powershell/<configuration>``)."""

    def __init__(self, request: Request, backend: HostBackend, owner: str, client_ip: str,
                  session: EndpointSession | None = None) -> None:
        shell = request.body.find("rsp:Shell", NS)
        creation = shell.find("pwsh:creationXml", NS) if shell is not None else None
        if shell is None or creation is None or not (creation.text or "").strip():
            raise SoapError(
                soap.CODE_INVALID_ARGS, "Create for a PowerShell shell without creationXml.", sender=True
            )
        shell_id = shell.attrib.get("ShellId") or str(uuid.uuid4())
        super().__init__(shell_id.upper(), request.resource_uri, owner, client_ip)
        self.backend = backend
        self.session = session
        self.pool = ServerRunspacePool()
        self.pipelines: dict[str, _PipelineState] = {}
        self.outgoing: dict[str | None, list[bytes]] = {}
        with self.lock:
            self._feed(base64.b64decode(creation.text or ""), None)

    # psrpcore plumbing -------------------------------------------------------------------------

    def _feed(self, data: bytes, pipeline_id: str | None) -> None:
        try:
            self.pool.receive_data(
                PSRPPayload(data, StreamType.default, uuid.UUID(pipeline_id) if pipeline_id else None)
            )
            while True:
                event = self.pool.next_event()
                if event is None:
                    break
                if type(event).__name__ == "CreatePipelineEvent":
                    self._start_pipeline(str(event.pipeline_id).upper())
        except PSRPCoreError as exc:
            raise SoapError(soap.CODE_INVALID_ARGS, f"PSRP error: {exc}", sender=True) from exc
        self._drain()

    def _drain(self) -> None:
        while True:
            payload = self.pool.data_to_send(32768)
            if payload is None:
                break
            target = str(payload.pipeline_id).upper() if payload.pipeline_id else None
            self.outgoing.setdefault(target, []).append(payload.data)
        self.lock.notify_all()

    def _start_pipeline(self, pipeline_id: str) -> None:
        state = self.pipelines[pipeline_id]
        metadata = state.pipeline.metadata
        state.pipeline.start()
        if self.session is not None:
            state.run = ScriptRun(self.session.route(metadata, self.backend))
            return
        try:
            script, parameters, state.out_lines = extract_script(metadata)
        except ValueError as exc:
            answer = ScriptAnswer(error=str(exc))
            state.run = ScriptRun(lambda: answer)
            return
        backend = self.backend
        record = getattr(backend, "record_scope", None)
        if record is not None:
            record(script, _local_scope(metadata))
        state.run = ScriptRun(lambda: backend.answer(script, parameters))

    def _finalise(self, state: _PipelineState) -> None:
        """Write a finished script's answer into its pipeline (once)."""
        if state.finalised or state.run is None:
            return
        parts = [part or ScriptAnswer(error="no answer") for part in state.run.take_parts()]
        if not parts:
            return
        pipeline = state.pipeline
        if pipeline.state != PSInvocationState.Running:
            state.finalised = True
            return  # stopped by the client meanwhile
        for part in parts:
            for item in part.output:
                if state.out_lines:
                    for line in str(item).splitlines() or [""]:
                        pipeline.write_output(line)
                else:
                    pipeline.write_output(item)
        answer = parts[-1]
        if answer.then is not None:  # the script goes on computing its next part
            state.partial = True
            self._drain()
            return
        state.finalised = True
        if answer.stall_s > 0 or answer.drop_connection:
            state.hanging, state.cut = True, answer.drop_connection  # the pipeline stays Running
            self._drain()
            return
        for message in answer.non_terminating_errors:
            pipeline.write_error(
                NETException(Message=message),
                ErrorCategoryInfo(Category=ErrorCategory.NotSpecified, Reason="WriteErrorException"),
                fully_qualified_error_id="Microsoft.PowerShell.Commands.WriteErrorException",
            )
        if answer.error is not None:
            # psrpcore has no public "fail" call; _change_state emits PipelineState(Failed) with the
            # error record, exactly what a real host sends for an uncaught terminating error.
            pipeline._change_state(
                PSInvocationState.Failed,
                _error_record(answer.error, answer.error_id, ErrorCategory[answer.error_category], answer.error_type),
            )
        else:
            pipeline.complete()
        self._drain()

    # WS-Management operations ------------------------------------------------------------------

    def create_response_body(self) -> str:
        return self.shell_xml(input_streams="stdin pr", output_streams="stdout")

    def get_xml(self) -> str:
        return self.create_response_body()

    def command(self, request: Request) -> str:
        line = request.body.find("rsp:CommandLine", NS)
        if line is None:
            raise SoapError(soap.CODE_INVALID_ARGS, "Command without CommandLine.", sender=True)
        command_id = (line.attrib.get("CommandId") or str(uuid.uuid4())).upper()
        arguments = line.find("rsp:Arguments", NS)
        with self.lock:
            self._forget_finished()
            # The pipeline must exist before its CreatePipeline fragment is fed in (psrpcore).
            pipeline = ServerPipeline(self.pool, uuid.UUID(command_id))
            self.pipelines[command_id] = _PipelineState(pipeline)
            if arguments is not None and (arguments.text or "").strip():
                self._feed(base64.b64decode(arguments.text or ""), command_id)
        return (
            f'<rsp:CommandResponse xmlns:rsp="{NS["rsp"]}"><rsp:CommandId>{command_id}</rsp:CommandId>'
            "</rsp:CommandResponse>"
        )

    def _forget_finished(self) -> None:
        """Drop pipelines whose final state was delivered: a long-lived pool must not grow without bound
        (clients do not always send Signal(terminate) for a finished pipeline)."""
        for pipeline_id, state in list(self.pipelines.items()):
            if state.finalised and not self.outgoing.get(pipeline_id):
                self.pipelines.pop(pipeline_id)
                self.outgoing.pop(pipeline_id, None)
                try:
                    state.pipeline.close()
                except PSRPCoreError:
                    pass

    def send(self, request: Request) -> str:
        with self.lock:
            for _name, command_id, data, _end in _stream_elements(request):
                target = command_id.upper() if command_id else None
                if target is not None and target not in self.pipelines:
                    raise SoapError(soap.CODE_INVALID_ARGS, f"Unknown CommandId {command_id}.", sender=True)
                self._feed(data, target)
        return f'<rsp:SendResponse xmlns:rsp="{NS["rsp"]}"/>'

    def receive(self, request: Request) -> str:
        target = _receive_target(request)
        budget = _long_poll_budget(request)
        deadline = time.monotonic() + budget
        limit = max(4096, request.max_envelope_size * 3 // 4 - 4096)
        with self.lock:
            state = self.pipelines.get(target) if target else None
            if target is not None and state is None:
                raise SoapError(soap.CODE_INVALID_ARGS, f"Unknown CommandId {target}.", sender=True)
            while True:
                if state is not None:
                    self._finalise(state)
                    # Wait for the script to finish before answering, so a quick script's Running
                    # state, output and Completed state arrive in one Receive, as on Windows.
                    if not state.finalised and state.run is not None and not (
                            state.partial and self.outgoing.get(target)):
                        remaining = deadline - time.monotonic()
                        if remaining > 0:
                            self.lock.release()
                            try:
                                state.run.progress.wait(remaining)
                            finally:
                                self.lock.acquire()
                            continue
                queued = self.outgoing.get(target)
                if queued:
                    break
                if state is not None and state.cut:
                    raise ConnectionCut("the lab cuts this connection mid-answer (a transfer fault)")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise soap.operation_timeout()
                self.lock.wait(remaining)
            chunks: list[bytes] = []
            size = 0
            while queued and (not chunks or size + len(queued[0]) <= limit):
                chunk = queued.pop(0)
                chunks.append(chunk)
                size += len(chunk)
            done = state is not None and state.finalised and not queued and not state.hanging
        command_attr = f" CommandId={quoteattr(target)}" if target else ""
        streams = "".join(
            f'<rsp:Stream Name="stdout"{command_attr}>{base64.b64encode(c).decode()}</rsp:Stream>'
            for c in chunks
        )
        command_state = ""
        if target:
            uri = soap.COMMAND_STATE_DONE if done else soap.COMMAND_STATE_RUNNING
            command_state = f'<rsp:CommandState{command_attr} State="{uri}"/>'
        return f'<rsp:ReceiveResponse xmlns:rsp="{NS["rsp"]}">{streams}{command_state}</rsp:ReceiveResponse>'

    def signal(self, request: Request) -> str:
        node = request.body.find("rsp:Signal", NS)
        code_node = request.body.find("rsp:Signal/rsp:Code", NS)
        code = (code_node.text or "").strip() if code_node is not None else ""
        command_id = (node.attrib.get("CommandId") or "").upper() if node is not None else ""
        with self.lock:
            state = self.pipelines.get(command_id)
            if state is not None:
                if code.endswith(_PS_SIGNAL_CTRL_C) or code == _SIGNAL_CTRL_C:
                    if state.pipeline.state == PSInvocationState.Running:
                        state.pipeline.stop()
                        state.finalised = True
                        self._drain()
                elif code == _SIGNAL_TERMINATE:
                    if state.pipeline.state == PSInvocationState.Running:
                        state.pipeline.stop()
                    state.finalised = True
                    self.pipelines.pop(command_id, None)
                    self.outgoing.pop(command_id, None)
                    state.pipeline.close()
                    self.pool.data_to_send()  # discard what stop() queued for a pipeline now gone
                    self.outgoing.pop(command_id, None)
        return f'<rsp:SignalResponse xmlns:rsp="{NS["rsp"]}"/>'


# ---------------------------------------------------------------------------------------------- cmd


@dataclass
class _Process:
    program: console.ConsoleProgram
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    run: ScriptRun | None = None
    result: console.ProcessResult | None = None
    delivered: bool = False


class CmdShell(Shell):
    """A WinRS ``cmd`` shell: each Command is a ``cmd.exe /c`` command line."""

    def __init__(
        self, request: Request, backend: HostBackend, owner: str, client_ip: str, hostname: str
    ) -> None:
        super().__init__(str(uuid.uuid4()).upper(), request.resource_uri, owner, client_ip)
        self.backend = backend
        self.hostname = hostname
        self.processes: dict[str, _Process] = {}

    def create_response_body(self) -> str:
        return self.shell_xml(input_streams="stdin", output_streams="stdout stderr")

    def get_xml(self) -> str:
        return self.create_response_body()

    def _maybe_start(self, process: _Process) -> None:
        if process.run is None and (process.stdin_closed or not process.program.reads_stdin):
            program, stdin, backend = process.program, bytes(process.stdin), self.backend
            process.run = ScriptRun(lambda: console.run_program(program, stdin, backend))
            self.lock.notify_all()

    def command(self, request: Request) -> str:
        command = request.body.find("rsp:CommandLine/rsp:Command", NS)
        if command is None:
            raise SoapError(soap.CODE_INVALID_ARGS, "Command without rsp:Command.", sender=True)
        arguments = [(a.text or "") for a in request.body.findall("rsp:CommandLine/rsp:Arguments", NS)]
        command_line = " ".join([(command.text or "").strip(), *arguments]).strip()
        line = request.body.find("rsp:CommandLine", NS)
        command_id = (
            (line.attrib.get("CommandId") if line is not None else None) or str(uuid.uuid4())
        ).upper()
        process = _Process(console.parse_command_line(command_line, self.hostname))
        with self.lock:
            for finished in [key for key, p in self.processes.items() if p.delivered]:
                del self.processes[finished]
            self.processes[command_id] = process
            self._maybe_start(process)
        return (
            f'<rsp:CommandResponse xmlns:rsp="{NS["rsp"]}"><rsp:CommandId>{command_id}</rsp:CommandId>'
            "</rsp:CommandResponse>"
        )

    def send(self, request: Request) -> str:
        with self.lock:
            for _name, command_id, data, end in _stream_elements(request):
                process = self.processes.get((command_id or "").upper())
                if process is None:
                    raise SoapError(soap.CODE_INVALID_ARGS, f"Unknown CommandId {command_id}.", sender=True)
                if len(process.stdin) + len(data) > console.STDIN_LIMIT:
                    raise SoapError(soap.CODE_INVALID_ARGS, "stdin exceeds the lab's limit.", sender=True)
                process.stdin += data
                process.stdin_closed = process.stdin_closed or end
                self._maybe_start(process)
        return f'<rsp:SendResponse xmlns:rsp="{NS["rsp"]}"/>'

    def receive(self, request: Request) -> str:
        command_id = _receive_target(request)
        deadline = time.monotonic() + _long_poll_budget(request)
        with self.lock:
            process = self.processes.get(command_id or "")
            if process is None:
                raise SoapError(soap.CODE_INVALID_ARGS, f"Unknown CommandId {command_id}.", sender=True)
            while process.run is None or not process.run.finished.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise soap.operation_timeout()
                if process.run is None:
                    self.lock.wait(remaining)
                else:
                    self.lock.release()
                    try:
                        process.run.finished.wait(remaining)
                    finally:
                        self.lock.acquire()
            result = process.run.answer
            assert isinstance(result, console.ProcessResult)
            first_delivery = not process.delivered
            process.delivered = True
        attr = f" CommandId={quoteattr(command_id)}"
        parts = []
        if first_delivery:
            for name, data in (("stdout", result.stdout), ("stderr", result.stderr)):
                if data:
                    parts.append(
                        f'<rsp:Stream Name="{name}"{attr}>{base64.b64encode(data).decode()}</rsp:Stream>'
                    )
        parts.append(f'<rsp:Stream Name="stdout"{attr} End="true"></rsp:Stream>')
        parts.append(f'<rsp:Stream Name="stderr"{attr} End="true"></rsp:Stream>')
        parts.append(
            f'<rsp:CommandState{attr} State="{soap.COMMAND_STATE_DONE}">'
            f"<rsp:ExitCode>{result.exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
        return f'<rsp:ReceiveResponse xmlns:rsp="{NS["rsp"]}">{"".join(parts)}</rsp:ReceiveResponse>'

    def signal(self, request: Request) -> str:
        node = request.body.find("rsp:Signal", NS)
        command_id = (node.attrib.get("CommandId") or "").upper() if node is not None else ""
        with self.lock:
            self.processes.pop(command_id, None)
        return f'<rsp:SignalResponse xmlns:rsp="{NS["rsp"]}"/>'
