"""The diagnosis counts terminal 401s exactly as `iisfleet analyze` does (docs/analyze.md).

A 401.1 SEC_E_NO_CREDENTIALS leg with no success from that client within the window is terminal in
both; the diagnosis only moves the rounds of an attempt that failed later (the challenge and the leg
before a rejected answer) to that failure. So every terminal row the offline analyzer reports is
either in a diagnosed group or an absorbed round, for each log under tests/fixtures/diagnose/logs/.
"""

from __future__ import annotations

import base64
import gzip
from collections import Counter
from pathlib import Path

import pytest

from toolkit.diagnose import diagnose
from toolkit.diagnose.evidence import absorbed_rounds, build_host_evidence, terminal_groups
from toolkit.logs import LogAnalyzer

LOGS = Path(__file__).parents[1] / "fixtures" / "diagnose" / "logs"
CASES = sorted(p for p in LOGS.iterdir() if p.is_dir())
NO_CREDENTIALS = 2148074254


def _offline(folder: Path) -> dict:
    analyzer = LogAnalyzer(window_s=30.0)
    analyzer.feed_path(folder)
    return analyzer.result().to_dict()


def _collected(folder: Path, *, newest_first: bool = False):
    """The same files as Get-IisW3CLog sends them (every line kept, numbered); the collector itself lists a
    folder's files newest first."""
    files = []
    for path in sorted(folder.rglob("*.log"), reverse=newest_first):
        lines = path.read_bytes().splitlines()
        excerpt = b"".join(f"{n}\t".encode() + line + b"\n" for n, line in enumerate(lines, 1))
        site = path.parent.name
        files.append({"path": str(path), "site_id": int(site[5:]) if site.startswith("W3SVC") else None,
                      "size_bytes": len(excerpt), "lines_total": len(lines),
                      "data_lines": sum(1 for line in lines if line and not line.startswith(b"#")),
                      "lines_kept": len(lines), "truncated": False,
                      "excerpt": {"encoding": "gzip+base64", "bytes": len(excerpt), "truncated": False,
                                  "content": base64.b64encode(gzip.compress(excerpt)).decode()}})
    envelope = {"schema": "iisfleet.collector/1", "collector": "Get-IisW3CLog", "version": 1, "host": "WEB01",
                "time_utc": "2026-11-24T12:00:00Z", "data": {"directories": [str(folder)], "files": files},
                "errors": []}
    return build_host_evidence("web01", {"Get-IisW3CLog": envelope})


@pytest.mark.parametrize("folder", CASES, ids=[p.name for p in CASES])
def test_every_terminal_row_is_diagnosed_or_absorbed(folder: Path) -> None:
    offline = _offline(folder)
    host = _collected(folder)
    by_code = Counter()
    for row in offline["rows"]:
        by_code[(row["substatus"], row["win32"])] += row["terminal"]
    assert host.log.terminal_401 == offline["status_401"]["terminal"]
    assert {(g.substatus, g.win32): g.terminal for g in host.log.groups if g.terminal} == +by_code
    diagnosed = sum(g.terminal for g in terminal_groups(host))
    assert diagnosed + absorbed_rounds(host) == offline["status_401"]["terminal"]
    # the diagnosis reports what it counts
    assert sum(h.terminal_401 for h in diagnose({"web01": host}).hosts) == diagnosed


def test_negotiate_legs_are_classified_like_the_analyzer() -> None:
    folder = LOGS / "negotiate-legs"
    offline = _offline(folder)
    terminal = {(r["substatus"], r["win32"]): r["terminal"] for r in offline["rows"] if r["terminal"]}
    # .12 (nothing follows) and .14 (success after the window); .11's leg and every handshake that got in
    # (.10, .13) are not. 401.2 challenges of .11, .12 and .14 are terminal too.
    assert terminal[(1, NO_CREDENTIALS)] == 3
    host = _collected(folder)
    groups = {(g.substatus, g.win32): g.terminal for g in terminal_groups(host)}
    # .11's leg belongs to its rejected answer (2148074252); .12's and .14's legs are findings' rows
    assert groups == {(1, NO_CREDENTIALS): 2, (1, 2148074252): 1}
    findings = diagnose({"web01": host}).findings
    legs = [f for f in findings if f.substatus == "401.1" and f.terminal_401 >= 2]
    assert legs, "a terminal leg is never silent"



@pytest.mark.parametrize("newest_first", [True, False], ids=["collector-order", "name-order"])
def test_an_attempt_goes_on_in_the_next_file_of_its_folder(newest_first: bool, tmp_path: Path) -> None:
    """The daily rollover falls between a proxy's NTLM leg (23:59:59) and the fresh 401.2 after it
    (00:00:00): that leg belongs to the attempt, exactly as when both lines are in one file. Seen on the
    lab fleet when a run started at the one second of the day that put such an attempt across midnight."""
    folder = LOGS / "ntlm-leg-at-midnight"
    host = _collected(folder, newest_first=newest_first)
    groups = {(g.substatus, g.win32): g.terminal for g in terminal_groups(host)}
    # 10.40.0.5's three legs are each followed by a fresh 401.2 (absorbed); 10.1.0.12's leg ended its
    # attempt (its success comes 5 minutes later, in the next file): terminal
    assert groups == {(2, 5): 3, (1, NO_CREDENTIALS): 1}
    assert dict(host.log.legs_before_failure) == {"W3SVC3": 3}

    one_file = tmp_path / "W3SVC3" / "u_ex261123.log"
    one_file.parent.mkdir()
    first, second = sorted((folder / "W3SVC3").glob("*.log"))
    one_file.write_bytes(first.read_bytes() + b"".join(
        line for line in second.read_bytes().splitlines(keepends=True) if not line.startswith(b"#")))
    single = _collected(tmp_path)
    assert {(g.substatus, g.win32): g.terminal for g in terminal_groups(single)} == groups
    assert single.log.legs_before_failure == host.log.legs_before_failure
