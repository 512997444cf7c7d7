"""``LabServer``: every simulated host's WinRM (HTTP, HTTPS) and SSH listeners in one process.

Each host listens on its own loopback address (Linux routes all of 127.0.0.0/8 to ``lo``), so an
inventory can use the default ports 5985/5986/22 when the lab runs with enough privileges, and tests
use port 0 (the kernel picks). One acceptor thread watches every listening socket; each accepted
connection is served on its own thread because NTLM state and Receive long-polls are per connection.
Serving 200 hosts takes 600 listening sockets plus one per open connection.

Faults that act on the network (``ProtocolFaults``): ``refused_port`` binds the host's ports without
listening (a connect gets RST, i.e. "connection refused"); ``tls_unknown_ca`` presents a certificate
from a CA nobody trusts; latency, resets, auth failures and AllowUnencrypted act in the protocol
handlers.
"""

from __future__ import annotations

import errno
import logging
import resource
import selectors
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Sequence

from toolkit.errors import UsageError
from toolkit.lab.backend import HostBackend, LabHostSpec
from toolkit.lab.tls import LabTls, server_context, tls_server_end_point
from toolkit.lab.winrm.auth import NtlmUserStore, ntlm_store_lines
from toolkit.lab.winrm.host import WinRMHost

log = logging.getLogger(__name__)

_BACKLOG = 128


class LabBindError(UsageError, OSError):
    """A lab host cannot listen where its spec says (port taken, privileged port)."""


@dataclass
class _Listener:
    sock: socket.socket
    handler: Callable[[socket.socket, tuple[str, int]], None]


class _Acceptor:
    """One thread accepting on many listening sockets; a thread per accepted connection."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="lab-acceptor")
        self._stopping = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def add(self, listener: _Listener) -> None:
        listener.sock.setblocking(False)
        self._selector.register(listener.sock, selectors.EVENT_READ, listener)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._wake_w.close()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _loop(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(timeout=1.0):
                listener = key.data
                if listener is None:
                    return  # woken up to stop
                while True:
                    try:
                        conn, peer = listener.sock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:  # e.g. EMFILE: keep serving the connections we have
                        log.warning("lab: accept failed: %s", exc)
                        break
                    conn.setblocking(True)
                    threading.Thread(
                        target=self._serve, args=(listener.handler, conn, peer), daemon=True, name="lab-conn"
                    ).start()

    def _serve(
        self,
        handler: Callable[[socket.socket, tuple[str, int]], None],
        conn: socket.socket,
        peer: tuple[str, int],
    ) -> None:
        with self._connections_lock:
            self._connections.add(conn)
        try:
            handler(conn, peer)
        except Exception:  # noqa: BLE001
            log.exception("lab: connection handler failed")
        finally:
            with self._connections_lock:
                self._connections.discard(conn)
            try:
                conn.close()
            except OSError:
                pass


class LabServer:
    """Serve simulated hosts on loopback; use as a context manager or call ``start()``/``stop()``.

    ``ssh_authorized_keys`` are OpenSSH public-key lines accepted for every account of every host
    (like ``administrators_authorized_keys``); ``state_dir/ssh/authorized_keys`` is read too.
    """

    def __init__(
        self,
        hosts: Sequence[tuple[LabHostSpec, HostBackend]],
        *,
        state_dir: Path,
        ssh: bool = True,
        ssh_authorized_keys: Sequence[str] = (),
    ) -> None:
        names = [spec.name for spec, _ in hosts]
        if len(set(names)) != len(names):
            raise ValueError("lab host names must be unique")
        self.hosts = list(hosts)
        self.state_dir = Path(state_dir)
        self.ssh = ssh
        self._authorized_key_lines = list(ssh_authorized_keys)
        self._acceptor: _Acceptor | None = None
        self._reserved: list[socket.socket] = []
        self._endpoints: dict[str, dict[str, object]] = {}
        self._ntlm_lines: list[str] = []
        self._winrm_hosts: dict[str, WinRMHost] = {}
        self._ssh_hosts: dict[str, Any] = {}
        self._tls = LabTls(self.state_dir)
        self.known_hosts_path = self.state_dir / "ssh" / "known_hosts"

    @property
    def ca_cert_path(self) -> Path:
        return self._tls.ca_cert_path

    def winrm_hosts(self) -> dict[str, WinRMHost]:
        """The WinRM service of each host, by host name (tests read what its endpoints were asked to run)."""
        return dict(self._winrm_hosts)

    def sessions(self, name: str) -> list[Any]:
        """The PowerShell sessions host ``name`` served (``toolkit.lab.session.LabSession``): its WinRM
        runspace pools, then its SSH bootstrap processes, oldest first (the last 256 of each)."""
        found: list[Any] = []
        winrm = self._winrm_hosts.get(name)
        if winrm is not None:
            found += list(winrm.sessions)
        ssh = self._ssh_hosts.get(name)
        if ssh is not None:
            found += list(ssh.sessions)
        return found

    def endpoints(self) -> dict[str, dict[str, object]]:
        """Per host: ``address``, ``http_port``, ``https_port``, ``ssh_port`` (None without SSH), ``fqdn``."""
        return {name: dict(values) for name, values in self._endpoints.items()}

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._acceptor is not None:
            raise RuntimeError("LabServer already started")
        _raise_fd_limit(len(self.hosts) * 8 + 256)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        acceptor = _Acceptor()
        known_hosts: list[str] = []
        authorized = self._authorized_keys()
        try:
            for spec, backend in self.hosts:
                known_hosts.extend(self._start_host(acceptor, spec, backend, authorized))
        except BaseException:
            acceptor.stop()
            for sock in self._reserved:
                sock.close()
            raise
        self.known_hosts_path.parent.mkdir(parents=True, exist_ok=True)
        self.known_hosts_path.write_text("".join(f"{line}\n" for line in known_hosts), encoding="utf-8")
        for spec, _ in self.hosts:
            self._ntlm_lines.extend(ntlm_store_lines(spec.users, spec.name, spec.fqdn))
        NtlmUserStore.add(self._ntlm_lines)
        self._acceptor = acceptor
        acceptor.start()

    def stop(self) -> None:
        if self._acceptor is None:
            return
        self._acceptor.stop()
        self._acceptor = None
        for sock in self._reserved:
            sock.close()
        self._reserved.clear()
        for host in self._winrm_hosts.values():
            host.close()
        NtlmUserStore.remove(self._ntlm_lines)
        self._ntlm_lines = []

    def _authorized_keys(self) -> set[tuple[str, str]]:
        from toolkit.lab.ssh.server import parse_public_keys

        lines = list(self._authorized_key_lines)
        file = self.state_dir / "ssh" / "authorized_keys"
        if file.exists():
            lines.extend(file.read_text(encoding="utf-8").splitlines())
        return parse_public_keys(lines)

    def _bind(self, address: str, port: int, *, listen: bool) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            if listen:
                sock.listen(_BACKLOG)
        except OSError as exc:
            sock.close()
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = " (another service, e.g. a system sshd on 0.0.0.0, already has that port; use port 0)"
            elif exc.errno == errno.EACCES:
                hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE; use port 0)"
            raise LabBindError(f"cannot listen on {address}:{port}: {exc.strerror}{hint}") from exc
        return sock

    def _start_host(
        self, acceptor: _Acceptor, spec: LabHostSpec, backend: HostBackend, authorized: set[tuple[str, str]]
    ) -> list[str]:
        winrm = WinRMHost(spec, backend)
        self._winrm_hosts[spec.name] = winrm

        bound: list[socket.socket] = []
        try:
            return self._bind_host(acceptor, spec, backend, authorized, winrm, bound)
        except BaseException:
            for sock in bound:
                sock.close()
            raise

    def _bind_host(
        self,
        acceptor: _Acceptor,
        spec: LabHostSpec,
        backend: HostBackend,
        authorized: set[tuple[str, str]],
        winrm: WinRMHost,
        bound: list[socket.socket],
    ) -> list[str]:
        refused = spec.faults.refused_port
        http_sock = self._bind(spec.address, spec.http_port, listen=not refused)
        bound.append(http_sock)
        https_sock = self._bind(spec.address, spec.https_port, listen=not refused)
        bound.append(https_sock)
        winrm.ports = {"http": http_sock.getsockname()[1], "https": https_sock.getsockname()[1]}
        endpoint: dict[str, object] = {
            "address": spec.address,
            "fqdn": spec.fqdn,
            "http_port": winrm.ports["http"],
            "https_port": winrm.ports["https"],
            "ssh_port": None,
        }
        pair = self._tls.host_certificate(
            spec.name, spec.fqdn, spec.address, untrusted=spec.faults.tls_unknown_ca
        )
        context = server_context(pair)
        certificate_hash = tls_server_end_point(pair.certificate_der())

        def serve_http(conn: socket.socket, peer: tuple[str, int]) -> None:
            winrm.serve_connection(conn, peer)

        def serve_https(conn: socket.socket, peer: tuple[str, int]) -> None:
            winrm.serve_connection(conn, peer, tls_context=context, certificate_hash=certificate_hash)

        lines: list[str] = []
        sockets: list[tuple[socket.socket, Callable[[socket.socket, tuple[str, int]], None]]] = [
            (http_sock, serve_http),
            (https_sock, serve_https),
        ]
        if self.ssh:
            from toolkit.lab.ssh.server import SshHost, known_hosts_line, load_or_create_host_key

            key = load_or_create_host_key(self.state_dir / "ssh" / "host_keys" / f"{spec.name}_ecdsa_key")
            ssh_host = SshHost(spec, backend, key, authorized)
            self._ssh_hosts[spec.name] = ssh_host
            ssh_sock = self._bind(spec.address, spec.ssh_port, listen=not refused)
            bound.append(ssh_sock)
            endpoint["ssh_port"] = ssh_sock.getsockname()[1]
            sockets.append((ssh_sock, ssh_host.serve_connection))
            lines.append(known_hosts_line(spec.address, ssh_sock.getsockname()[1], key))

        for sock, handler in sockets:
            if refused:
                self._reserved.append(sock)  # bound, never listening: connects are refused
            else:
                acceptor.add(_Listener(sock, handler))
        self._endpoints[spec.name] = endpoint
        return lines


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.warning("lab: could not raise the open-file limit to %d (now %d)", target, soft)
