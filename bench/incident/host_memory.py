"""Host side of Get-IisRawArtefact on one large log: the core's memory stays one chunk's worth, whatever the size.

Runs the real core (ps_scripts/core) under Mono through the lab harness on a generated W3C log of ``--gib``
GiB, consuming the parts as they stream (nothing kept), checking every chunk's SHA-256 and the whole file's
against the header, and reading the Mono process's peak resident set (VmHWM) and CPU time afterwards (CPU
seconds, not wall time, on a shared machine). The harness is
restarted per chunk size, so each peak belongs to one run.

    nice -n 10 .venv/bin/python bench/incident/host_memory.py --gib 2 --chunk-mib 4 16
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "target"))

from generate import write  # noqa: E402  (bench/target's realistic Windows-auth log)

from toolkit.lab.model.corehost import CoreHost, SimulatedHost  # noqa: E402
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles  # noqa: E402

DAY = datetime(2026, 11, 24, tzinfo=timezone.utc)


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(root: Path, chunk_bytes: int) -> dict:
    core = CoreHost()
    host = SimulatedHost("BENCH01", "2026-11-25T00:00:00Z", mounts=PresentedFiles(root, timedelta(0)).mounts(),
                         variables=dict(HOST_VARIABLES))
    core.ping()
    assert core._process is not None
    pid = core._process.pid
    idle, cpu = _peak_kib(pid), _cpu_s(pid)
    whole = hashlib.sha256()
    header: dict = {}
    sent = parts = 0
    started = time.perf_counter()
    for reply in core.stream({"op": "run", "collector": "Get-IisRawArtefact", "host": host.as_json(),
                              "parameters": {"Kinds": ["w3c"], "Since": "2026-11-24T00:00:00Z", "ChunkBytes": chunk_bytes}}):
        if "error" in reply:
            raise SystemExit(reply["error"])
        envelope = json.loads(reply["output"])
        parts += 1
        data = envelope["data"]
        for item in data.get("artefacts", []):
            header = item
        for chunk in data.get("chunks", []):
            raw = gzip.decompress(base64.b64decode(chunk["content"]["content"]))
            assert hashlib.sha256(raw).hexdigest() == chunk["sha256"] and len(raw) == chunk["length"]
            whole.update(raw)
            sent += len(raw)
    elapsed = time.perf_counter() - started
    peak, cpu = _peak_kib(pid), _cpu_s(pid) - cpu
    core.close()
    assert whole.hexdigest() == header["sha256"] and sent == header["size"], "reassembled bytes differ from the host's hash"
    return {"chunk_mib": chunk_bytes / 2**20, "file_bytes": header["size"], "parts": parts, "wall_s": round(elapsed, 1),
            "mono_cpu_s": round(cpu, 1), "mib_per_mono_cpu_s": round(header["size"] / 2**20 / cpu, 1), "mono_peak_rss_mib": round(peak / 1024, 1),
            "mono_idle_peak_rss_mib": round(idle / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--chunk-mib", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="iisfleet-bench-incident-"))
    folder = work / "files" / "C" / "inetpub" / "logs" / "LogFiles" / "W3SVC1"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "u_ex261124.log"
    lines = int(args.gib * 2**30 / 190)  # ~190 bytes per line with this generator
    if not log.exists() or abs(log.stat().st_size - args.gib * 2**30) > 0.1 * 2**30:
        write(log, lines, start=DAY, per_second=lines / 86000)
    for chunk in args.chunk_mib:
        print(json.dumps(run(work / "files", chunk * 2**20)), flush=True)


if __name__ == "__main__":
    main()
