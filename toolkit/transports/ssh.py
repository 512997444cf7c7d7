"""SSH transport for Windows OpenSSH, built on paramiko.

Windows OpenSSH runs the exec string through ``cmd.exe`` (8191-character limit) unless its default
shell is PowerShell, so the command is the same short line in both cases: a ``powershell.exe
-EncodedCommand`` bootstrap (``ps_scripts/_ssh_bootstrap.ps1``, owned by the collectors). One bootstrap
process serves the whole connection: each request is one JSON line ``{"script", "parameters", "end"}``
on its stdin, answered by the output lines and then ``<end>{"failed", "errors"}``, where ``end`` is a
fresh random token (host output cannot fake the end of an answer). Parameters are data in that JSON,
never part of the command line. Because the process lives on, the C# core that ``_core_loader.ps1``
compiles before the first collector that needs it stays loaded: once per connection. A step that times
out closes the process; the next step starts a new one (and loads the core again).

There is no JEA over SSH: Just Enough Administration is a WinRM session configuration, and Windows OpenSSH
starts an ordinary ``powershell.exe`` for the account. Least privilege over SSH is a non-administrator
account (docs/windows-setup.md); the JEA endpoint needs the WinRM transport (docs/jea.md).

Host keys are checked against known_hosts by default; an unknown key is refused (category ``tls``: the
host's identity is unverified, see ``toolkit.transports.errors``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import select
import threading
import time
from collections.abc import Iterable
from typing import Any

from toolkit.collectors import core_loader, core_loader_parameters, uses_core
from toolkit.errors import HostError, TransportError
from toolkit.models import HostConfig, ScriptOutput
from toolkit.transports.base import MAX_OUTPUT_CHARS, OutputSink, stopped_on_request
from toolkit.transports.clixml import decode_stderr
from toolkit.transports.core import CoreStatus, core_files_to_load, core_lacks, parse_loader_output
from toolkit.transports.errors import UnknownHostKey, ssh_error

log = logging.getLogger(__name__)

POWERSHELL_PREFIX = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
#: cmd.exe refuses longer command lines.
CMD_LINE_LIMIT = 8191
_MAX_STDERR = 4 * 1024 * 1024


def load_bootstrap() -> str:
    """The bootstrap text: from ``toolkit.collectors.ssh_bootstrap()`` when available, else the bundled file."""
    try:
        from toolkit.collectors import ssh_bootstrap  # type: ignore[attr-defined]
    except ImportError:
        from toolkit.resources import ps_scripts_dir

        return ps_scripts_dir().joinpath("_ssh_bootstrap.ps1").read_text(encoding="utf-8")
    return ssh_bootstrap()


def encoded_command(bootstrap: str) -> str:
    """The exec string: the bootstrap as base64 UTF-16LE, as ``-EncodedCommand`` expects."""
    encoded = base64.b64encode(bootstrap.encode("utf-16-le")).decode("ascii")
    command = POWERSHELL_PREFIX + encoded
    if len(command) > CMD_LINE_LIMIT:
        raise ValueError(f"the SSH bootstrap encodes to {len(command)} characters; cmd.exe accepts "
                         f"{CMD_LINE_LIMIT}: keep ps_scripts/_ssh_bootstrap.ps1 small")
    return command


class _RejectUnknown:
    """paramiko missing-host-key policy: refuse, with an exception the error mapping recognises."""

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise UnknownHostKey(f"host key for {hostname} ({key.get_name()} "
                             f"{key.fingerprint if hasattr(key, 'fingerprint') else ''}) not found in known_hosts")


class _AcceptUnchecked:
    """Accept any key without saving it: only when the inventory turned host_key_checking off."""

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        log.debug("host key checking is off: accepting the key of %s", hostname)


class SSHTransport:
    """One SSH connection to one Windows OpenSSH host; each script runs in its own exec channel."""

    name = "ssh"

    def __init__(self, host: HostConfig, *, bootstrap: str | None = None) -> None:
        self.host = host
        self.options = host.ssh
        self._bootstrap = bootstrap
        self._command: str | None = None
        self._client: Any = None
        self._session: _Session | None = None
        #: what the core loader reported in the current bootstrap process (None: not loaded there yet)
        self.core_status: CoreStatus | None = None
        #: the collectors the runner plans to run (``plan``); None: load the whole core
        self._planned: frozenset[str] | None = None
        #: the core files the current bootstrap process's loader compiled (None: all of them)
        self.core_files: frozenset[str] | None = None
        self._driver = threading.Lock()
        self._cancelled = threading.Event()  # set by cancel() from another thread

    def cancel(self) -> None:
        """From any thread: the running request stops within a few tenths of a second; its bootstrap
        session is closed (sshd then ends the host's PowerShell process)."""
        self._cancelled.set()

    def _classify(self, exc: BaseException) -> TransportError:
        return ssh_error(exc, host=self.host.name, address=self.host.address, port=self.options.port)

    def open(self) -> None:
        import paramiko

        if self._command is None:
            try:
                self._command = encoded_command(self._bootstrap if self._bootstrap is not None
                                                else load_bootstrap())
            except (OSError, ValueError) as exc:
                raise TransportError(f"SSH bootstrap unusable: {exc}", host=self.host.name, category="config",
                                     explanation="the bundled ps_scripts/_ssh_bootstrap.ps1 is missing or too "
                                     "long for cmd.exe") from None
        opts = self.options
        client = paramiko.SSHClient()
        if opts.host_key_checking:
            known_hosts = os.path.expanduser(opts.known_hosts or "~/.ssh/known_hosts")
            if os.path.exists(known_hosts):
                try:
                    client.load_host_keys(known_hosts)
                except Exception as exc:
                    raise TransportError(f"cannot read known_hosts {known_hosts}: {type(exc).__name__}",
                                         host=self.host.name, category="config",
                                         explanation="fix or replace the known_hosts file") from None
            client.set_missing_host_key_policy(_RejectUnknown())
        else:
            client.set_missing_host_key_policy(_AcceptUnchecked())
        cred = self.host.credential
        kwargs: dict[str, Any] = {
            "hostname": self.host.address,
            "port": opts.port,
            "username": cred.username if cred else None,
            "timeout": opts.connect_timeout,
            "banner_timeout": opts.connect_timeout,
            "auth_timeout": opts.connect_timeout,
            "allow_agent": False,
            "look_for_keys": False,
        }
        if cred is not None and cred.key_file:
            kwargs["pkey"] = self._load_key(cred.key_file, cred.password.reveal() if cred.password else None)
        elif cred is not None and cred.password is not None:
            kwargs["password"] = cred.password.reveal()
        log.debug("opening an SSH session to %s (%s:%d as %s, host key checking %s)", self.host.name,
                  self.host.address, opts.port, kwargs["username"], "on" if opts.host_key_checking else "OFF")
        try:
            client.connect(**kwargs)
        except Exception as exc:
            client.close()
            raise self._classify(exc) from None
        self._client = client

    def _load_key(self, key_file: str, passphrase: str | None) -> Any:
        """Load a private key of any type paramiko knows (OpenSSH, PEM RSA/EC), decrypting with the passphrase."""
        import paramiko

        path = os.path.expanduser(key_file)
        try:
            return paramiko.PKey.from_path(path, password=passphrase)
        except (paramiko.PasswordRequiredException, TypeError):  # paramiko 5 raises TypeError for "no password"
            raise TransportError(f"the SSH key {path} is encrypted and no passphrase was given", host=self.host.name,
                                 category="config", explanation="give the credential a password (used as the key's "
                                 "passphrase) or use an unencrypted key") from None
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise TransportError(f"cannot use the SSH key {path}: {type(exc).__name__}: {exc}", host=self.host.name,
                                 category="config", explanation="check the key file's path, permissions and "
                                 "format (OpenSSH or PEM)") from None

    def close(self) -> None:
        self._end_session()
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def plan(self, collector_ids: Iterable[str]) -> None:
        """Load only the core files these collectors need (``toolkit.transports.core``)."""
        self._planned = frozenset(collector_ids)

    def run_script(self, script: str, parameters: dict[str, Any], *, timeout: float,
                   on_output: OutputSink | None = None) -> ScriptOutput:
        if not self._driver.acquire(blocking=False):
            raise RuntimeError(f"SSH session to {self.host.name} used by two threads at once")
        try:
            if self._client is None:
                self.open()
            started = time.monotonic()
            try:
                return self._run(script, parameters, timeout, on_output)
            except HostError:
                raise
            except Exception as exc:
                log.debug("SSH run on %s failed", self.host.name, exc_info=True)
                if not _is_drop(exc) or on_output is not None:  # a streamed step is resumed by its caller
                    raise self._classify(exc) from None
            # One rebuild-and-retry on a dropped connection, as for WinRM; collectors are read-only.
            log.info("SSH connection to %s dropped mid-run; reconnecting once", self.host.name)
            self.close()
            self.open()
            try:
                return self._run(script, parameters, max(0.001, timeout - (time.monotonic() - started)))
            except HostError:
                raise
            except Exception as exc:
                raise self._classify(exc) from None
        finally:
            self._driver.release()

    def _run(self, script: str, parameters: dict[str, Any], timeout: float,
             on_output: OutputSink | None = None) -> ScriptOutput:
        deadline = time.monotonic() + max(0.0, timeout)
        if self._cancelled.is_set():
            raise stopped_on_request(self.host.name, 0.0)
        if self._session is not None and core_lacks(self.core_status, self.core_files, script):
            log.info("%s needs more of the core than this process loaded; starting a new one", self.host.name)
            self._planned = None  # outside the plan: a new process with the whole core
            self._end_session()
        if uses_core(script) and (self._session is None or self.core_status is None):
            self.core_files = core_files_to_load(self._planned, script)
            loader = self._request(core_loader(), core_loader_parameters(files=self.core_files), deadline)
            self.core_status = parse_loader_output(loader, host=self.host.name)
            log.debug("core on %s: loaded %s, compiled %s in %d ms, error %s", self.host.name, self.core_status.loaded,
                      self.core_status.compiled, self.core_status.compile_ms, self.core_status.error)
        return self._request(script, parameters, deadline, on_output)

    def _start_session(self) -> _Session:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            self.close()
            self.open()
            transport = self._client.get_transport()
        channel = transport.open_session(timeout=self.options.connect_timeout)
        channel.exec_command(self._command)
        self.core_status = None  # a new process: nothing is loaded in it yet
        self._session = _Session(channel)
        return self._session

    def _end_session(self) -> None:
        session, self._session = self._session, None
        self.core_status = None
        if session is not None:
            try:
                session.channel.close()  # the host's process ends with its stdin (or is killed by sshd)
            except Exception:
                pass

    def _request(self, script: str, parameters: dict[str, Any], deadline: float,
                 on_output: OutputSink | None = None) -> ScriptOutput:
        """Send one request to the connection's bootstrap process and read its answer up to the end line."""
        session = self._session if self._session is not None and not self._session.channel.closed \
            else self._start_session()
        started = time.monotonic()
        token = "#iisfleet-end-" + secrets.token_hex(12) + "#"
        document = json.dumps({"script": script, "parameters": parameters, "end": token}, ensure_ascii=False)
        try:
            session.channel.sendall(document.encode("utf-8") + b"\n")
            output, status = self._read_answer(session, token.encode("ascii"), deadline, on_output)
        except BaseException:
            self._end_session()  # a half-read answer leaves the process out of step: never reuse it
            raise
        errors = [str(e) for e in status.get("errors") or [] if str(e).strip()]
        return ScriptOutput(stdout="\n".join(output).lstrip("\ufeff").strip(), errors=tuple(errors),
                            had_errors=status.get("failed") is True, duration_s=time.monotonic() - started)

    def _read_answer(self, session: _Session, token: bytes, deadline: float,
                     on_output: OutputSink | None = None) -> tuple[list[str], dict[str, Any]]:
        channel = session.channel
        lines: list[str] = []
        size = 0
        began = time.monotonic()
        while True:
            while b"\n" in session.buffer:
                raw, _, session.buffer = session.buffer.partition(b"\n")
                line = raw.rstrip(b"\r")
                if line.startswith(token):
                    return lines, _status(line[len(token):])
                size = len(line) if on_output is not None else size + len(line)  # streamed: per line
                if size > MAX_OUTPUT_CHARS:
                    raise TransportError(f"the host sent more than {MAX_OUTPUT_CHARS} bytes of output",
                                         host=self.host.name, category="protocol",
                                         explanation="output beyond the controller's cap was refused")
                text = line.decode("utf-8", errors="replace")
                if on_output is not None:
                    on_output(text.lstrip("\ufeff"))
                else:
                    lines.append(text)
            drained = False
            while channel.recv_ready():
                piece = channel.recv(1 << 16)
                session.buffer += piece
                drained = True
                if b"\n" in piece:  # a whole line to hand over first: what is held stays about one line
                    break
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(1 << 16)
                if len(session.stderr) < _MAX_STDERR:
                    session.stderr += chunk
                drained = True
            if drained:
                continue
            if channel.exit_status_ready():
                # The process ended before answering: a crash of the bootstrap itself, or a dropped connection.
                exit_code = channel.recv_exit_status()
                transport = channel.get_transport()
                if exit_code == -1 and (transport is None or not transport.is_active()):
                    raise ConnectionResetError("the SSH connection was dropped before the command finished")
                errors = tuple(decode_stderr(session.stderr.decode("utf-8", errors="replace")))
                detail = "; ".join(" ".join(e.split()) for e in errors[:2])[:400] or "no message"
                raise TransportError(f"PowerShell on the host exited (code {exit_code}) before answering: {detail}",
                                     host=self.host.name, category="protocol",
                                     explanation="the SSH bootstrap could not start or read its request: check that "
                                     "Windows PowerShell 4.0+ is the host's powershell.exe")
            remaining = deadline - time.monotonic()
            if self._cancelled.is_set():  # the caller ends the session: the host's process goes with it
                raise stopped_on_request(self.host.name, time.monotonic() - began)
            if remaining <= 0:
                timeout = TransportError(
                    f"the script did not finish within its {deadline - began:.0f} s budget (stopped after "
                    f"{time.monotonic() - began:.0f} s)", host=self.host.name,
                    category="timeout", explanation="the collector is slower than its step timeout: raise "
                    "the step's timeout in the playbook or narrow its parameters")
                timeout.partial_stdout = "\n".join(lines)  # the complete lines (parts) that arrived
                raise timeout
            select.select([channel], [], [], min(0.05, remaining))


class _Session:
    """One bootstrap process on the host: its exec channel and what was read but not yet consumed."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.buffer = bytearray()
        self.stderr = bytearray()


def _status(raw: bytes) -> dict[str, Any]:
    try:
        status = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        status = None
    if not isinstance(status, dict):
        return {"failed": True, "errors": [f"unreadable end-of-answer line from the bootstrap: {raw[:120]!r}"]}
    return status


def _is_drop(exc: BaseException) -> bool:
    import paramiko

    if isinstance(exc, (ConnectionResetError, EOFError, BrokenPipeError)):
        return True
    return isinstance(exc, paramiko.SSHException) and "closed" in str(exc).lower()
