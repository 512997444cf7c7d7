"""Benchmark: iisfleet's log engine vs DuckDB ``read_csv`` vs a plain Python loop, on one generated log.

    python bench/logs/generate.py /tmp/iisbench --lines 10000000     # once: the log and its truth
    python bench/logs/bench.py /tmp/iisbench                          # runs each approach in a child process

Every approach runs in its own child process of this one (one process tree), on the same file, with the
page cache warmed first. Each child reports its wall time, its peak RSS (its own, and its children's for
iisfleet's worker processes) and its counts; the parent checks the counts against the generator's truth
and prints lines/s and the ratios. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


# --- the approaches (run inside the child) ------------------------------------------------------------

def run_iisfleet(path: str, workers: int, native: bool = True) -> dict:
    from toolkit.logs import LogAnalyzer
    from toolkit.logs.engine import native_available

    if native and not native_available():
        raise SystemExit("the compiled scanner is not built: pip install -e . with a C compiler")
    analyzer = LogAnalyzer(window_s=30, workers=workers, native=native)
    analyzer.feed_path(path)
    result = analyzer.result()
    groups: dict[str, list[int]] = {}
    for g in result.groups:
        entry = groups.setdefault(f"{g.site}|{g.substatus}|{g.win32}", [0, 0])
        entry[0] += g.count
        entry[1] += g.terminal
    return {"lines_total": result.lines_total, "malformed": result.lines_malformed,
            "requests": result.requests,
            "status_401": result.status_401_total, "terminal": result.status_401_terminal,
            "handshake": result.status_401_handshake, "groups": dict(sorted(groups.items()))}


def run_plain(path: str) -> dict:
    sys.path.insert(0, str(HERE))
    from plain_loop import analyse

    counts = analyse(path, window_s=30)
    groups: dict[str, list[int]] = {}
    for key, (count, terminal) in counts.pop("groups").items():
        _server, site, sub, win32 = key.split("|")
        entry = groups.setdefault(f"{site}|{sub}|{win32}", [0, 0])
        entry[0] += count
        entry[1] += terminal
    counts["groups"] = dict(sorted(groups.items()))
    return counts


def _prescan_layouts(path: str) -> tuple[int, list[list[str]]]:
    """Directive prescan (memchr-speed ``find(b'#')`` on 16 MiB blocks): line count and every #Fields list."""
    layouts: list[list[str]] = []
    lines = 0
    with open(path, "rb") as stream:
        carry = b""
        while True:
            block = stream.read(16 << 20)
            if not block:
                break
            buf = carry + block
            cut = buf.rfind(b"\n") + 1
            buf, carry = buf[:cut], buf[cut:]
            lines += buf.count(b"\n")
            pos = buf.find(b"#")
            while pos >= 0:
                if (pos == 0 or buf[pos - 1] == 10) and buf.startswith(b"#Fields:", pos):
                    names = buf[pos + 8:buf.find(b"\n", pos)].decode().split()
                    if names not in layouts:
                        layouts.append(names)
                pos = buf.find(b"#", pos + 1)
        if carry:
            lines += 1
    return lines, layouts


def run_duckdb(path: str, threads: int) -> dict:
    """DuckDB with the pre-pass it needs to be right on a file whose #Fields change.

    Fixed-column reads are silently wrong here (docs: log-perf notes), so: prescan the layouts, read every
    line as up to N VARCHAR columns with ``null_padding``, tell the layouts apart by which columns are
    filled (they differ in field count), drop rows whose count fits no layout (malformed), then classify
    401s with a join on the client key inside the window.
    """
    import duckdb

    total_lines, layouts = _prescan_layouts(path)
    widths = [len(names) for names in layouts]
    assert len(set(widths)) == len(widths), "padded read needs layouts of different widths"
    width = max(widths)
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    con.execute(f"""
        CREATE TEMP TABLE raw AS
        SELECT row_number() OVER () AS rn, * FROM read_csv('{path}', delim=' ', header=false, quote='',
            escape='', comment='#', null_padding=true, auto_detect=false, columns={{{columns}}})""")

    def col(names: list[str], field: str, default: str) -> str:
        return f"c{names.index(field)}" if field in names else default

    cases = {key: [] for key in ("ts", "server", "site", "ip", "ua", "stem", "status", "sub", "win32")}
    fits = []
    for names in layouts:
        n = len(names)
        # Exactly n fields: column n-1 filled, column n (if any) empty.
        cond = f"c{n - 1} IS NOT NULL" + (f" AND c{n} IS NULL" if n < width else "")
        fits.append(f"({cond})")
        mapping = {
            "ts": (f"epoch(CAST({col(names, 'date', 'NULL')} || ' ' || {col(names, 'time', 'NULL')} "
                   "AS TIMESTAMP))"),
            "server": col(names, "s-computername", "''"), "site": col(names, "s-sitename", "'W3SVC1'"),
            "ip": col(names, "c-ip", "''"), "ua": col(names, "cs(User-Agent)", "''"),
            "stem": col(names, "cs-uri-stem", "''"), "status": col(names, "sc-status", "NULL"),
            "sub": col(names, "sc-substatus", "'0'"), "win32": col(names, "sc-win32-status", "'0'")}
        for key, expr in mapping.items():
            cases[key].append(f"WHEN {cond} THEN {expr}")
    select = ", ".join(f"CASE {' '.join(whens)} END AS {key}" for key, whens in cases.items())
    con.execute(f"CREATE TEMP TABLE req AS SELECT rn, {select} FROM raw WHERE {' OR '.join(fits)}")
    rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    requests = con.execute("SELECT count(*) FROM req").fetchone()[0]
    classified = con.execute("""
        WITH s AS (SELECT * FROM req WHERE status = '401'),
             ok AS (SELECT rn, ts, server, site, ip, ua, stem FROM req
                    WHERE TRY_CAST(status AS INTEGER) < 400),
             hs AS (SELECT DISTINCT s.rn FROM s JOIN ok USING (server, site, ip, ua, stem)
                    WHERE ok.rn > s.rn AND ok.ts - s.ts <= 30)
        SELECT s.site, CAST(s.sub AS BIGINT), CAST(s.win32 AS BIGINT), count(*),
               count(*) FILTER (WHERE hs.rn IS NULL)
        FROM s LEFT JOIN hs ON s.rn = hs.rn GROUP BY ALL ORDER BY ALL""").fetchall()
    groups = {f"{site}|{sub}|{win32}": [count, terminal] for site, sub, win32, count, terminal in classified}
    status_401 = sum(v[0] for v in groups.values())
    terminal = sum(v[1] for v in groups.values())
    return {"lines_total": total_lines, "malformed": rows - requests, "requests": requests,
            "status_401": status_401, "terminal": terminal, "handshake": status_401 - terminal,
            "groups": dict(sorted(groups.items()))}


def child(approach: str, path: str) -> None:
    started = time.perf_counter()
    cpu_started = time.process_time()
    if approach == "iisfleet":
        counts = run_iisfleet(path, workers=os.cpu_count() or 1)
    elif approach == "iisfleet-python":  # the pure-Python engine (what runs when the C scanner is not built)
        counts = run_iisfleet(path, workers=os.cpu_count() or 1, native=False)
    elif approach == "iisfleet-1proc":
        counts = run_iisfleet(path, workers=1)
    elif approach == "duckdb":
        counts = run_duckdb(path, threads=os.cpu_count() or 1)
    elif approach == "plain":
        counts = run_plain(path)
    else:
        raise SystemExit(f"unknown approach {approach}")
    wall = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"approach": approach, "wall_s": wall,
                      "cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
                      "peak_rss_mb": own.ru_maxrss / 1024, "peak_child_rss_mb": kids.ru_maxrss / 1024,
                      "counts": counts}))


# --- the parent ------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the folder generate.py wrote")
    parser.add_argument("--approaches", default="iisfleet,iisfleet-1proc,iisfleet-python,duckdb,plain")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    truth = json.loads((args.folder / "truth.json").read_text())
    path = truth["path"]
    if args.child:
        child(args.child, path)
        return
    with open(path, "rb") as stream:  # warm the page cache so every approach starts equal
        while stream.read(4 << 20):  # small reads: children inherit this process's peak RSS (ru_maxrss)
            pass
    expected = {key: truth[key] for key in ("lines_total", "malformed", "requests", "status_401", "terminal",
                                            "handshake", "groups")}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    results = []
    for approach in args.approaches.split(","):
        out = subprocess.run([sys.executable, __file__, str(args.folder), "--child", approach], env=env,
                             capture_output=True, text=True, check=False)
        if out.returncode:
            print(f"{approach}: failed\n{out.stderr[-2000:]}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["correct"] = result["counts"] == expected
        if not result["correct"]:
            diff = {k: (result["counts"].get(k), v) for k, v in expected.items()
                    if result["counts"].get(k) != v}
            result["diff"] = {k: v for k, v in diff.items() if k != "groups"} | ({"groups": "differ"}
                                                                                 if "groups" in diff else {})
        results.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "counts"}), flush=True)
    lines = truth["lines_total"]
    size = truth["bytes"]
    print(f"\n{lines:,} lines, {size / 2**30:.2f} GiB, {os.cpu_count()} CPUs; 401s {truth['status_401']:,} "
          f"(terminal {truth['terminal']:,}, handshake {truth['handshake']:,})")
    print(f"{'approach':16} {'wall s':>8} {'M lines/s':>10} {'MB/s':>7} {'CPU s':>7} {'peak RSS MB':>12} "
          "correct")
    by_name = {}
    for r in results:
        rate = lines / r["wall_s"]
        by_name[r["approach"]] = rate
        rss = max(r["peak_rss_mb"], r["peak_child_rss_mb"])
        print(f"{r['approach']:16} {r['wall_s']:8.2f} {rate / 1e6:10.2f} {size / r['wall_s'] / 1e6:7.0f} "
              f"{r['cpu_s']:7.1f} {rss:12.0f} {'yes' if r['correct'] else 'NO ' + json.dumps(r.get('diff'))}")
    if "iisfleet" in by_name:
        for other in ("duckdb", "plain"):
            if other in by_name:
                print(f"iisfleet / {other}: {by_name['iisfleet'] / by_name[other]:.2f}x")


if __name__ == "__main__":
    main()
