"""Does a diagnosis depend on the second of the day a run starts?

The lab presents a fleet's traffic moved to "now" and splits it into daily ``u_exYYMMDD.log`` files at
midnight of the shifted time, as IIS does. So the start time decides which client conversations (a 401
and the same client's next line for that URL, within the handshake window) fall across a file boundary.
A rule that holds for any fleet showing the same evidence gives the same findings whichever second that
is. This script finds every such second for a generated fleet, and for each one (or a seeded sample)
re-runs the real ``Get-IisW3CLog`` (the C# core under Mono, as the lab answers it) for the hosts whose
conversation it splits, diagnoses the whole fleet again and compares the (host, cause, site, substatus)
findings with those at a second that splits nothing.

    .venv/bin/python bench/rollover/rollover.py                       # seed-catalog, 12 hosts, every second
    .venv/bin/python bench/rollover/rollover.py --sample 40 --seed 3  # a sample
    .venv/bin/python bench/rollover/rollover.py --json

Exit code 0 when every second gives the quiet second's findings, 1 otherwise (the differences printed).
The other collectors' envelopes come from one lab run of triage-401; only the W3C envelope of the hosts a
second concerns is re-collected, at that second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from toolkit.lab.model import second_of_day  # noqa: E402
from toolkit.lab.rollover import findings, lab_envelopes, quiet_second, split_seconds, w3c_envelopes  # noqa: E402
from toolkit.lab.scenarios import DEFAULT_REFERENCE, generate  # noqa: E402


def _time_of_day(text: str) -> int:
    try:
        return second_of_day(text, name="--at")
    except ValueError as exc:  # UsageError: argparse then prints its message, not "invalid value"
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="seed-catalog")
    parser.add_argument("--hosts", type=int, default=12)
    parser.add_argument("--sample", type=int, default=0, help="seconds to check (0 = every splitting second)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--at", action="append", default=[], metavar="HH:MM:SS",
                        type=_time_of_day,
                        help="check this UTC second of the day too (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="iisfleet-rollover-") as scratch:
        fleet_dir = Path(scratch) / "fleet"
        generate(args.scenario, args.hosts, fleet_dir)
        split = split_seconds(fleet_dir, DEFAULT_REFERENCE)
        splitting = len(split)  # before --at adds seconds that may split nothing
        quiet = quiet_second(split)
        started = time.perf_counter()
        base = lab_envelopes(fleet_dir, Path(scratch) / "run")
        for host, envelope in w3c_envelopes(fleet_dir, set(base), quiet).items():
            base[host]["Get-IisW3CLog"] = envelope
        expected = findings(base)
        seconds = sorted(split)
        if args.sample and args.sample < len(seconds):
            seconds = sorted(random.Random(args.seed).sample(seconds, args.sample))
        for second in args.at:
            if second not in seconds:
                seconds.append(second)
                split.setdefault(second, set(base))
        differences = []
        for number, second in enumerate(seconds, 1):
            envelopes = {host: dict(env) for host, env in base.items()}
            for host, envelope in w3c_envelopes(fleet_dir, split[second], second).items():
                envelopes[host]["Get-IisW3CLog"] = envelope
            got = findings(envelopes)
            if got != expected:
                differences.append({"second": str(dt.timedelta(seconds=second)), "hosts": sorted(split[second]),
                                     "extra": sorted(got - expected), "missing": sorted(expected - got)})
            if not args.json and number % 50 == 0:
                print(f"  {number}/{len(seconds)} seconds checked, {len(differences)} differ", file=sys.stderr)
        elapsed = time.perf_counter() - started
    result = {"scenario": args.scenario, "hosts": args.hosts, "splitting_seconds": splitting,
              "checked": len(seconds), "quiet_second": str(dt.timedelta(seconds=quiet)),
              "findings": len(expected), "differing": len(differences), "seconds_elapsed": round(elapsed, 1),
              "differences": differences}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.scenario}, {args.hosts} hosts: {splitting} seconds of the day split a conversation; "
              f"{len(seconds)} checked against {result['quiet_second']} ({len(expected)} findings) in "
              f"{elapsed:.0f} s: {len(differences)} differ")
        for d in differences[:20]:
            print(f"  {d['second']} {','.join(d['hosts'])}: extra {d['extra']} missing {d['missing']}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
