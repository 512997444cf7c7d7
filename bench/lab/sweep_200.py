"""Serve N simulated hosts from one LabServer process and sweep them with pypsrp.

Usage: .venv/bin/python bench/lab/sweep_200.py [--hosts 200] [--workers 16] [--scripts 1] [--ssh]

The lab runs in a child process so its CPU can be told apart from the client's. Each host gets one
RunspacePool (NTLM over HTTP with message encryption, as in production) and ``--scripts`` trivial
pipelines; a bounded thread pool drives the hosts, one client per host. Prints hosts/s and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

USER, PASSWORD = "LAB\\bench", "Bench-Passw0rd!"


def _address(index: int) -> str:
    return f"127.80.{index // 250}.{index % 250 + 1}"


def serve(hosts: int, ssh: bool, state_dir: str, ready: multiprocessing.connection.Connection) -> None:
    from toolkit.lab.backend import LabHostSpec
    from toolkit.lab.server import LabServer
    from toolkit.lab.ssh.powershell_standin import EchoBackend

    specs = [
        (
            LabHostSpec(
                name=f"web{i:03d}",
                address=_address(i),
                fqdn=f"web{i:03d}.bench.test",
                http_port=0,
                https_port=0,
                ssh_port=0,
                users={USER: PASSWORD},
            ),
            EchoBackend(f"web{i:03d}"),
        )
        for i in range(hosts)
    ]
    with LabServer(specs, state_dir=Path(state_dir), ssh=ssh) as lab:
        ready.send(lab.endpoints())
        ready.recv()  # wait for "stop"


def sweep_host(endpoint: dict, scripts: int) -> int:
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    connection = WSMan(
        endpoint["address"],
        port=endpoint["http_port"],
        ssl=False,
        username=USER,
        password=PASSWORD,
        no_proxy=True,
    )
    answered = 0
    with RunspacePool(connection) as pool:
        for n in range(scripts):
            ps = PowerShell(pool)
            ps.add_script("# lab-echo echo\n").add_parameters({"n": n})
            answered += len(ps.invoke())
    return answered


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--scripts", type=int, default=1)
    parser.add_argument("--ssh", action="store_true", help="also start the SSH listeners (600 sockets)")
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    with tempfile.TemporaryDirectory() as state_dir:
        started = time.perf_counter()
        server = multiprocessing.get_context("spawn").Process(
            target=serve, args=(args.hosts, args.ssh, state_dir, child)
        )
        server.start()
        endpoints = parent.recv()
        print(
            f"lab up: {len(endpoints)} hosts in {time.perf_counter() - started:.1f} s "
            f"(pid {server.pid}, ssh={'on' if args.ssh else 'off'})"
        )
        server_cpu_before = process_cpu(server.pid)
        client_before = os.times()
        started = time.perf_counter()
        failures = []
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = {name: pool.submit(sweep_host, ep, args.scripts) for name, ep in endpoints.items()}
            for name, future in futures.items():
                try:
                    assert future.result() == args.scripts
                except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
        wall = time.perf_counter() - started
        client_after = os.times()
        server_cpu = process_cpu(server.pid) - server_cpu_before
        parent.send("stop")
        server.join(timeout=30)
    client_cpu = (client_after.user - client_before.user) + (client_after.system - client_before.system)
    result = {
        "hosts": args.hosts,
        "workers": args.workers,
        "scripts_per_host": args.scripts,
        "wall_s": round(wall, 2),
        "hosts_per_s": round(args.hosts / wall, 1),
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "failures": len(failures),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    for failure in failures[:10]:
        print("  " + failure)


if __name__ == "__main__":
    main()
