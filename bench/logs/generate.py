"""Write the benchmark log (default 10M lines, two #Fields changes, realistic 401 mix) and its truth.

    python bench/logs/generate.py OUT_DIR [--lines 10000000] [--seed 7]

Writes OUT_DIR/W3SVC1/u_ex261124.log and OUT_DIR/truth.json (what the generator knows it wrote).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from toolkit.logs.synth import write_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    path = args.out / "W3SVC1" / "u_ex261124.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # ~120 requests/s (a busy intranet server: 10M lines in a day); the second layout covers 30 % of the
    # file and adds s-sitename, s-computername and a custom field; one line in 100003 is cut short.
    truth = write_log(path, lines=args.lines, seed=args.seed, layout_changes=(0.3, 0.6),
                      malformed_every=100_003)
    document = truth.to_dict()
    document["path"] = str(path)
    document["bytes"] = path.stat().st_size
    (args.out / "truth.json").write_text(json.dumps(document, indent=1))
    print(f"wrote {path} ({document['bytes'] / 2**30:.2f} GiB, {truth.lines_total:,} lines) "
          f"in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
