"""Real parts for the distributed-run tests: a redis-server on a free loopback port, `iisfleet worker`
processes, and a lab fleet whose inventory puts hosts into zones."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        self.client = client

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def zone_inventory(inventory: Path, zones: dict[str, str], *, time_budget: float) -> Path:
    """The lab's inventory with a ``zone`` var per host and a short host budget."""
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    document.setdefault("defaults", {})["time_budget"] = time_budget
    for name, host in document["hosts"].items():
        host.setdefault("vars", {})["zone"] = zones[name]
    out = inventory.with_name("zoned-inventory.yml")
    out.write_text(yaml.safe_dump(document), encoding="utf-8")
    return out


def start_worker(zone: str, inventory: Path, broker: str, *, visibility: float, concurrency: int = 4,
                 log: Path) -> subprocess.Popen:
    """An `iisfleet worker` process, returned once it consumes its zone's queue."""
    from toolkit.distributed.app import make_app, queue_for_zone

    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "worker", "--zone", zone, "-i", str(inventory), "--broker", broker,
         "--visibility-timeout", str(visibility), "--concurrency", str(concurrency)],
        cwd=inventory.parent, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
    app = make_app(broker)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited: {log.read_text(errors='replace')[-2000:]}")
            replies = app.control.inspect(timeout=0.5).active_queues() or {}
            mine = [name for name, queues in replies.items() if str(process.pid) in name
                    and any(q.get("name") == queue_for_zone(zone) for q in queues)]
            if mine:
                return process
        raise RuntimeError("the worker did not start consuming in 60 s")
    finally:
        app.close()


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def events(run_dir: Path) -> list[dict[str, Any]]:
    import json

    path = run_dir / "log.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
