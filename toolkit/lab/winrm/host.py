"""One simulated host's WinRM service: HTTP/1.1 connections, authentication, WS-Management dispatch.

Connections are served on their own threads (``LabServer`` accepts them). Authentication state lives
on the connection, as with http.sys: Negotiate/NTLM authenticates the TCP connection once and the
message-encryption keys belong to it; Basic authenticates each request.

Every response goes out in one ``sendall`` on a ``TCP_NODELAY`` socket: writing headers and body
separately lets Nagle's algorithm and the client's delayed ACK add ~40 ms to every response.
"""

from __future__ import annotations

import base64
import collections
import email.utils
import logging
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

import spnego

from toolkit.lab.backend import ConnectionCut, HostBackend, LabHostSpec
from toolkit.lab.session import LabSession
from toolkit.lab.winrm import auth, soap
from toolkit.lab.winrm.endpoints import EndpointSession
from toolkit.lab.winrm.shells import CmdShell, PowerShellShell, Shell
from toolkit.lab.winrm.soap import NS, SoapError

log = logging.getLogger(__name__)

_MAX_HEADER_LINES = 100
_MAX_BODY = 32 * 1024 * 1024
_IDLE_TIMEOUT_S = 120.0
_MAX_SHELLS_PER_HOST = 256
_SERVER_HEADER = "Microsoft-HTTPAPI/2.0"


class _ResetConnection(Exception):
    """Drop the TCP connection with a RST instead of answering (fault injection)."""


@dataclass
class HttpRequest:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str | None = None
    authenticate: list[str] = field(default_factory=list)

    def to_bytes(self, keep_alive: bool) -> bytes:
        reason = {
            200: "OK",
            400: "Bad Request",
            401: "Unauthorized",
            404: "Not Found",
            405: "Method Not Allowed",
            411: "Length Required",
            413: "Request Entity Too Large",
            500: "Internal Server Error",
        }
        lines = [
            f"HTTP/1.1 {self.status} {reason.get(self.status, 'Error')}",
            f"Server: {_SERVER_HEADER}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            f"Content-Length: {len(self.body)}",
        ]
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}")
        lines.extend(f"WWW-Authenticate: {value}" for value in self.authenticate)
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class _BadRequest(Exception):
    pass


def read_request(reader: BinaryIO) -> HttpRequest | None:
    """Read one HTTP/1.1 request; ``None`` when the client closed the connection between requests."""
    line = reader.readline(8192)
    while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between pipelined requests
        line = reader.readline(8192)
    if not line:
        return None
    try:
        method, path, version = line.decode("latin-1").strip().split(" ", 2)
    except ValueError as exc:
        raise _BadRequest("malformed request line") from exc
    if not version.startswith("HTTP/1."):
        raise _BadRequest("not HTTP/1.x")
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        raw = reader.readline(65536)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise _BadRequest("too many header lines")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunked = bytearray()
        while True:
            size_line = reader.readline(1024)
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError as exc:
                raise _BadRequest("malformed chunk size") from exc
            if size == 0:
                while reader.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            if len(chunked) + size > _MAX_BODY:
                raise _BadRequest("body too large")
            chunked += reader.read(size)
            reader.readline(1024)
        return HttpRequest(method, path, version, headers, bytes(chunked))
    try:
        length = int(headers.get("content-length", "0") or 0)
    except ValueError as exc:
        raise _BadRequest("malformed Content-Length") from exc
    if length < 0 or length > _MAX_BODY:
        raise _BadRequest("body too large")
    body = reader.read(length) if length else b""
    if len(body) != length:
        return None
    return HttpRequest(method, path, version, headers, body)


@dataclass
class _ConnectionAuth:
    """Per-connection Negotiate state (http.sys authenticates connections, not requests)."""

    context: spnego.ContextProxy | None = None
    principal: str | None = None
    soap_requests: int = 0


class WinRMHost:
    """The WinRM service of one simulated host (HTTP and HTTPS listeners share its shells)."""

    def __init__(self, spec: LabHostSpec, backend: HostBackend) -> None:
        self.spec = spec
        self.backend = backend
        self.machine = spec.fqdn or spec.name
        self.accounts = auth.AccountTable(spec.users, spec.name, spec.fqdn)
        self.shells: dict[str, Shell] = {}
        self._shells_lock = threading.Lock()
        self.ports: dict[str, int] = {}
        #: sessions opened on non-default endpoints, newest last (the tests read what each was asked to run)
        self.endpoint_sessions: list[EndpointSession] = []
        #: the runspace pools' sessions, newest last (bounded: for tests and diagnostics)
        self.sessions: collections.deque[LabSession] = collections.deque(maxlen=256)

    # connections ----------------------------------------------------------------------------------

    def serve_connection(
        self,
        sock: socket.socket,
        peer: tuple[str, int],
        *,
        tls_context: ssl.SSLContext | None = None,
        certificate_hash: bytes | None = None,
    ) -> None:
        """Serve one accepted TCP connection until the client closes it (runs on its own thread)."""
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(_IDLE_TIMEOUT_S)
            if tls_context is not None:
                try:
                    sock = tls_context.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # e.g. the client refused the certificate: nothing more to say
            reader = sock.makefile("rb")
            state = _ConnectionAuth()
            while True:
                try:
                    request = read_request(reader)
                except _BadRequest:
                    sock.sendall(HttpResponse(400).to_bytes(keep_alive=False))
                    return
                if request is None:
                    return
                try:
                    response = self.handle(
                        request,
                        state,
                        tls=tls_context is not None,
                        certificate_hash=certificate_hash,
                        client_ip=peer[0],
                    )
                except _ResetConnection:
                    _abort(sock)
                    return
                if self.spec.faults.latency_ms:
                    time.sleep(self.spec.faults.latency_ms / 1000.0)
                sock.sendall(response.to_bytes(request.keep_alive))
                if not request.keep_alive:
                    return
        except (OSError, ValueError):
            return  # client went away, idle timeout, TLS alert: all normal for a server
        except Exception:  # noqa: BLE001 - one broken exchange must never take the lab down
            log.exception("lab WinRM host %s: unexpected error on a connection", self.spec.name)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _challenge(self, tls: bool) -> HttpResponse:
        offers = ["Negotiate"]
        if tls or self.spec.faults.allow_unencrypted:
            offers.append('Basic realm="WSMAN"')
        return HttpResponse(401, authenticate=offers)

    def handle(
        self,
        request: HttpRequest,
        state: _ConnectionAuth,
        *,
        tls: bool,
        certificate_hash: bytes | None,
        client_ip: str,
    ) -> HttpResponse:
        if request.path.split("?", 1)[0].rstrip("/").lower() != "/wsman":
            return HttpResponse(404)
        if request.method != "POST":
            return HttpResponse(405)
        faults = self.spec.faults
        extra_auth: list[str] = []
        principal: str | None = None
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme in ("negotiate", "ntlm"):
            try:
                token = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                return self._challenge(tls)
            if state.context is None or state.context.complete:
                state.context, state.principal = auth.new_acceptor(), None
            bindings = None
            if (
                tls
                and certificate_hash
                and b"NTLMSSP\x00\x03" in token
                and auth.client_sent_channel_bindings(token)
            ):
                bindings = auth.channel_bindings_for(certificate_hash)
            try:
                out_token = state.context.step(token, channel_bindings=bindings)
            except Exception:  # noqa: BLE001 - wrong password, bad binding, garbage token: all a 401
                state.context, state.principal = None, None
                return self._challenge(tls)
            # Answer in the scheme the client used (a raw "NTLM" client looks for an NTLM challenge).
            answer_scheme = "NTLM" if scheme == "ntlm" else "Negotiate"
            if not state.context.complete:
                challenge = base64.b64encode(out_token or b"").decode()
                return HttpResponse(401, authenticate=[f"{answer_scheme} {challenge}"])
            client = state.context.client_principal or ""
            if faults.auth_failure or not self.accounts.knows(client):
                state.context, state.principal = None, None
                return self._challenge(tls)
            state.principal = client
            if out_token:
                extra_auth.append(f"{answer_scheme} {base64.b64encode(out_token).decode()}")
            principal = client
        elif scheme == "basic":
            if not (tls or faults.allow_unencrypted):
                return self._challenge(tls)
            credentials = auth.parse_basic(value)
            if (
                credentials is None
                or faults.auth_failure
                or not self.accounts.check_password(credentials.principal, credentials.password)
            ):
                return self._challenge(tls)
            principal = credentials.principal
        elif header:
            return self._challenge(tls)
        else:
            principal = state.principal
            if principal is None:
                return self._challenge(tls)

        if not request.body:
            return HttpResponse(200, authenticate=extra_auth)

        content_type = request.headers.get("content-type", "")
        encrypted = content_type.lower().startswith(("multipart/encrypted", "multipart/x-multi-encrypted"))
        context = state.context if state.principal else None
        if encrypted:
            if context is None:
                return HttpResponse(400, authenticate=extra_auth)
            try:
                plain = auth.unwrap_encrypted(context, request.body)
            except Exception:  # noqa: BLE001 - sealed with another key (see the notes' pitfall 1)
                return HttpResponse(400, authenticate=extra_auth)
        else:
            if not tls and not faults.allow_unencrypted:
                error = SoapError(
                    5,
                    "The WinRM service rejected the request: unencrypted traffic is not allowed on this "
                    "listener (AllowUnencrypted=false). Use message encryption or HTTPS.",
                    "w:AccessDenied",
                )
                return HttpResponse(
                    500, soap.fault("", error, self.machine), "application/soap+xml;charset=UTF-8", extra_auth
                )
            plain = request.body

        state.soap_requests += 1
        if faults.reset_mid_exchange and state.soap_requests >= 2:
            raise _ResetConnection()
        try:
            status, reply = self.dispatch(plain, principal or "", client_ip, tls)
        except ConnectionCut:
            raise _ResetConnection() from None
        if encrypted and context is not None:
            content_type_out, body = auth.wrap_encrypted(context, reply)
            return HttpResponse(status, body, content_type_out, extra_auth)
        return HttpResponse(status, reply, "application/soap+xml;charset=UTF-8", extra_auth)

    # WS-Management ----------------------------------------------------------------------------------

    def dispatch(self, data: bytes, principal: str, client_ip: str, tls: bool) -> tuple[int, bytes]:
        try:
            request = soap.parse_request(data)
        except SoapError as error:
            return 500, soap.fault("", error, self.machine)
        try:
            action, body = self._operation(request, principal, client_ip, tls)
        except SoapError as error:
            return 500, soap.fault(request.message_id, error, self.machine)
        return 200, soap.envelope(action, request.message_id, body)

    def _shell(self, request: Request) -> Shell:
        shell_id = request.selectors.get("ShellId", "").upper()
        with self._shells_lock:
            shell = self.shells.get(shell_id)
        if shell is None:
            raise soap.shell_not_found(shell_id)
        return shell

    def _operation(self, request: soap.Request, principal: str, client_ip: str, tls: bool) -> tuple[str, str]:
        action = request.action
        if action == soap.ACTION_CREATE:
            if request.resource_uri.startswith(soap.RESOURCE_PWSH_PREFIX):
                endpoint = self._endpoint_session(request.resource_uri)
                # One runspace pool is one session: the C# core loaded in it stays for its pipelines only.
                session = LabSession(self.backend, host_name=self.spec.name,
                                     language_mode=endpoint.endpoint.language if endpoint else "FullLanguage")
                self.sessions.append(session)
                shell: Shell = PowerShellShell(request, session, principal, client_ip, endpoint)
            elif request.resource_uri.lower() == soap.RESOURCE_CMD:
                shell = CmdShell(request, self.backend, principal, client_ip, self.spec.name)
            else:
                raise SoapError(
                    soap.CODE_ACTION_NOT_SUPPORTED,
                    f"The resource URI {request.resource_uri} is not supported by the lab.",
                    "w:DestinationUnreachable",
                    sender=True,
                )
            with self._shells_lock:
                # Memory guard for long `lab serve` runs: clients that die never Delete their shells.
                # Dicts keep insertion order, so the first key is the oldest shell.
                while len(self.shells) >= _MAX_SHELLS_PER_HOST:
                    self.shells.pop(next(iter(self.shells))).close()
                self.shells[shell.shell_id] = shell
            scheme = "https" if tls else "http"
            port = self.ports.get(scheme, 0)
            address = f"{scheme}://{self.spec.fqdn or self.spec.address}:{port}/wsman"
            body = (
                f"<x:ResourceCreated><a:Address>{address}</a:Address><a:ReferenceParameters>"
                f"<w:ResourceURI>{request.resource_uri}</w:ResourceURI><w:SelectorSet>"
                f'<w:Selector Name="ShellId">{shell.shell_id}</w:Selector></w:SelectorSet>'
                f"</a:ReferenceParameters></x:ResourceCreated>{shell.create_response_body()}"
            )
            return soap.ACTION_CREATE + "Response", body
        if action == soap.ACTION_DELETE:
            shell = self._shell(request)
            with self._shells_lock:
                self.shells.pop(shell.shell_id, None)
            shell.close()
            return soap.ACTION_DELETE + "Response", ""
        if action == soap.ACTION_GET:
            if request.resource_uri.startswith(soap.RESOURCE_CONFIG):
                return soap.ACTION_GET + "Response", _CONFIG_XML
            return soap.ACTION_GET + "Response", self._shell(request).get_xml()
        operations = {
            soap.ACTION_COMMAND: "command",
            soap.ACTION_SEND: "send",
            soap.ACTION_RECEIVE: "receive",
            soap.ACTION_SIGNAL: "signal",
        }
        operation = operations.get(action)
        if operation is None:
            raise SoapError(
                soap.CODE_ACTION_NOT_SUPPORTED,
                f"The action {action} is not supported by the lab.",
                "w:ActionNotSupported",
                sender=True,
            )
        shell = self._shell(request)
        return action + "Response", getattr(shell, operation)(request)

    def _endpoint_session(self, resource_uri: str) -> EndpointSession | None:
        """The session configuration the resource URI names; a WSMan fault, as on Windows, when there is none.

        The default FullLanguage, elevated endpoint needs no routing (None): scripts go to the host model."""
        name = resource_uri[len(soap.RESOURCE_PWSH_PREFIX):].strip("/")
        endpoint = self.spec.endpoint(name)
        if endpoint is None:
            raise SoapError(
                soap.CODE_INVALID_ARGS,
                f"The WS-Management service cannot process the request. Cannot find the {name} session "
                f"configuration in the WSMan: drive on the {self.spec.name} computer.",
                "w:InvalidResourceURI", sender=True)
        if endpoint.language == "FullLanguage" and endpoint.elevated:
            return None
        session = EndpointSession(endpoint, (self.spec.fqdn or self.spec.name).split(".")[0].upper())
        self.endpoint_sessions.append(session)
        del self.endpoint_sessions[:-64]  # a long `lab serve` keeps only the recent ones
        return session

    def close(self) -> None:
        with self._shells_lock:
            self.shells.clear()


Request = soap.Request

_CONFIG_XML = (
    f'<cfg:Config xmlns:cfg="{NS["cfg"]}"><cfg:RootSDDL>O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)'
    "(AU;SA;GXGW;;;WD)</cfg:RootSDDL><cfg:MaxEnvelopeSizekb>500</cfg:MaxEnvelopeSizekb>"
    "<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>"
    "<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests></cfg:Config>"
)


def _abort(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees "connection reset by peer" mid-exchange."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
