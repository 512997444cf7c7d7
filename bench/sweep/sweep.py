"""Sweep a large simulated fleet with a trivial collector; report hosts/s and controller CPU.

The lab fleet is served by a separate ``iisfleet lab serve`` process so that ``time.process_time()`` in
this process is the controller's CPU alone (client side: auth, TLS, PSRP, JSON validation, run
directory writes). Two measurements:

1. a fleet sweep: ``run_playbook`` over every host with one ``Get-HostFact`` step (hosts/s, CPU per host
   including session set-up and teardown);
2. calls on an open session: one host, one session, ``--calls`` runs of ``Get-HostFact`` (CPU per
   collector call, the figure the ≤ 20 ms target is about), for WinRM and SSH.

Usage (run once, briefly: CI machines are shared)::

    .venv/bin/python bench/sweep/sweep.py --hosts 200 --concurrency 32 [--scheme http] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

PLAYBOOK = """\
name: bench-sweep
description: One trivial collector per host (benchmark).
steps:
  - collector: Get-HostFact
    timeout: 60s
"""


def large_fleet(workdir: Path, hosts: int) -> Path:
    """``workdir/fleet``: the lab's ``large`` scenario with ``hosts`` servers, generated unless a fleet is
    already there (so a benchmark can be re-run on the same fleet with --workdir)."""
    fleet = workdir / "fleet"
    if not (fleet / "fleet.yml").exists():
        subprocess.run([sys.executable, "-m", "toolkit", "lab", "generate", str(fleet), "--scenario", "large",
                        "--hosts", str(hosts), "--force"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return fleet


def _serve(fleet: Path, scheme: str) -> subprocess.Popen:
    inventory = fleet / "inventory.yml"
    if inventory.exists():
        inventory.unlink()
    process = subprocess.Popen([sys.executable, "-m", "toolkit", "lab", "serve", str(fleet), "--port-base", "0",
                                "--scheme", scheme], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + 120
    while not inventory.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"lab serve failed: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.2)
    time.sleep(1.0)  # the inventory is written just before the listeners start
    return process


def _calls_on_open_session(host, calls: int) -> dict[str, float]:
    from toolkit.collectors import load_catalog
    from toolkit.contract import validate_envelope
    from toolkit.transports import create_transport

    collector = load_catalog()["Get-HostFact"]
    transport = create_transport(host)
    transport.open()
    try:
        transport.run_script(collector.script, {}, timeout=30)  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            output = transport.run_script(collector.script, {}, timeout=30)
            validate_envelope(output.stdout, collector=collector, host=host.name)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        transport.close()
    return {"calls": calls, "cpu_ms_per_call": round(cpu / calls * 1000, 2),
            "wall_ms_per_call": round(wall / calls * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--scheme", choices=("http", "https"), default="http")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from toolkit.inventory import load_inventory
    from toolkit.playbooks import load_playbook
    from toolkit.runner import run_playbook

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="iisfleet-bench-"))
    fleet = large_fleet(workdir, args.hosts)
    playbook_path = workdir / "bench-sweep.yml"
    playbook_path.write_text(PLAYBOOK, encoding="utf-8")
    server = _serve(fleet, args.scheme)
    results: dict[str, object] = {"hosts": args.hosts, "concurrency": args.concurrency, "scheme": args.scheme,
                                  "cpu_count": os.cpu_count()}
    try:
        os.chdir(fleet.parent)  # the lab inventory names its CA and known_hosts relative to here
        inventory = load_inventory(fleet / "inventory.yml")
        hosts = inventory.select(None)
        playbook = load_playbook(str(playbook_path))
        cpu, wall = time.process_time(), time.perf_counter()
        summary = run_playbook(playbook, hosts, out_dir=workdir / "run", params={}, concurrency=args.concurrency,
                               simulated=True)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        results["sweep"] = {
            "status": summary.status, "ok": summary.count("ok"), "failed": summary.count("failed"),
            "wall_s": round(wall, 2), "hosts_per_s": round(len(hosts) / wall, 1),
            "controller_cpu_s": round(cpu, 2), "controller_cpu_ms_per_host": round(cpu / len(hosts) * 1000, 1),
        }
        healthy = next(h for h in hosts if h.name in {r.host for r in summary.hosts if r.status == "ok"})
        results["open_session_winrm"] = _calls_on_open_session(healthy, args.calls)
        from dataclasses import replace

        results["open_session_ssh"] = _calls_on_open_session(replace(healthy, transport="ssh"), args.calls)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
