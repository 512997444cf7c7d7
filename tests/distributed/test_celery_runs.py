"""Distributed runs with real parts: redis-server, `iisfleet worker` processes, a lab fleet over WinRM.

1. A run split over two zones gives the same run directory and report (but for times) as a local run.
2. A worker SIGKILLed mid-run loses no host: its hosts are delivered again and finish once.
3. A broker that dies mid-run ends the run with a clear error and a partial run that still reports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from celery_fleet import BUDGET, events
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.lab.broker import REPO, start_worker, stop_process

VISIBILITY = BUDGET + 5
_TIMES = {"time_utc", "utc_now", "duration_s", "started_utc", "finished_utc", "modified_utc", "offset_s"}
#: Times inside text: ISO instants, and a clock offset in seconds (each host's clock is read when its turn
#: comes, so the offset from the fleet median moves by the seconds between two hosts' turns).
_TIME_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|[+-]?\d+ s(econds)?\b")


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    if isinstance(value, str):
        return _TIME_TEXT.sub("<time>", value)
    return value


def _tree(run_dir: Path) -> dict[str, Any]:
    """Every file of a run directory, JSON parsed and times dropped (log.jsonl as a multiset of events)."""
    tree: dict[str, Any] = {}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(run_dir))
        if name == "log.jsonl":
            tree[name] = Counter(json.dumps(_without_times(e), sort_keys=True) for e in events(run_dir))
        elif name == "manifest.json" or name.startswith("manifests/"):
            # the seal (run and host manifests): digests of the files compared here, whose times differ
            manifest = json.loads(path.read_text(encoding="utf-8"))
            manifest["files"] = sorted(item["path"] for item in manifest["files"])
            tree[name] = _without_times(manifest)
        elif path.suffix == ".json":
            tree[name] = _without_times(json.loads(path.read_text(encoding="utf-8")))
        else:
            tree[name] = path.stat().st_size > 0
    return tree


def _run_cli(*args: str) -> Any:
    env = {"IISFLEET_HISTORY": "off"}
    return CliRunner().invoke(app, list(args), env=env)


def test_two_zones_give_the_run_directory_of_a_local_run(zoned_lab, redis_server, tmp_path: Path) -> None:
    inventory, zones = zoned_lab
    workers = [start_worker(zone, inventory, redis_server.url, visibility=VISIBILITY, log=tmp_path / f"{zone}.log")
               for zone in ("dmz", "branch")]
    try:
        local = _run_cli("run", "triage-401", "-i", str(inventory), "--out", str(tmp_path / "local"))
        remote = _run_cli("run", "triage-401", "-i", str(inventory), "--out", str(tmp_path / "celery"),
                          "--engine", "celery", "--broker", redis_server.url, "--visibility-timeout", str(VISIBILITY))
    finally:
        for worker in workers:
            stop_process(worker)
    assert remote.exit_code == local.exit_code, remote.output
    local_tree, remote_tree = _tree(tmp_path / "local"), _tree(tmp_path / "celery")
    assert sorted(remote_tree) == sorted(local_tree)
    for name in local_tree:
        assert remote_tree[name] == local_tree[name], name
    report = json.loads((tmp_path / "celery" / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["findings"] and report["summary"]["hosts_ok"] == len(zones)
    # both zones did work: every host's task went to its own zone's worker
    logs = {zone: (tmp_path / f"{zone}.log").read_text(errors="replace") for zone in ("dmz", "branch")}
    assert all("Traceback" not in text for text in logs.values()), logs


def _controller(inventory: Path, out: Path, broker: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", "triage-401", "-i", str(inventory), "--out", str(out),
         "--engine", "celery", "--broker", broker, "--visibility-timeout", str(VISIBILITY), *extra],
        cwd=inventory.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "IISFLEET_HISTORY": "off"})


def _wait_for_finished_hosts(run_dir: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for e in events(run_dir) if e.get("event") == "host_finished") < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no host finished in time"
        time.sleep(0.05)


def test_a_killed_worker_loses_no_host(zoned_lab, redis_server, tmp_path: Path) -> None:
    inventory, zones = zoned_lab
    zone = "dmz"
    hosts = sorted(name for name, z in zones.items() if z == zone)
    doomed = start_worker(zone, inventory, redis_server.url, visibility=VISIBILITY, concurrency=3,
                          log=tmp_path / "doomed.log")
    survivor = None
    out = tmp_path / "run"
    controller = _controller(inventory, out, redis_server.url, "--limit", ",".join(hosts))
    try:
        _wait_for_finished_hosts(out, 1, controller)
        doomed.send_signal(signal.SIGKILL)  # mid-run: it holds hosts it has not acknowledged
        doomed.wait(timeout=10)
        survivor = start_worker(zone, inventory, redis_server.url, visibility=VISIBILITY, concurrency=3,
                                log=tmp_path / "survivor.log")
        stdout, stderr = controller.communicate(timeout=VISIBILITY * 4 + 60)
    finally:
        stop_process(controller, signal.SIGKILL)
        if survivor is not None:
            stop_process(survivor)
    assert controller.returncode == 0, (controller.returncode, stdout[-3000:], stderr[-3000:])
    finished = Counter(e["host"] for e in events(out) if e.get("event") == "host_finished")
    assert finished == Counter(hosts), "every host finishes exactly once"
    for name in hosts:
        document = json.loads((out / "hosts" / name / "host.json").read_text(encoding="utf-8"))
        assert document["status"] == "ok", (name, document["error"])
    deliveries = {key.decode().rsplit(":", 1)[1]: int(redis_server.client.get(key))
                  for key in redis_server.client.keys("iisfleet:attempts:*")}
    assert set(deliveries) == set(hosts)
    assert max(deliveries.values()) == 2, f"no host was delivered again: {deliveries}"
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["status"] == "complete"


def test_a_broker_outage_ends_with_a_clear_error_and_a_reportable_run(zoned_lab, redis_server, tmp_path: Path) -> None:
    inventory, zones = zoned_lab
    worker = start_worker("dmz", inventory, redis_server.url, visibility=VISIBILITY, concurrency=1,
                          log=tmp_path / "worker.log")
    out = tmp_path / "run"
    controller = _controller(inventory, out, redis_server.url, "--broker-grace", "3",
                             "--limit", ",".join(n for n, z in zones.items() if z == "dmz"))
    try:
        _wait_for_finished_hosts(out, 1, controller)
        redis_server.kill()
        stdout, stderr = controller.communicate(timeout=120)
    finally:
        stop_process(controller, signal.SIGKILL)
        stop_process(worker, signal.SIGKILL)
    assert controller.returncode == 3, (controller.returncode, stdout[-3000:], stderr[-3000:])
    text = " ".join(stderr.split())
    assert "became unreachable" in text and "iisfleet report" in text, stderr
    assert "Traceback" not in stderr
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["status"] == "interrupted"
    statuses = {}
    for name in run["hosts"]:
        document = json.loads((out / "hosts" / name / "host.json").read_text(encoding="utf-8"))
        statuses[name] = document["status"]
        if document["status"] == "failed":
            assert document["error"]["category"] == "connect" and "broker" in document["error"]["message"]
    assert "ok" in statuses.values() and "failed" in statuses.values(), statuses
    report = CliRunner().invoke(app, ["report", str(out), "--format", "json"])
    assert report.exit_code in (1, 3), report.output
    assert json.loads(report.stdout)["summary"]["hosts_failed"] >= 1
