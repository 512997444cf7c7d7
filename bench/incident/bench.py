"""Incident collection of raw artefacts, per host, against the same files copied with ssh + tar over the same sshd.

One realistic lab server (bench/incident/realistic.py: a week of W3C logs, HTTPERR, Failed Request Tracing files,
event logs, configuration) is served by Debian's OpenSSH sshd whose `powershell` is the lab's stand-in (the real
C# core under Mono answers Get-IisRawArtefact). Both sides go through one loopback relay that counts the bytes
on the wire (SSH, encrypted, as a network would carry them):

1. **iisfleet**: `iisfleet run` of a one-step playbook (Get-IisRawArtefact for the window), which hashes each
   file on the host, streams it in 4 MiB chunks (gzip), verifies every chunk and file on arrival and writes it
   into the run directory;
2. **peer, ssh + tar**: one SSH connection running `tar cf -` of exactly the files iisfleet collected (the event
   log and secedit "exports" are the lab's source files), no compression, unpacked and hashed with `sha256sum`
   on the controller afterwards (the transfer gives no hashes; they are computed on the copies). Plain `scp`
   of a file list opens one SSH connection per remote file in its legacy mode, so it is not the peer;
3. **peer, ssh -C + tar**: the same with SSH compression.

Every figure is from the same invocation; the machine is shared, so wall times are noisy; run it twice.

    nice -n 10 .venv/bin/python bench/incident/bench.py --lines-per-day 300000 --evtx-mib 200 [--workdir DIR]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "incident"))

import paramiko  # noqa: E402
import yaml  # noqa: E402
from realistic import HOST, build  # noqa: E402

from toolkit.lab.ssh.openssh import real_sshd  # noqa: E402


class CountingRelay:
    """127.0.0.1:port -> 127.0.0.1:target, counting the bytes each way."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sent = self.received = 0  # client -> server, server -> client
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for end in (client, server):  # no Nagle: SSH window updates must not wait for a delayed ACK
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server, "sent"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "received"), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counter: str) -> None:
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    break
                sink.sendall(data)
                with self._lock:
                    setattr(self, counter, getattr(self, counter) + len(data))
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self) -> int:
        with self._lock:
            total = self.sent + self.received
            self.sent = self.received = 0
        return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _iisfleet(work: Path, relay: CountingRelay, key_file: Path, known_hosts: Path, since: str) -> dict:
    inventory = work / "inventory.yml"
    inventory.write_text(yaml.safe_dump({
        "credentials": {"key": {"username": getpass.getuser(), "key_file": str(key_file)}},
        "hosts": {HOST: {"address": "127.0.0.1", "transport": "ssh", "credential": "key",
                         "ssh": {"port": relay.port, "known_hosts": str(known_hosts)}}}}), encoding="utf-8")
    playbook = work / "raw.yml"
    playbook.write_text("name: raw-artefacts\ndescription: the raw artefacts of the window only\nreport: false\nsteps:\n"
                        f"  - collector: Get-IisRawArtefact\n    parameters: {{Since: '{since}'}}\n    timeout: 120m\n",
                        encoding="utf-8")
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    relay.take()
    cpu, wall = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "toolkit", "run", str(playbook), "-i", str(inventory), "--out", str(out),
                           "--json"], cwd=REPO, capture_output=True, text=True, timeout=4 * 3600)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    wire = relay.take()
    if done.returncode != 0:
        raise SystemExit(f"iisfleet run failed ({done.returncode}): {done.stderr[-2000:]}")
    evidence = json.loads((out / "hosts" / HOST / "Get-IisRawArtefact.json").read_text(encoding="utf-8"))
    headers = [h for h in evidence["data"]["artefacts"] if h.get("status") == "send"]
    return {"wall_s": round(wall, 1), "controller_cpu_s": round(cpu, 1), "wire_bytes": wire, "files": len(headers),
            "file_bytes": sum(h["size"] for h in headers), "run_dir": str(out), "headers": headers}


def _local_source(fleet_host: Path, header: dict) -> Path:
    """Where the lab keeps the bytes a header describes (the fleet's own file for an export)."""
    host_path = header["host_path"]
    if host_path.startswith("EventLog:"):
        return fleet_host / "evtx" / f"{host_path.split(':', 1)[1]}.evtx"
    if host_path == "secedit:/export":
        return fleet_host / "secedit.inf"
    drive, rest = host_path.split(":\\", 1)
    return fleet_host / "files" / drive.upper() / Path(*rest.split("\\"))


def _ssh_tar(work: Path, relay: CountingRelay, key_file: Path, known_hosts: Path, sources: list[Path],
             compress: bool) -> dict:
    """The peer: one SSH connection streaming the same files as a tar archive (what a responder would type),
    unpacked and hashed with sha256sum on the controller afterwards (the transfer gives no hashes)."""
    target = work / ("tar-C" if compress else "tar")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    relay.take()
    cpu, wall = _children_cpu(), time.perf_counter()
    remote = "tar cf - -P " + " ".join(f"'{source}'" for source in sources)
    with open(target / "bundle.tar", "wb") as archive:
        done = subprocess.run(["ssh", "-p", str(relay.port), "-i", str(key_file), "-o", f"UserKnownHostsFile={known_hosts}",
                               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", *(["-C"] if compress else []),
                               f"{getpass.getuser()}@127.0.0.1", remote], stdout=archive, stderr=subprocess.PIPE,
                              timeout=4 * 3600)
    wall_copy = time.perf_counter() - wall
    wire = relay.take()
    unpacked = subprocess.run(["tar", "xf", "bundle.tar", "-P", "--transform", "s|^/|unpacked/|", "-C", str(target)],
                              cwd=target, capture_output=True, text=True)
    files = sorted(str(p) for p in (target / "unpacked").rglob("*") if p.is_file())
    hashed = subprocess.run(["sha256sum", *files], capture_output=True, text=True)
    wall = time.perf_counter() - wall
    cpu = _children_cpu() - cpu
    if done.returncode != 0 or hashed.returncode != 0:
        raise SystemExit(f"ssh tar failed: {done.stderr[-1000:]!r} {unpacked.stderr[-500:]}")
    return {"wall_s": round(wall, 1), "copy_wall_s": round(wall_copy, 1), "client_cpu_s": round(cpu, 1),
            "wire_bytes": wire, "files": len(files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--lines-per-day", type=int, default=300_000)
    parser.add_argument("--freb", type=int, default=20)
    parser.add_argument("--evtx-mib", type=float, default=200.0)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "incident" / ".work")
    args = parser.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    fleet = build(work / "fleet", days=args.days, lines_per_day=args.lines_per_day, freb=args.freb, evtx_mib=args.evtx_mib)
    fleet_host = work / "fleet" / "hosts" / HOST
    key = paramiko.ECDSAKey.generate(bits=256)
    key_file = work / "id_ecdsa"
    key.write_private_key_file(str(key_file))
    os.chmod(key_file, 0o600)
    with real_sshd(work / "sshd", authorized_keys=[f"{key.get_name()} {key.get_base64()} bench"],
                   standin_env={"IISFLEET_LAB_FLEET": str(work / "fleet"), "IISFLEET_LAB_HOST": HOST}) as sshd:
        relay = CountingRelay(sshd.port)
        known_hosts = work / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{relay.port} {sshd.host_public_key}\n", encoding="utf-8")
        ours = _iisfleet(work, relay, key_file, known_hosts, fleet["since"])
        sources = [_local_source(fleet_host, h) for h in ours.pop("headers")]
        plain = _ssh_tar(work, relay, key_file, known_hosts, sources, compress=False)
        compressed = _ssh_tar(work, relay, key_file, known_hosts, sources, compress=True)
    raw = sum(p.stat().st_size for p in sources)
    print(json.dumps({"server": fleet, "raw_file_bytes": raw, "iisfleet": ours, "ssh_tar": plain, "ssh_C_tar": compressed,
                      "ratio_wall_iisfleet_over_ssh_tar": round(ours["wall_s"] / plain["wall_s"], 2),
                      "ratio_wall_iisfleet_over_ssh_C_tar": round(ours["wall_s"] / compressed["wall_s"], 2),
                      "ratio_wire_iisfleet_over_ssh_tar": round(ours["wire_bytes"] / plain["wire_bytes"], 3),
                      "ratio_wire_iisfleet_over_ssh_C_tar": round(ours["wire_bytes"] / compressed["wire_bytes"], 3)},
                     indent=1))


if __name__ == "__main__":
    main()
