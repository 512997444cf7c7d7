"""Collector envelopes travel from a worker to the controller over HTTP(S), not through the broker.

The controller listens (``ArtifactReceiver``) for the run's lifetime. A worker ``PUT``s each validated
envelope, gzip-compressed, to ``/<run id>/<host>/<collector id>`` with the run's upload token (a random
capability that lets a caller add evidence to this one run, nothing else; it is not a host credential)
and the SHA-256 of the uncompressed body. The controller checks the token, the digest, that the host
and collector belong to the run and that the body is one JSON object, then writes it through the run
directory writer (atomic, so a redelivered host simply rewrites the same file).

With ``--artifact-cert``/``--artifact-key`` the receiver speaks TLS; across untrusted networks use it.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from toolkit.errors import HostError

log = logging.getLogger(__name__)

#: An envelope larger than this (uncompressed) is refused: collectors cap their own output well below it.
MAX_ENVELOPE_BYTES = 512 * 1024 * 1024
UPLOAD_ATTEMPTS = 3


class ArtifactReceiver:
    """An HTTP(S) endpoint that accepts the envelopes of one run and hands them to ``store``."""

    def __init__(self, run_id: str, token: str, hosts: Collection[str], collectors: Collection[str],
                 store: Callable[[str, str, dict[str, Any]], None], *, listen: tuple[str, int] = ("127.0.0.1", 0),
                 public_url: str | None = None, certfile: str | None = None, keyfile: str | None = None) -> None:
        self.run_id, self.token = run_id, token
        self.hosts, self.collectors = set(hosts), set(collectors)
        self.store = store
        self.received_bytes = 0
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                log.debug("artifact receiver: " + format, *args)

            def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
                status, message = receiver._accept(self)
                body = message.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(listen, Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        host, port = self._server.server_address[:2]
        self.url = (public_url or f"{scheme}://{host}:{port}").rstrip("/")
        self._thread = threading.Thread(target=self._server.serve_forever, name="iisfleet-artifacts", daemon=True)

    def start(self) -> ArtifactReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _accept(self, request: BaseHTTPRequestHandler) -> tuple[int, str]:
        if not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {self.token}"):
            return 403, "wrong upload token for this run"
        parts = [urllib.parse.unquote(p) for p in request.path.strip("/").split("/")]
        if len(parts) != 3 or parts[0] != self.run_id:
            return 404, "not an envelope of this run"
        _, host, collector = parts
        if host not in self.hosts or collector not in self.collectors:
            return 404, "host or collector not part of this run"
        try:
            length = int(request.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_ENVELOPE_BYTES:
            return 413, "missing or excessive Content-Length"
        raw = request.rfile.read(length)
        try:
            body = gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw
        except (OSError, EOFError):
            return 400, "the gzip body is damaged"
        if len(body) > MAX_ENVELOPE_BYTES:
            return 413, "envelope too large"
        if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), request.headers.get("X-Content-SHA256", "")):
            return 422, "SHA-256 mismatch: the envelope was damaged in transit"
        try:
            envelope = json.loads(body)
        except ValueError:
            return 422, "not JSON"
        if not isinstance(envelope, dict):
            return 422, "not a JSON object"
        self.store(host, collector, envelope)
        self.received += 1
        self.received_bytes += len(raw)
        return 204, ""


def upload_envelope(url: str, token: str, run_id: str, host: str, collector: str, envelope: dict[str, Any], *,
                    cafile: str | None = None, timeout: float = 60.0) -> int:
    """PUT one envelope to the controller; returns the bytes sent. Raises ``HostError`` (category
    ``connect``) when the controller cannot be reached or refuses it after ``UPLOAD_ATTEMPTS`` tries."""
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    compressed = gzip.compress(body, compresslevel=6)
    target = f"{url}/{urllib.parse.quote(run_id, safe='')}/{urllib.parse.quote(host, safe='')}/" \
             f"{urllib.parse.quote(collector, safe='')}"
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
               "X-Content-SHA256": hashlib.sha256(body).hexdigest(), "Content-Type": "application/json"}
    context = ssl.create_default_context(cafile=cafile) if target.startswith("https:") else None
    problem = ""
    for _ in range(UPLOAD_ATTEMPTS):
        request = urllib.request.Request(target, data=compressed, method="PUT", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
                response.read()
            return len(compressed)
        except urllib.error.HTTPError as exc:
            problem = f"the controller refused the envelope: HTTP {exc.code} {exc.read(200).decode('utf-8', 'replace')}"
            if exc.code in (403, 404, 413, 422):
                break  # retrying cannot help
        except (urllib.error.URLError, OSError) as exc:
            problem = f"cannot reach the controller's artifact receiver {url}: {getattr(exc, 'reason', exc)}"
    raise HostError(problem, host=host, category="connect", collector=collector,
                    explanation="the worker collected the evidence but could not hand it to the controller: check "
                                "that workers can reach --artifact-url")
