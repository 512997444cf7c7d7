"""The compiled scanner (toolkit/logs/_scan.c) and the pure-Python engine give the same analysis.

Random logs, seeded so a failure can be replayed, mix handshakes and terminal 401s from a small client
population with the things real and broken logs contain: ``#Fields`` changes to other field orders (with
and without the user agent next to ``c-ip``, ``sc-status`` anywhere, several sites in one file), blank
and cut-short lines, odd dates and times, CRLF, bytes that are not UTF-8, NULs and very long lines. Each
log is analysed with every buffer size and process count that moves the boundaries around, and the whole
``iisfleet.analyze/1`` document must be identical, samples and malformed-line numbers included.

Timestamps stay within the engines' 5 s slack of time order: the Python engine closes a 401's window
at the first sampled line (every 16 KiB) past it, the compiled one at the exact line, so a success logged
with a much earlier time than the lines before it can be judged differently. Two more inputs are left
out on purpose because the Python engine's block-wise field-count proof cannot see
them (docs/analyze.md): lines with too many fields in the same stretch as lines with too few or blank
lines (the space counts cancel out), and whitespace-only lines with exactly as many spaces as a data line. The compiled
scanner checks each line and reports both; ``test_compiled_scanner_checks_every_line`` covers that.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from toolkit.logs import LogAnalyzer
from toolkit.logs import analysis as analysis_module
from toolkit.logs import engine as engine_module

pytestmark = pytest.mark.skipif(not engine_module.native_available(),
                                reason="the compiled scanner is not built (no C compiler at install time) or IISFLEET_NO_NATIVE is set")

BASE_FIELDS = ["date", "time", "s-sitename", "s-computername", "s-ip", "cs-method", "cs-uri-stem",
               "cs-uri-query", "s-port", "cs-username", "c-ip", "cs(User-Agent)", "cs(Referer)", "sc-status",
               "sc-substatus", "sc-win32-status", "time-taken"]
OPTIONAL = {"s-sitename", "s-computername", "s-ip", "cs-method", "cs-uri-query", "s-port", "cs-username",
            "cs(User-Agent)", "cs(Referer)", "time-taken"}
CODES_401 = [("2", "5"), ("1", "2148074254"), ("1", "2148074252"), ("1", "1326"), ("3", "5"), ("502", "0"),
             ("1", "-2146893054"), ("5", "0"),
             # sc-win32-status values that do not fit in 32 bits (malformed lines) and ones that just do
             ("1", "4294967296"), ("3", "18446744073709551621"), ("1", "-2147483649"), ("1", "04294967295"),
             ("1", "-2147483648"), ("1", "-")]
ODD_DATES = ["-", "2026-02-30", "2026/11/24", "26-11-24", "0000-01-01", "2026-1-24", "", "2026-11-24x"]
ODD_TIMES = ["1:2:3", "25:61:61", "-", "", "10:0a:00", "{}.123"]  # "{}": the line's own time, with a fraction


def _layout(rng: random.Random) -> list[str]:
    fields = [f for f in BASE_FIELDS if f not in OPTIONAL or rng.random() < 0.7]
    if rng.random() < 0.3:
        rng.shuffle(fields)  # any order IIS can be told to log in, custom fields included
    if rng.random() < 0.3:
        fields.insert(rng.randrange(len(fields) + 1), "X-Forwarded-For")
    return fields


def _random_log(seed: int, lines: int = 2500) -> tuple[bytes, int]:
    """A log of about ``lines`` lines; returns its bytes and its width flavour (short or long lines)."""
    rng = random.Random(seed)
    crlf = rng.random() < 0.3
    eol = b"\r\n" if crlf else b"\n"
    # One kind of wrong field count per log, so the Python engine's proof can always see it.
    flavour = rng.choice(["short", "long"])
    clients = [(f"10.0.{rng.randrange(4)}.{rng.randrange(1, 12)}",
                rng.choice(["Mozilla/5.0+(Windows)", "curl/8.4.0", "PowerShell/7.3"])) for _ in range(25)]
    stems = ["/", "/app", "/api/orders", "/owa/auth.owa", "/caf\xe9/men\xfc".encode("latin-1").decode("latin-1")]
    sites = ["W3SVC1", "W3SVC2"] if rng.random() < 0.2 else ["W3SVC1"]
    clock = 36000.0
    out: list[bytes] = []
    layout = _layout(rng)
    out.append(b"#Software: Microsoft Internet Information Services 10.0" + eol)
    out.append(b"#Fields: " + " ".join(layout).encode() + eol)
    pending: list[tuple[str, str, str]] = []  # conversations waiting for their second step
    for _ in range(lines):
        roll = rng.random()
        if roll < 0.004:
            layout = _layout(rng)
            out.append(b"#Fields: " + " ".join(layout).encode() + eol)
            continue
        if roll < 0.008 and flavour == "short":  # a blank line is a short line to the proof
            out.append(rng.choice([b"", b"\r", b"\t ", b"   "]) + eol)
            continue
        clock += rng.choice([0.0, 0.0, 0.2, 1.0, 3.0, 40.0]) if rng.random() < 0.97 else 400.0
        # Completion order: a line may be logged up to 3 s out of time order (within the engine's slack).
        logged = max(0.0, clock - rng.choice([0.0, 0.0, 0.0, 1.0, 3.0]))
        if rng.random() < 0.01:  # far out of order: it moves the log past open 401s' windows
            logged = max(0.0, clock + rng.choice([-90.0, -40.0, 40.0, 90.0]))
        seconds = int(logged)
        values = {
            "date": "2026-11-24" if seconds < 86400 else "2026-11-25",
            "time": f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
            "s-sitename": rng.choice(sites), "s-computername": "WEB01", "s-ip": "10.0.0.5",
            "cs-method": rng.choice(["GET", "POST"]), "cs-uri-query": "-", "s-port": "443",
            "cs-username": "-", "cs(Referer)": "-", "time-taken": str(rng.randrange(1, 900)),
            "X-Forwarded-For": "-",
        }
        if pending and rng.random() < 0.5:
            ip, ua, stem = pending.pop(rng.randrange(len(pending)))
            status = rng.choice([("200", "0", "0"), ("200", "0", "0"), ("304", "0", "0"), ("401", "1", "1326"),
                                 ("500", "0", "0"), ("099", "0", "0")])
            values["cs-username"] = "CONTOSO\\user1" if status[0] < "4" else "-"
        else:
            ip, ua = rng.choice(clients)
            stem = rng.choice(stems)
            if rng.random() < 0.25:
                status = ("401", *rng.choice(CODES_401))
                pending.append((ip, ua, stem))
            else:
                status = rng.choice([("200", "0", "0"), ("404", "0", "2"), ("302", "0", "0"),
                                     ("4010", "0", "0"), ("40", "0", "0"), ("2x0", "0", "0")])
        values.update({"c-ip": ip, "cs(User-Agent)": ua, "cs-uri-stem": stem, "sc-status": status[0],
                       "sc-substatus": status[1], "sc-win32-status": status[2]})
        if rng.random() < 0.01:
            values["date"] = rng.choice(ODD_DATES)
        if rng.random() < 0.01:
            values["time"] = rng.choice(ODD_TIMES).format(values["time"])
        fields = [values.get(name, "-") for name in layout]
        line = " ".join(fields).encode("latin-1")
        mutation = rng.random()
        if mutation < 0.01:
            parts = line.split(b" ")
            if flavour == "short":
                line = b" ".join(parts[:rng.randrange(1, len(parts))])
            else:
                line = line + b" extra" * rng.randrange(1, 3)
        elif mutation < 0.015:
            line = line.replace(b"/app", b"/\xff\x00\xc3(", 1)  # not UTF-8, a NUL
        elif mutation < 0.017:
            line = line.replace(b"- 443", b"-" + b"q" * rng.randrange(1000, 70000) + b" 443", 1)
        out.append(line + eol)
    if rng.random() < 0.5 and out:
        out[-1] = out[-1].rstrip(b"\r\n")  # the last line without its newline
    return b"".join(out), flavour


def _analysis(path: Path, *, native: bool, workers: int = 1, window_s: float = 30.0) -> dict:
    analyzer = LogAnalyzer(workers=workers, native=native, window_s=window_s)
    analyzer.feed_path(path)
    return analyzer.result().to_dict()


@pytest.mark.parametrize("seed", range(12))
def test_random_logs_give_the_same_document(tmp_path: Path, monkeypatch, seed: int) -> None:
    text, _flavour = _random_log(seed)
    path = tmp_path / "W3SVC1" / "u_ex261124.log"
    path.parent.mkdir()
    path.write_bytes(text)
    expected = _analysis(path, native=False)
    assert expected["status_401"]["total"] > 100  # the log exercises the classification
    assert _analysis(path, native=True) == expected
    # Buffer ends everywhere (carried 401s), then byte ranges in two processes.
    rng = random.Random(seed)
    for chunk in (rng.randrange(300, 5000), rng.randrange(5000, 40000)):
        monkeypatch.setattr(analysis_module, "CHUNK_BYTES", chunk)
        assert _analysis(path, native=True) == _analysis(path, native=False), chunk
    monkeypatch.setattr(analysis_module, "PARALLEL_MIN_BYTES", 1)
    assert _analysis(path, native=True, workers=2) == _analysis(path, native=False, workers=2)


@pytest.mark.parametrize("window_s", [0, 1, 5, 3600])
def test_window_sizes_agree(tmp_path: Path, window_s: float) -> None:
    text, _flavour = _random_log(100 + int(window_s))
    path = tmp_path / "u_ex261124.log"
    path.write_bytes(text)
    assert _analysis(path, native=True, window_s=window_s) == _analysis(path, native=False, window_s=window_s)


def test_compiled_scanner_checks_every_line(tmp_path: Path, header: str, row) -> None:
    """Where the Python proof can be fooled (a long and a short line in one block), the compiled scanner
    reports both lines, with their numbers and field counts."""
    long_line = row("10:00:01", "200 0 0").replace(" 443 ", " 443 extra ")
    short_line = row("10:00:02", "200 0 0").replace(" 443 ", " ")
    whitespace = " " * 14 + "\n"  # as many spaces as a 15-field line, and nothing else
    path = tmp_path / "u_ex261124.log"
    path.write_text(header + row("10:00:00", "401 2 5") + long_line + short_line + whitespace
                    + row("10:00:03", "200 0 0"))
    result = _analysis(path, native=True)
    assert [(m["line"], m["reason"]) for m in result["malformed"]] == [
        (6, "16 fields where #Fields lists 15"), (7, "14 fields where #Fields lists 15")]
    assert result["requests"] == 2 and result["lines"]["malformed"] == 2
    assert result["status_401"] == {"total": 1, "terminal": 0, "handshake": 1}


def test_scan_segment_rejects_bad_arguments() -> None:
    """The compiled entry point checks what it is given instead of reading outside the buffer."""
    scan = engine_module._native.scan_segment  # type: ignore[union-attr]
    fields = (0, 1, 2, 3, 4, 5, 6, -1, -1)
    buf = b"2026-11-24 10:00:00 1.2.3.4 / 401 2 5\n"

    def stamp(date: bytes, clock: bytes) -> None:
        return None

    assert scan(buf, 0, len(buf), 7, fields, 30, 5, 0, stamp)[:2] == (1, 1)
    for args in ((buf, 0, len(buf) + 1, 7, fields), (buf, 5, 4, 7, fields), (buf, -1, 3, 7, fields),
                 (buf, 0, len(buf), 5, fields), (buf, 0, len(buf), 7, (0, 1, 2)),
                 (buf, 0, len(buf), 7, (0, 1, 2, 3, 4, 5, -1, -1, -1))):
        with pytest.raises(ValueError):
            scan(*args, 30, 5, 0, stamp)


def _reference_counts(buf: bytes, width: int, i_status: int) -> tuple[int, int, int, int]:
    """Lines, requests, problems and 401 lines of ``buf`` by the plainest reading of the rules."""
    lines = buf.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    requests = problems = status_401 = 0
    for line in lines:
        line = line[:-1] if line.endswith(b"\r") else line
        if not line.strip() or line.count(b" ") != width - 1:
            problems += 1
            continue
        requests += 1
        status_401 += line.split(b" ")[i_status] == b"401"
    return len(lines), requests, problems, status_401


@pytest.mark.parametrize("seed", range(6))
def test_compiled_scanner_on_random_bytes(seed: int) -> None:
    """Arbitrary bytes (log-like tokens, control bytes, no newline at the end): the scanner never reads
    outside its range, and every line is accounted for exactly once."""
    scan = engine_module._native.scan_segment  # type: ignore[union-attr]
    rng = random.Random(seed)
    tokens = [b"401", b"200", b"2026-11-24", b"10:00:00", b"10.0.0.1", b"/a", b"-", b"", b"\r", b"\t", b"\x00",
              b"\xff", b"1", b"5", b"99:99:99", b"2026-02-30"]
    for _ in range(300):
        width = rng.randrange(1, 12)
        lines = []
        for _ in range(rng.randrange(0, 40)):
            count = width if rng.random() < 0.7 else rng.randrange(0, width + 3)
            lines.append(b" ".join(rng.choice(tokens) for _ in range(count)))
        buf = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        positions = list(range(width)) * (9 // width + 1)
        rng.shuffle(positions)
        fields = tuple(positions[:7]) + tuple(rng.choice([-1, *range(width)]) for _ in range(2))
        # Scan a random slice, as the engine scans segments of a larger buffer.
        start = rng.randrange(0, len(buf) + 1)
        start = buf.rfind(b"\n", 0, start) + 1
        lines_, requests, problems, handshakes, terminal, still_open = scan(
            buf, start, len(buf), width, fields, rng.choice([0, 30]), 5, 0, lambda d, c: None)
        expected = _reference_counts(buf[start:], width, fields[4])
        assert (lines_, requests, len(problems)) == expected[:3]
        assert sum(handshakes.values()) + len(terminal) + len(still_open) == expected[3]
        assert [n for n, _f in problems] == sorted(n for n, _f in problems)
