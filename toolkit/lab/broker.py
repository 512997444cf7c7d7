"""A throwaway Celery broker and workers on loopback, for the tests and benchmarks of distributed runs.

``RedisServer`` starts Debian's ``redis-server`` on a free port (nothing saved to disk); ``start_worker``
starts an ``iisfleet worker`` process and returns once it consumes its zone's queue. The product's own
code path never imports this module.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on 127.0.0.1 and a free port; ``url`` is its broker URL, ``client`` a redis-py client."""

    def __init__(self, workdir: Path) -> None:
        import redis

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        stop_process(self.process, signal.SIGKILL)

    def stop(self) -> None:
        stop_process(self.process)


def start_worker(zone: str, inventory: Path, broker: str, *, visibility: float, concurrency: int = 4,
                 log: Path) -> subprocess.Popen[bytes]:
    """An ``iisfleet worker`` process (working directory: the inventory's folder), once it consumes."""
    from toolkit.distributed.app import make_app, queue_for_zone

    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "toolkit", "worker", "--zone", zone, "-i", str(inventory), "--broker", broker,
             "--visibility-timeout", str(visibility), "--concurrency", str(concurrency)],
            cwd=inventory.parent, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    app = make_app(broker)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited: {log.read_text(errors='replace')[-2000:]}")
            replies = app.control.inspect(timeout=0.5).active_queues() or {}
            if any(str(process.pid) in name and any(q.get("name") == queue_for_zone(zone) for q in queues)
                   for name, queues in replies.items()):
                return process
        raise RuntimeError("the worker did not start consuming in 60 s")
    finally:
        app.close()


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:  # type: ignore[type-arg]
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
