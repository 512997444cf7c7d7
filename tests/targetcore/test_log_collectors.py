"""The log collectors of the C# core, run for real under Mono, against toolkit/logs (the controller's engine).

Differential: for every log an admin could drop into the fixture folders, the core's on-host classification
plus the controller's merge (``LogAnalyzer.feed_collected``) give the same 401 counts, per group, as
``iisfleet analyze`` reading the whole file.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from toolkit.contract import decode_blob, merge_parts
from toolkit.logs.synth import write_log

from logcore import collect, controller_analysis, counts, reference_analysis, terminal_lines

REPO = Path(__file__).resolve().parents[2]


def _fixture_logs() -> list[Path]:
    roots = [REPO / "tests" / "fixtures" / "logs", REPO / "toolkit" / "logs" / "samples", Path("/work/shared/conformance")]
    found = []
    for root in roots:
        if root.is_dir():
            found += [p for p in sorted(root.rglob("*.log")) if "httperr" not in p.name.lower()
                      and "HTTPERR" not in p.parts]
    return found


FIXTURES = _fixture_logs()


@pytest.mark.parametrize("log", FIXTURES, ids=[f"{p.parent.name}/{p.name}" for p in FIXTURES])
def test_core_and_controller_agree_with_toolkit_logs_on_every_fixture(core_host, tmp_path: Path, log: Path) -> None:
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    shutil.copy(log, folder / log.name)
    envelope, _ = collect(core_host, tmp_path)
    reference = reference_analysis(folder)
    collected = controller_analysis(envelope)
    assert counts(collected) == counts(reference)
    assert terminal_lines(collected) == terminal_lines(reference)
    assert sum(f["data_lines"] for f in envelope["data"]["files"]) == reference.requests


GENERATED = {
    "fields-changes": {},  # #Fields switches between the 15- and 23-field layouts twice
    "bom": {"bom": True},
    "crlf": {"crlf": True},
    "malformed": {"malformed_every": 997},
    "many-failures": {"failure_boost": 20.0},
    "busy": {"lines_per_second": 3000.0},  # many clients' windows overlap
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_logs_agree(core_host, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "W3SVC3"
    folder.mkdir()
    truth = write_log(folder / "u_ex261124.log", lines=20000, seed=len(name), site="W3SVC3", **GENERATED[name])
    envelope, _ = collect(core_host, tmp_path)
    collected = controller_analysis(envelope)
    assert counts(collected) == counts(reference_analysis(folder))
    assert collected.status_401_terminal == truth.terminal and collected.status_401_handshake == truth.handshake
    (entry,) = envelope["data"]["files"]
    # Only terminal 401s travel as lines: the excerpt is a small fraction of the file.
    assert entry["terminal_401"] == truth.terminal and entry["excerpt"]["bytes"] < entry["size_bytes"] / 5


@pytest.mark.parametrize("name", ["handshake-window-moved-past.log", "handshake-malformed-line-sampled.log"])
def test_the_core_follows_the_handshake_rule_on_the_w3c_fuzz_findings(core_host, tmp_path: Path, name: str) -> None:
    """The W3C differential fuzz findings (tests/fuzz/test_fuzz.py, W3C_FINDINGS): where a line moved the log
    past a window, and where only a malformed line did (docs/analyze.md, "Handshake or terminal"). The core
    must classify them as the controller's engines do."""
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    shutil.copy(REPO / "tests" / "fuzz" / "corpus" / "w3c_differential" / name, folder / "u_ex261124.log")
    envelope, _ = collect(core_host, tmp_path)
    assert counts(controller_analysis(envelope)) == counts(reference_analysis(folder))


def test_a_conversation_continues_into_the_next_hourly_file(core_host, tmp_path: Path) -> None:
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    head = "#Fields: date time c-ip cs(User-Agent) cs-uri-stem sc-status sc-substatus sc-win32-status\n"
    (folder / "u_ex26112410.log").write_text(head + "2026-11-24 10:59:58 10.0.0.1 UA / 401 2 5\n"
                                             "2026-11-24 10:59:59 10.0.0.2 UA / 401 2 5\n")
    (folder / "u_ex26112411.log").write_text(head + "2026-11-24 11:00:03 10.0.0.1 UA / 200 0 0\n"
                                             "2026-11-24 11:01:00 10.0.0.3 UA / 200 0 0\n")
    envelope, parts = collect(core_host, tmp_path)
    assert counts(controller_analysis(envelope)) == counts(reference_analysis(folder))
    older = next(f for f in envelope["data"]["files"] if f["path"].endswith("10.log"))
    assert (older["terminal_401"], older["handshake_401"]) == (1, 1)
    # Newest first, one part per file, then the final part.
    assert [p["part"]["index"] for p in parts] == [0, 1, 2, 3] and parts[-1]["part"]["final"]
    assert [f["path"][-6:] for f in envelope["data"]["files"]] == ["11.log", "10.log"]


def test_truncated_last_line_and_a_file_still_being_written(core_host, tmp_path: Path) -> None:
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    path = folder / "u_ex261124.log"
    write_log(path, lines=3000, seed=7)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 25])  # the last line is cut short, without its newline
    with open(path, "ab") as writer:  # held open for writing while the collector reads it
        envelope, _ = collect(core_host, tmp_path)
        assert counts(controller_analysis(envelope)) == counts(reference_analysis(folder))
        writer.write(b"\n2026-11-24 23:59:59 10.9.9.9 GET / - 80 - 10.9.9.9 UA - 401 2 5 1\n")
        writer.flush()
        grown, _ = collect(core_host, tmp_path)
    (before,), (after,) = envelope["data"]["files"], grown["data"]["files"]
    assert after["size_bytes"] > before["size_bytes"] and after["terminal_401"] == before["terminal_401"] + 1
    assert counts(controller_analysis(grown)) == counts(reference_analysis(folder))


def test_a_log_with_an_old_last_write_time_but_new_lines_is_read(core_host, tmp_path: Path) -> None:
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    path = folder / "u_ex261124.log"
    path.write_text("#Fields: date time c-ip cs-uri-stem sc-status sc-substatus sc-win32-status\n"
                    "2026-11-24 20:30:00 10.0.0.1 / 401 1 1326\n")
    two_days_ago = datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp()
    os.utime(path, (two_days_ago, two_days_ago))  # NTFS updates LastWriteTime lazily for open logs
    envelope, _ = collect(core_host, tmp_path, now="2026-11-24T21:00:00Z", Since="2026-11-24T20:00:00Z", Until="")
    (entry,) = envelope["data"]["files"]
    assert entry["terminal_401"] == 1
    # A dated name whose day ended long before Since is not even opened.
    (folder / "u_ex261101.log").write_text("#Fields: date time c-ip\n2026-11-24 20:30:00 10.0.0.1\n")
    envelope, _ = collect(core_host, tmp_path, now="2026-11-24T21:00:00Z", Since="2026-11-24T20:00:00Z", Until="")
    assert [f["path"].rsplit("\\", 1)[1] for f in envelope["data"]["files"]] == ["u_ex261124.log"]


def test_caps_drop_the_oldest_lines_and_keep_the_newest(core_host, tmp_path: Path) -> None:
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    rows = "".join(f"2026-11-24 10:{minute:02d}:00 10.0.0.{minute} / 401 1 1326\n" for minute in range(10))
    (folder / "u_ex261124.log").write_text("#Fields: date time c-ip cs-uri-stem sc-status sc-substatus sc-win32-status\n" + rows)
    envelope, _ = collect(core_host, tmp_path, MaxLinesPerFile=3)
    (entry,) = envelope["data"]["files"]
    lines = decode_blob(entry["excerpt"]).decode().splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == [1, 9, 10, 11]  # the directive, then the 3 newest
    assert entry["truncated"] and entry["terminal_401"] == 10  # counting went on
    assert [e["probe"] for e in envelope["errors"]] == ["excerpt-cap"]
    assert "oldest 7" in envelope["errors"][0]["message"]
    # The byte budget drops the oldest too: 2 lines' worth (each line + 12 bytes).
    envelope, _ = collect(core_host, tmp_path, MaxBytes=2 * (len(rows.splitlines()[0]) + 12))
    lines = decode_blob(envelope["data"]["files"][0]["excerpt"]).decode().splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == [1, 10, 11]


def test_since_enters_a_large_log_by_binary_search(core_host, tmp_path: Path) -> None:
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    path = folder / "u_ex261124.log"
    write_log(path, lines=60000, seed=3, lines_per_second=1.0, layout_changes=())  # 00:00-21:16, ~9 MB
    since = "2026-11-24T20:30:00Z"
    envelope, _ = collect(core_host, tmp_path, Since=since)
    (entry,) = envelope["data"]["files"]
    assert entry["size_bytes"] > 8_000_000
    assert entry["start_offset"] > 0 and entry["line_numbers"] == "from-offset"
    assert entry["bytes_read"] < entry["size_bytes"] * 0.10  # the last 46 minutes (~4%) and one buffer
    bound = datetime(2026, 11, 24, 20, 30, tzinfo=timezone.utc)
    assert counts(controller_analysis(envelope)) == counts(reference_analysis(folder, since=bound))
    assert controller_analysis(envelope).groups[0].samples[0].source.endswith(
        f"(lines counted from byte {entry['start_offset']})")


def test_a_stopped_step_keeps_the_files_that_arrived() -> None:
    """Parts 0..2 arrived, the final part did not (the step timed out on the host)."""
    header = {"schema": "iisfleet.collector/1", "collector": "Get-IisW3CLog", "version": 2, "host": "WEB01",
              "time_utc": "2026-11-24T21:00:00Z", "errors": []}
    parts = [dict(header, data={"directories": ["D:\\logs"], "files": []}, part={"index": 0, "final": False}),
             dict(header, data={"directories": [], "files": [{"path": "a.log"}]}, part={"index": 1, "final": False}),
             dict(header, data={"directories": [], "files": [{"path": "b.log"}]}, part={"index": 2, "final": False})]
    merged = merge_parts(parts)
    assert [f["path"] for f in merged["data"]["files"]] == ["a.log", "b.log"]
    assert merged["data"]["directories"] == ["D:\\logs"]
    assert [(e["probe"], e["category"]) for e in merged["errors"]] == [("parts", "timeout")]
    complete = merge_parts(parts + [dict(header, data={"directories": [], "files": []}, part={"index": 3, "final": True})])
    assert complete["errors"] == [] and complete["parts"] == 4


def test_httperr_keeps_every_line_in_the_window(core_host, tmp_path: Path) -> None:
    sample = (REPO / "toolkit" / "logs" / "samples" / "HTTPERR" / "httperr1.log").read_bytes()
    (tmp_path / "httperr1.log").write_bytes(sample)
    envelope, parts = collect(core_host, tmp_path, collector="Get-IisHttpErrLog")
    (entry,) = envelope["data"]["files"]
    kept = decode_blob(entry["excerpt"]).splitlines()
    data = [line for line in sample.splitlines() if line and not line.startswith(b"#")]
    assert [line.split(b"\t", 1)[1] for line in kept] == [line.rstrip(b"\r") for line in sample.splitlines() if line]
    assert entry["data_lines"] == len(data) and envelope["data"]["directory"] == "D:\\logs"


def test_spaces_and_line_ends_at_every_byte_position_of_a_word(core_host, tmp_path: Path) -> None:
    """The core finds line ends and field starts eight bytes at a time: lines whose fields and ends fall on
    every offset of an 8-byte word, doubled spaces (a field too many: malformed), CRLF, and lines across the
    1 MiB read buffer's end all read as toolkit/logs reads them. 3,000 distinct handshake clients fill the
    per-group client table past its growth steps and its 2,048-client cap."""
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    lines = ["#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
             "cs(Referer) sc-status sc-substatus sc-win32-status time-taken"]
    handshake_clients: dict[str, int] = {}
    for i in range(14000):
        stamp = f"2026-11-24 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        ip = f"10.{i % 3000 // 250}.{i % 250}.{1 + i % 7}"
        stem, agent = "/" + "p" * (i % 11), "UA" + "x" * (i % 13)
        end = "\r" if i % 3 == 0 else ""
        lines.append(f"{stamp} 10.0.0.5 GET {stem} - 80 - {ip} {agent} - 401 2 5 {i % 97}{end}")
        if i % 5 == 4:
            lines.append(f"{stamp} 10.0.0.5 GET {stem} - 80  - {ip} {agent} - 200 0 0 1")  # doubled space
        else:
            handshake_clients[ip] = handshake_clients.get(ip, 0) + 1
            lines.append(f"{stamp} 10.0.0.5 GET {stem} - 80 CONTOSO\\u{i % 9} {ip} {agent} - 200 0 0 {i % 9}{end}")
    (folder / "u_ex261124.log").write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    assert (folder / "u_ex261124.log").stat().st_size > 2 * 2**20  # crosses the read buffer's end
    envelope, _ = collect(core_host, tmp_path)
    reference = reference_analysis(folder)
    collected = controller_analysis(envelope)
    assert counts(collected) == counts(reference)
    # Each 200 with a doubled space is malformed, so its 401 stays unanswered: terminal.
    assert (collected.status_401_terminal, collected.status_401_handshake) == (14000 // 5, 14000 - 14000 // 5)
    (entry,) = envelope["data"]["files"]
    assert entry["lines_total"] == 28000
    (group,) = entry["handshakes"]
    assert group["count"] == sum(handshake_clients.values())
    seen = {c["ip"]: c["count"] for c in group["clients"]}
    assert seen and all(handshake_clients[ip] == n for ip, n in seen.items())


def test_a_line_longer_than_the_read_buffer(core_host, tmp_path: Path) -> None:
    """The 1 MiB read buffer doubles for a longer line: its words are read again after the copy, so the
    line's fields and the lines after it are found as toolkit/logs finds them."""
    folder = tmp_path / "W3SVC1"
    folder.mkdir()
    agent = "UA" + "y" * (3 * 2**19 + 5)
    lines = ["#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
             "sc-status sc-substatus sc-win32-status time-taken",
             f"2026-11-24 10:00:00 10.0.0.5 GET /a - 80 - 10.1.1.1 {agent} 401 2 5 1",
             f"2026-11-24 10:00:01 10.0.0.5 GET /a - 80 u 10.1.1.1 {agent} 200 0 0 1",
             "2026-11-24 10:00:02 10.0.0.5 GET /b - 80 - 10.1.1.2 UA 401 1 1326 1"]
    (folder / "u_ex261124.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    envelope, _ = collect(core_host, tmp_path)
    collected = controller_analysis(envelope)
    assert counts(collected) == counts(reference_analysis(folder))
    assert (collected.status_401_terminal, collected.status_401_handshake) == (1, 1)
