"""A simulated Windows OpenSSH server on paramiko's server API.

What a client sees is what Win32-OpenSSH shows: the ``OpenSSH_for_Windows_8.1`` banner, password and
public-key logons with ``DOMAIN\\user``/``user@domain`` spellings, and ``exec`` requests that run as
``cmd.exe /c <command>`` (the default shell), so the 8191-character limit and cmd's error messages
apply. PowerShell invocations are answered by the host's backend (see ``toolkit.lab.winrm.console``).
"""

from __future__ import annotations

import collections
import logging
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Iterable

import paramiko

from toolkit.lab.backend import ConnectionCut, HostBackend, LabHostSpec
from toolkit.lab.session import LabSession
from toolkit.lab.winrm import console
from toolkit.lab.winrm.auth import AccountTable

log = logging.getLogger(__name__)

_CHANNEL_SUCCESS = bytes([99])  # SSH_MSG_CHANNEL_SUCCESS
_CHANNEL_FAILURE = bytes([100])  # SSH_MSG_CHANNEL_FAILURE

WINDOWS_OPENSSH_VERSION = "SSH-2.0-OpenSSH_for_Windows_8.1"
_STDIN_TIMEOUT_S = 120.0


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    """The host's ECDSA key, persisted so ``known_hosts`` stays valid across lab restarts."""
    if path.exists():
        return paramiko.ECDSAKey.from_private_key_file(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = paramiko.ECDSAKey.generate(bits=256)
    key.write_private_key_file(str(path))
    path.chmod(0o600)
    return key


def parse_public_keys(lines: Iterable[str]) -> set[tuple[str, str]]:
    """OpenSSH public key lines → {(key type, base64 blob)} for comparison with offered keys."""
    keys = set()
    for line in lines:
        fields = line.strip().split()
        if len(fields) >= 2 and not line.lstrip().startswith("#"):
            keys.add((fields[0], fields[1]))
    return keys


class _WindowsOpenSshInterface(paramiko.ServerInterface):
    def __init__(self, host: SshHost) -> None:
        self.host = host
        self.replies: dict[int, threading.Event] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str) -> int:
        if self.host.spec.faults.auth_failure:
            return paramiko.AUTH_FAILED
        if self.host.accounts.check_password(username, password):
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if self.host.spec.faults.auth_failure or not self.host.accounts.knows(username):
            return paramiko.AUTH_FAILED
        if (key.get_name(), key.get_base64()) in self.host.authorized_keys:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, *args: object) -> bool:
        return True

    def check_channel_env_request(self, channel: paramiko.Channel, name: bytes, value: bytes) -> bool:
        return False  # like sshd without AcceptEnv

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        return False  # no interactive sessions in the lab

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode("utf-8", "replace")
        replied = threading.Event()
        self.replies[channel.get_id()] = replied
        threading.Thread(
            target=self.host.run_exec, args=(channel, text, replied), daemon=True, name="lab-ssh-exec"
        ).start()
        return True

    def watch_replies(self, transport: paramiko.Transport) -> None:
        """Let exec workers start only after paramiko has sent the exec request's reply.

        paramiko sends MSG_CHANNEL_SUCCESS after ``check_channel_exec_request`` returns; a quick worker
        that writes and closes the channel before that makes the client see "Channel closed".
        """
        send = transport._send_user_message

        def send_then_release(message: paramiko.Message) -> None:
            send(message)
            data = message.asbytes()
            if data[:1] in (_CHANNEL_SUCCESS, _CHANNEL_FAILURE) and len(data) >= 5:
                replied = self.replies.pop(struct.unpack(">I", data[1:5])[0], None)
                if replied is not None:
                    replied.set()

        transport._send_user_message = send_then_release  # type: ignore[method-assign]


class SshHost:
    """The SSH service of one simulated host."""

    def __init__(
        self,
        spec: LabHostSpec,
        backend: HostBackend,
        host_key: paramiko.PKey,
        authorized_keys: set[tuple[str, str]],
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.host_key = host_key
        self.authorized_keys = authorized_keys
        self.accounts = AccountTable(spec.users, spec.name, spec.fqdn)
        #: one per bootstrap process served (version-2 bootstrap), newest last
        self.sessions: collections.deque[LabSession] = collections.deque(maxlen=256)

    def serve_connection(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        transport.local_version = WINDOWS_OPENSSH_VERSION
        transport.add_server_key(self.host_key)
        interface = _WindowsOpenSshInterface(self)
        interface.watch_replies(transport)
        try:
            transport.start_server(server=interface)
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        # Drain accepted channels so paramiko's queue does not grow; exec work happens on the
        # threads started by check_channel_exec_request. Keep references: a paramiko Channel closes
        # itself when garbage-collected.
        open_channels: list[paramiko.Channel] = []
        while transport.is_active():
            channel = transport.accept(timeout=5)
            open_channels = [c for c in open_channels if not c.closed]
            if channel is not None:
                open_channels.append(channel)

    def run_exec(self, channel: paramiko.Channel, command_line: str, replied: threading.Event) -> None:
        faults = self.spec.faults
        try:
            replied.wait(timeout=10)
            if faults.reset_mid_exchange:
                _abort(channel.get_transport())
                return
            program = console.parse_command_line(command_line, self.spec.name)
            if program.kind == "session":
                try:
                    self._serve_session(channel)
                except ConnectionCut:  # a transfer fault: the network fails mid-answer
                    _abort(channel.get_transport())
                return
            stdin = _read_stdin(channel) if program.reads_stdin else b""
            result = console.run_program(program, stdin, self.backend)
            delay = result.delay_s + faults.latency_ms / 1000.0
            if delay > 0:
                time.sleep(delay)
            if result.stdout:
                channel.sendall(result.stdout)
            if result.stderr:
                channel.sendall_stderr(result.stderr)
            channel.send_exit_status(result.exit_code)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        except Exception:  # noqa: BLE001 - never take the lab down for one session
            log.exception("lab SSH host %s: unexpected error in exec", self.spec.name)
        finally:
            try:
                channel.close()
            except (OSError, EOFError):
                pass


    def _serve_session(self, channel: paramiko.Channel) -> None:
        """The version-2 bootstrap: one process (one lab session) answers requests until stdin ends."""
        # No endpoints over SSH: powershell.exe runs in the machine's mode, which its default endpoint shows.
        default = self.spec.endpoint("Microsoft.PowerShell")
        session = LabSession(self.backend, host_name=self.spec.name,
                             language_mode=default.language if default is not None else "FullLanguage")
        self.sessions.append(session)
        latency = self.spec.faults.latency_ms / 1000.0
        buffer = bytearray()

        def read_line() -> bytes | None:
            while b"\n" not in buffer:
                chunk = channel.recv(65536)  # blocks: an idle session just waits, as powershell.exe does
                if not chunk:
                    if not buffer:
                        return None
                    line = bytes(buffer)
                    buffer.clear()
                    return line
                buffer.extend(chunk)
                if len(buffer) > console.STDIN_LIMIT:
                    raise EOFError("request line over the lab's stdin limit")
            index = buffer.index(b"\n")
            line = bytes(buffer[:index])
            del buffer[: index + 1]
            if latency > 0:
                time.sleep(latency)
            return line

        code = console.serve_session(read_line, channel.sendall, channel.sendall_stderr, session)
        channel.send_exit_status(code)


def _read_stdin(channel: paramiko.Channel) -> bytes:
    channel.settimeout(_STDIN_TIMEOUT_S)
    data = bytearray()
    while True:
        chunk = channel.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > console.STDIN_LIMIT:
            return bytes(data[: console.STDIN_LIMIT])


def _abort(transport: paramiko.Transport | None) -> None:
    """Drop the TCP connection with a RST, as a resetting middlebox or crashing sshd would."""
    if transport is None:
        return
    sock = transport.sock
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    transport.close()


def known_hosts_line(address: str, port: int, key: paramiko.PKey) -> str:
    where = address if port == 22 else f"[{address}]:{port}"
    return f"{where} {key.get_name()} {key.get_base64()}"
