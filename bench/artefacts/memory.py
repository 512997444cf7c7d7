"""Peak memory of the controller (`iisfleet run`) while it receives one large log as raw artefact chunks.

A one-host lab fleet gets a W3C log of ``--size-mb`` MiB (1 MiB of log lines repeated: written fast, no
sparse file), the lab serves it over real WinRM (or SSH) through the target-side core under Mono, and
``iisfleet run`` collects it with Get-IisRawArtefact (4 MiB chunks). The CLI's peak RSS (``VmHWM`` in
/proc/<pid>/status) is compared with the same CLI collecting the fleet's small files only (the peer:
``--size-mb 0``), measured in the same run. Used by tests/artefacts/test_memory_lab.py (a smaller file,
every CI run) and on its own for the 2 GiB figure in bench/artefacts/README.md.

    .venv/bin/python bench/artefacts/memory.py --size-mb 2048 [--transport ssh]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "tests" / "fixtures" / "artefacts" / "raw-w3c.yml"
LOG = "files/C/inetpub/logs/LogFiles/W3SVC1/u_ex261124.log"
MIB = 1024 * 1024


def write_log(path: Path, size_mb: int) -> None:
    """About ``size_mb`` MiB of W3C lines: the file's own header, then one MiB of its data lines (numbers
    varied) written again and again."""
    lines = path.read_bytes().splitlines(keepends=True)
    header = b"".join(line for line in lines if line.startswith(b"#"))
    data = [line for line in lines if not line.startswith(b"#")] or [b"2026-11-24 10:00:00 GET / - 80 - 10.0.0.1 - 200 0 0 1\r\n"]
    block = bytearray()
    index = 0
    while len(block) < MIB:
        block += data[index % len(data)].replace(b" 0 0 ", b" 0 %d " % (index % 997), 1)
        index += 1
    block = bytes(block)  # whole lines, a little over one MiB
    with open(path, "wb") as handle:
        handle.write(header)
        for _ in range(size_mb):
            handle.write(block)


def peak_rss_of(command: list[str], env: dict[str, str]) -> tuple[int, int, float]:
    """Run ``command``; its exit code, its peak RSS in bytes (VmHWM, read until it exits) and wall time."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.1)
    stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
    if process.returncode != 0:
        sys.stderr.write(stderr[-2000:])
    return process.returncode, peak, time.monotonic() - started


def measure(size_mb: int, work: Path, transport: str = "winrm") -> dict[str, float]:
    """Collect a ``size_mb`` MiB log from a one-host lab; the CLI's peak RSS and what arrived."""
    sys.path.insert(0, str(REPO))
    from toolkit.lab.model import load_fleet, write_inventory
    from toolkit.lab.scenarios import generate
    from toolkit.lab.server import LabServer

    fleet_dir = work / f"fleet-{size_mb}"
    generate("healthy", 1, fleet_dir, seed=0)
    # files as written (no time shift): the lab would otherwise rewrite every log line before serving it
    fleet_yml = fleet_dir / "fleet.yml"
    fleet_yml.write_text(fleet_yml.read_text().replace("  shift: true", "  shift: false"))
    [host_dir] = sorted((fleet_dir / "hosts").iterdir())
    if size_mb:
        write_log(host_dir / LOG, size_mb)
    fleet = load_fleet(fleet_dir, port_base=0)
    with LabServer(fleet.hosts, state_dir=fleet_dir / ".lab", ssh=transport == "ssh") as server:
        inventory = fleet_dir / "inventory.yml"
        write_inventory(fleet, server.endpoints(), server.ca_cert_path, server.known_hosts_path, inventory)
        # a large log takes longer than a host's default 600 s budget on a shared machine
        inventory.write_text(inventory.read_text().replace("defaults:\n", "defaults:\n  time_budget: 7200\n", 1))
        if transport == "ssh":
            inventory.write_text(inventory.read_text().replace("transport: winrm", "transport: ssh", 1))
        run_dir = work / f"run-{size_mb}"
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        code, peak, wall = peak_rss_of([sys.executable, "-m", "toolkit", "run", str(PLAYBOOK), "-i", str(inventory),
                                        "--out", str(run_dir)], env)
    index = json.loads(next((run_dir / "hosts").glob("*/artefacts/index.json")).read_text())
    received = [f for f in index["files"] if f["status"] == "complete" and f["sha256"] == f["controller_sha256"]]
    return {"exit_code": code, "peak_rss_mb": peak / MIB, "wall_s": wall, "files": len(index["files"]),
            "complete": len(received), "bytes": sum(f["size"] for f in received)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--transport", choices=("winrm", "ssh"), default="winrm")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="iisfleet-bench-artefacts-"))
    peer = measure(0, work, args.transport)
    big = measure(args.size_mb, work, args.transport)
    print(json.dumps({"transport": args.transport, "peer_small_files": peer, f"log_{args.size_mb}_mib": big,
                      "ratio_peak_rss": round(big["peak_rss_mb"] / peer["peak_rss_mb"], 2)}, indent=1))


if __name__ == "__main__":
    main()
