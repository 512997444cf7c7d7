"""Benchmark the target-side core's log collector under Mono (the proxy for a Windows host here).

    .venv/bin/python bench/target/bench.py [--lines 10000000] [--work /var/tmp/iisfleet-bench-target]

Measures, on one generated Windows-auth log (30% of the lines are handshake 401s, ~1.9 GB for 10M lines):

1. the C# filter's speed on ONE core (``taskset -c 0``), whole file (Since before its first line), next to
   the named peer measured in the same run: ``iisfleet analyze``'s compiled scanner, one process, on the
   same file (``LogAnalyzer(workers=1)``), and the old PowerShell loop's cost as the issue estimates it
   (20-90 us a line in Windows PowerShell 5.1: not measurable here, no PowerShell);
2. the bytes returned for the 24-hour triage window (the envelope parts' characters / the file's bytes);
3. the target-side memory: peak working set of the Mono process (Process.PeakWorkingSet64, VmHWM);
4. ``Since`` = 1 hour before the last line: bytes read / file size (binary search instead of a full read);
5. the compile cost of the core: ``mcs`` from scratch (cache disabled), several runs.
The counts of the core + controller are checked against the peer's (they must be equal).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from generate import write  # noqa: E402

from toolkit.contract import decode_blob, merge_parts  # noqa: E402
from toolkit.logs import LogAnalyzer  # noqa: E402
from toolkit.targetcore import compile_assembly, core_source  # noqa: E402
from toolkit.targetcore.mono import mono_command  # noqa: E402


def run_core(program: Path, folder: Path, since: str, until: str, *, one_core: bool) -> dict:
    command = mono_command(program, str(folder), since, until)
    if one_core and shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    parts = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    inner = json.loads(done.stderr.strip().splitlines()[-1])
    return {"wall_s": wall, "inner_s": inner["seconds"], "inner_cpu_s": inner["cpu_seconds"], "chars": inner["chars"],
            "envelope": merge_parts(parts),
            "max_rss_mb": inner["peak_bytes"] / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "iisfleet-bench-target")
    args = parser.parse_args()
    folder = args.work / "W3SVC1"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "u_ex261124.log"
    if not log.exists() or log.stat().st_size < args.lines * 100:
        print(f"generating {args.lines:,} lines ...", flush=True)
        write(log, args.lines)
    size = log.stat().st_size
    per_second = 120.0
    first = datetime(2026, 11, 24, tzinfo=timezone.utc)
    last = first + timedelta(seconds=args.lines / per_second)
    iso = "%Y-%m-%dT%H:%M:%SZ"

    # Compile cost (mcs, no cache), then the benchmark program (core + Bench.cs).
    compile_times = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["IISFLEET_TARGETCORE_CACHE"] = cache
            started = time.perf_counter()
            compile_assembly([("core.cs", core_source().text)], name="core")
            compile_times.append(time.perf_counter() - started)
    os.environ.pop("IISFLEET_TARGETCORE_CACHE")
    program = compile_assembly([("core.cs", core_source().text), ("Bench.cs", (HERE / "Bench.cs").read_text())],
                               name="bench-target", target="exe")

    whole = run_core(program, args.work, (first - timedelta(hours=1)).strftime(iso), last.strftime(iso), one_core=True)
    started, cpu_before = time.perf_counter(), time.process_time()
    peer = LogAnalyzer(window_s=30, workers=1)
    peer.feed_path(folder)
    reference = peer.result()
    peer_s, peer_cpu = time.perf_counter() - started, time.process_time() - cpu_before
    controller = LogAnalyzer(window_s=30)
    for entry in whole["envelope"]["data"]["files"]:
        controller.feed_collected(entry, decode_blob(entry["excerpt"]))
    collected = controller.result()
    same = (collected.status_401_total, collected.status_401_terminal, collected.status_401_handshake) == \
        (reference.status_401_total, reference.status_401_terminal, reference.status_401_handshake)

    triage = run_core(program, args.work, (last - timedelta(hours=24)).strftime(iso), last.strftime(iso), one_core=True)
    hour = run_core(program, args.work, (last - timedelta(hours=1)).strftime(iso), last.strftime(iso), one_core=True)
    (hour_file,) = hour["envelope"]["data"]["files"]
    lines = args.lines
    report = {
        "lines": lines, "file_bytes": size,
        # Lines per CPU-second (the machine is shared: wall time depends on the neighbours' load).
        "core_one_core": {"wall_s": round(whole["wall_s"], 2), "scan_wall_s": round(whole["inner_s"], 2),
                          "process_cpu_s": round(whole["inner_cpu_s"], 2),
                          "lines_per_cpu_s": round(lines / whole["inner_cpu_s"]),
                          "max_rss_mb": round(whole["max_rss_mb"], 1)},
        "peer_analyze_compiled_1_process": {"wall_s": round(peer_s, 2), "cpu_s": round(peer_cpu, 2),
                                            "lines_per_cpu_s": round(lines / peer_cpu)},
        "ratio_core_vs_peer_cpu": round(peer_cpu / whole["inner_cpu_s"], 2),
        "old_powershell_loop_estimate_s": [round(lines * 20e-6), round(lines * 90e-6)],
        "counts_equal": same,
        "status_401": [reference.status_401_total, reference.status_401_terminal, reference.status_401_handshake],
        "triage_24h": {"returned_chars": triage["chars"], "ratio": round(triage["chars"] / size, 5),
                       "one_in": round(size / max(1, triage["chars"]))},
        "since_1h": {"bytes_read": hour_file["bytes_read"], "fraction": round(hour_file["bytes_read"] / size, 4),
                     "process_cpu_s": round(hour["inner_cpu_s"], 2), "max_rss_mb": round(hour["max_rss_mb"], 1)},
        "compile_mcs_s": [round(t, 2) for t in compile_times],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
