"""A multi-member .gz log read by one process vs split across processes at member boundaries.

Usage (run under `nice` on a shared machine)::

    .venv/bin/python bench/logs/gz_split.py [--lines 3000000] [--member-kib 1024] [--workers 2] [--workdir DIR]

Writes a synthetic W3C log (toolkit/logs/synth: handshakes and failures; ``--layout-changes`` adds mid-file
#Fields changes, each of which costs the parent a serial re-scan of the range it falls before) as gzip
members of ``--member-kib`` KiB of log each (bgzip-style: members end wherever that falls in a line), then
analyses it with ``--workers 1`` (the peer) and ``--workers N``, alternating, and prints wall and CPU time
(this process and its children) and whether the two documents are equal.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--member-kib", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--layout-changes", default="",
                        help="fractions of the file where #Fields changes, e.g. 0.3,0.6 (default: none, one header)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from toolkit.logs import LogAnalyzer
    from toolkit.logs.synth import write_log

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="iisfleet-gzsplit-"))
    path = workdir / "W3SVC1" / "u_ex261124.log.gz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = workdir / "plain.log"
        changes = tuple(float(f) for f in args.layout_changes.split(",") if f)
        write_log(plain, lines=args.lines, seed=5, failure_boost=2.0, layout_changes=changes)
        step = args.member_kib * 1024
        with plain.open("rb") as source, path.open("wb") as out:
            while block := source.read(step):
                out.write(gzip.compress(block, compresslevel=6, mtime=0))
        plain.unlink()

    def run(workers: int) -> tuple[float, float, dict]:
        cpu, wall = _cpu(), time.perf_counter()
        analyzer = LogAnalyzer(workers=workers)
        analyzer.feed_path(path)
        document = analyzer.result().to_dict()
        return time.perf_counter() - wall, _cpu() - cpu, document

    rows: dict[int, list[tuple[float, float]]] = {1: [], args.workers: []}
    documents = {}
    for _ in range(args.rounds):
        for workers in (1, args.workers):
            wall, cpu, documents[workers] = run(workers)
            rows[workers].append((wall, cpu))
    best = {w: min(r) for w, r in rows.items()}
    print(json.dumps({
        "gz_bytes": path.stat().st_size, "lines": documents[1]["lines"]["total"],
        "one_process": {"wall_s": round(best[1][0], 2), "cpu_s": round(best[1][1], 2)},
        f"{args.workers}_processes": {"wall_s": round(best[args.workers][0], 2),
                                      "cpu_s": round(best[args.workers][1], 2)},
        "wall_ratio_split_over_one": round(best[args.workers][0] / best[1][0], 2),
        "same_document": documents[1] == documents[args.workers],
    }, indent=2))


if __name__ == "__main__":
    main()
