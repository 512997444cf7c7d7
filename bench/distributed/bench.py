"""Distributed runs and bytes on the wire, against a `large` lab fleet served by a separate process.

Two measurements, in one invocation so that they share the fleet and the moment:

1. **wire**: a local run of `triage-401` and of `health-sweep`; every byte the controller's sockets send
   and receive (WinRM over HTTP with NTLM message encryption, the production default) per host, next to
   the bytes of the raw files the collectors read on the lab hosts (configs, logs, events, secedit);
2. **engines**: `health-sweep` run locally (`--concurrency 32`) and with `--engine celery` on 1, 2 and 4
   `iisfleet worker` processes (16 hosts each) against a local redis-server: hosts/s, the controller's
   CPU per host, the workers' CPU per host, and per host the broker's commands and network bytes
   (redis-server's own counters, reset before each run).

Usage (run once, briefly: the machine is shared)::

    .venv/bin/python bench/distributed/bench.py --hosts 300 [--workers 1,2,4] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "sweep"))

_counted = {"sent": 0, "received": 0}


def _count_socket_bytes() -> None:
    """Wrap socket.socket so every byte this process sends or receives is counted (plain HTTP WinRM)."""
    cls = socket.socket
    send, sendall, recv, recv_into = cls.send, cls.sendall, cls.recv, cls.recv_into

    def counted_send(self, data, *args):  # type: ignore[no-untyped-def]
        n = send(self, data, *args)
        _counted["sent"] += n
        return n

    def counted_sendall(self, data, *args):  # type: ignore[no-untyped-def]
        _counted["sent"] += len(data)
        return sendall(self, data, *args)

    def counted_recv(self, *args):  # type: ignore[no-untyped-def]
        data = recv(self, *args)
        _counted["received"] += len(data)
        return data

    def counted_recv_into(self, buffer, *args):  # type: ignore[no-untyped-def]
        n = recv_into(self, buffer, *args)
        _counted["received"] += n
        return n

    cls.send, cls.sendall, cls.recv, cls.recv_into = counted_send, counted_sendall, counted_recv, counted_recv_into


def _raw_bytes(fleet: Path, *, logs: bool) -> float:
    """Mean bytes per host of the files the collectors read (health-sweep reads no logs)."""
    total, hosts = 0, 0
    for host in (fleet / "hosts").iterdir():
        hosts += 1
        for path in host.rglob("*"):
            if not path.is_file() or path.name == "host.yml":
                continue
            if not logs and "LogFiles" in path.parts:
                continue
            total += path.stat().st_size
    return total / max(hosts, 1)


def _wrappers_as_scripts(hosts):  # type: ignore[no-untyped-def]
    """The same hosts with the WinRM option ``session_functions`` off: every step sends its wrapper's text."""
    from dataclasses import replace

    return [replace(h, winrm=replace(h.winrm, session_functions=False)) for h in hosts]


@contextlib.contextmanager
def _batches_off(off: bool):  # type: ignore[no-untyped-def]
    """The same build with step batches off (each step its own pipeline, as before them): the peer of the
    batches' bytes."""
    from toolkit.transports.winrm import WinRMTransport

    original = WinRMTransport.can_batch
    if off:
        WinRMTransport.can_batch = lambda self, scripts: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        WinRMTransport.can_batch = original  # type: ignore[method-assign]


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _local(playbook_name: str, hosts, out: Path, concurrency: int) -> dict:
    from toolkit.playbooks import load_playbook
    from toolkit.runner import run_playbook

    shutil.rmtree(out, ignore_errors=True)  # a reused --workdir
    before = dict(_counted)
    cpu, wall = time.process_time(), time.perf_counter()
    summary = run_playbook(load_playbook(playbook_name), hosts, out_dir=out, params={}, concurrency=concurrency,
                           simulated=True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = len(hosts)
    return {"ok": summary.count("ok"), "hosts": n, "wall_s": round(wall, 2), "hosts_per_s": round(n / wall, 1),
            "controller_cpu_ms_per_host": round(cpu / n * 1000, 1),
            "wire_sent_per_host": round((_counted["sent"] - before["sent"]) / n),
            "wire_received_per_host": round((_counted["received"] - before["received"]) / n)}


def _celery(hosts, inventory: Path, out: Path, redis, workers: int, workdir: Path) -> dict:
    from toolkit.distributed.controller import CeleryEngine
    from toolkit.lab.broker import start_worker, stop_process
    from toolkit.playbooks import load_playbook
    from toolkit.runner import run_playbook

    shutil.rmtree(out, ignore_errors=True)  # a reused --workdir
    procs = [start_worker("default", inventory, redis.url, visibility=3600, concurrency=16,
                          log=workdir / f"worker-{workers}-{i}.log") for i in range(workers)]
    try:
        worker_cpu = [_cpu_of(p.pid) for p in procs]
        redis.client.config_resetstat()
        playbook = load_playbook("health-sweep")
        engine = CeleryEngine(playbook=playbook, params={}, broker=redis.url, visibility_timeout=3600)
        cpu, wall = time.process_time(), time.perf_counter()
        summary = run_playbook(playbook, hosts, out_dir=out, params={}, simulated=True, engine=engine)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats = redis.client.info("stats")
        worker_cpu = sum(_cpu_of(p.pid) - before for p, before in zip(procs, worker_cpu))
    finally:
        for p in procs:
            stop_process(p)
    n = len(hosts)
    return {"workers": workers, "ok": summary.count("ok"), "hosts": n, "wall_s": round(wall, 2),
            "hosts_per_s": round(n / wall, 1), "controller_cpu_ms_per_host": round(cpu / n * 1000, 1),
            "workers_cpu_ms_per_host": round(worker_cpu / n * 1000, 1),
            "broker_commands_per_host": round(stats["total_commands_processed"] / n, 1),
            "broker_bytes_in_per_host": round(stats["total_net_input_bytes"] / n),
            "broker_bytes_out_per_host": round(stats["total_net_output_bytes"] / n),
            "envelope_bytes_per_host_via_http": round(engine.stats.get("envelope_bytes_received", 0) / n)}


def _ansible_project(fleet: Path, workdir: Path, hosts) -> tuple[Path, Path]:
    """An INI inventory of the same lab hosts (psrp connection, same WinRM HTTP + NTLM sealing, same account)
    and a playbook that runs health-sweep's collectors with `raw`, one task each, scripts passed as data."""
    import yaml

    from toolkit.collectors import load_catalog
    from toolkit.playbooks import load_playbook

    catalog = load_catalog()
    collectors = [step.collector for step in load_playbook("health-sweep").steps]
    project = workdir / "ansible"
    project.mkdir(parents=True, exist_ok=True)
    credential = hosts[0].credential
    lines = ["[lab]"]
    lines += [f"{h.name} ansible_host={h.address} ansible_psrp_port={h.winrm.port}" for h in hosts]
    lines += ["[lab:vars]", "ansible_connection=psrp", "ansible_psrp_protocol=http", "ansible_psrp_auth=ntlm",
              "ansible_psrp_message_encryption=always", "ansible_psrp_ignore_proxy=true",
              f"ansible_user={credential.username}", f"ansible_password={credential.password.reveal()}"]
    inventory = project / "inventory.ini"
    inventory.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scripts = {cid.replace("-", "_"): catalog[cid].script for cid in collectors}
    # !unsafe: the script text is data, never a Jinja template
    (project / "scripts.yml").write_text("".join(f"{name}: !unsafe {json.dumps(text)}\n"
                                                 for name, text in scripts.items()), encoding="utf-8")
    play = [{"hosts": "lab", "gather_facts": False, "strategy": "free", "vars_files": ["scripts.yml"],
             "tasks": [{"name": cid, "raw": f"{{{{ {cid.replace('-', '_')} }}}}"} for cid in collectors]}]
    playbook = project / "health-sweep.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
    return inventory, playbook


def _ansible(ansible_playbook: str, inventory: Path, playbook: Path, forks: int, limit: int | None) -> dict:
    """One `ansible-playbook` sweep; its CPU (every fork it waited for) from this process's children usage."""
    import resource

    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORKS=str(forks), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_DISPLAY_OK_HOSTS="False", ANSIBLE_DISPLAY_SKIPPED_HOSTS="False")
    command = [ansible_playbook, "-i", str(inventory), str(playbook)]
    if limit is not None:
        command += ["--limit", f"lab[0:{limit - 1}]"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=playbook.parent)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    recap = [line for line in run.stdout.splitlines() if " : ok=" in line]
    ok = sum(1 for line in recap if "failed=0" in line and "unreachable=0" in line)
    n = len(recap) or 1
    result = {"forks": forks, "hosts": len(recap), "ok": ok, "wall_s": round(wall, 2),
              "hosts_per_s": round(len(recap) / wall, 1), "controller_cpu_ms_per_host": round(cpu / n * 1000, 1)}
    if ok < len(recap) or not recap:
        result["sample_output"] = (run.stdout[-1500:] + run.stderr[-1500:])
    return result


def _ansible_side_by_side(args: argparse.Namespace, fleet: Path, workdir: Path, hosts) -> dict:
    """Ansible's forks tried on the first --tune-hosts hosts (iisfleet's local sweep of the same hosts just
    before, as the peer), then the best fork count over the whole fleet, next to iisfleet's again."""
    inventory, playbook = _ansible_project(fleet, workdir, hosts)
    subset = hosts[: args.tune_hosts]
    out: dict[str, object] = {"local_health_sweep_tune_subset": _local("health-sweep", subset, workdir / "local-subset",
                                                                       32)}
    trials = [_ansible(args.ansible_playbook, inventory, playbook, int(f), len(subset))
              for f in args.forks.split(",") if f]
    out["ansible_fork_trials"] = trials
    best = max(trials, key=lambda t: (t["ok"], t["hosts_per_s"]))
    if args.trials_only:
        return out
    out["local_health_sweep_before_ansible"] = _local("health-sweep", hosts, workdir / "local-again", 32)
    out["ansible_best_forks_full_fleet"] = _ansible(args.ansible_playbook, inventory, playbook, best["forks"], None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-wire", action="store_true")
    parser.add_argument("--skip-engines", action="store_true")
    parser.add_argument("--ansible-playbook", default="",
                        help="ansible-playbook of a venv with `ansible` and `pypsrp`: adds Ansible side by side")
    parser.add_argument("--forks", default="8,16,32", help="Ansible fork counts tried on --tune-hosts hosts")
    parser.add_argument("--tune-hosts", type=int, default=200, help="hosts of the fork trials (the best then sweeps all)")
    parser.add_argument("--trials-only", action="store_true", help="Ansible: only the fork trials, no full sweep")
    args = parser.parse_args()

    from toolkit.inventory import load_inventory
    from toolkit.lab.broker import RedisServer

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="iisfleet-bench-dist-"))
    from sweep import _serve, large_fleet  # bench/sweep: the fleet, `iisfleet lab serve` in its own process

    fleet = large_fleet(workdir, args.hosts)

    server = _serve(fleet, "http")
    results: dict[str, object] = {"hosts": args.hosts, "cpu_count": os.cpu_count()}
    redis = None
    try:
        os.chdir(fleet.parent)
        inventory = fleet / "inventory.yml"
        hosts = load_inventory(inventory).select(None)
        _count_socket_bytes()
        if not args.skip_wire:
            for name, logs in (("triage-401", True), ("health-sweep", False)):
                raw = _raw_bytes(fleet, logs=logs)
                # the peers, same run and fleet: one pipeline per step (no step batches), and each step's
                # wrapper sent as script text (session_functions off, so no batches either)
                for label, targets in (("", hosts), ("_one_pipeline_per_step", hosts),
                                       ("_wrappers_as_scripts", _wrappers_as_scripts(hosts))):
                    with _batches_off(label == "_one_pipeline_per_step"):
                        measured = _local(name, targets, workdir / f"wire-{name}{label}", 32)
                    measured["raw_file_bytes_per_host"] = round(raw)
                    measured["wire_total_over_raw"] = round(
                        (measured["wire_sent_per_host"] + measured["wire_received_per_host"]) / raw, 2)
                    results[f"wire_{name}{label}"] = measured
        if args.skip_engines:
            return print(json.dumps(results, indent=2))
        redis = RedisServer(workdir / "redis")
        results["local_health_sweep"] = _local("health-sweep", hosts, workdir / "local", 32)
        for count in (int(c) for c in args.workers.split(",") if c):
            results[f"celery_{count}_workers"] = _celery(hosts, inventory, workdir / f"celery-{count}", redis, count,
                                                         workdir)
        if args.ansible_playbook:
            results.update(_ansible_side_by_side(args, fleet, workdir, hosts))
    finally:
        if redis is not None:
            redis.stop()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
