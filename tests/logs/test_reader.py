"""The W3C reader: changing layouts, encodings, compression, malformed lines, filters, HTTPERR, excerpts."""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timezone

import pytest

from toolkit.errors import InputError
from toolkit.logs import LogAnalyzer, discover, iter_records, parse_excerpt
from toolkit.logs import analysis as analysis_module
from toolkit.logs.synth import write_log as synth_log

WIDE = ("#Fields: date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port "
        "cs-username c-ip cs-version cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status "
        "time-taken X-Forwarded-For\n")


def wide_row(clock: str, status: str, ip: str = "10.0.0.9", site: str = "Intranet") -> str:
    return (f"2026-11-24 {clock} {site} WEB02 10.0.0.5 GET /app - 443 - {ip} HTTP/1.1 Mozilla/5.0 - "
            f"{status} 31 203.0.113.7\n")


def test_fields_change_mid_file(write_log, header, row, analyse) -> None:
    text = (header + row("10:00:00", "401 2 5") + WIDE + wide_row("10:00:01", "401 2 5")
            + wide_row("10:00:01", "200 0 0"))
    result = analyse(write_log("W3SVC1/u_ex261124.log", text))
    assert (result.requests, result.lines_malformed, result.status_401_total) == (3, 0, 2)
    # s-sitename/s-computername take over from the folder once they are logged.
    assert result.requests_by_server_site == {("", "W3SVC1"): 1, ("WEB02", "Intranet"): 2}
    assert result.status_401_handshake == 1


def test_malformed_lines_are_counted_with_file_and_line(write_log, header, row, analyse) -> None:
    text = (header + row("10:00:00", "200 0 0") + "2026-11-24 10:00:01 cut short\n"
            + row("10:00:02", "401 2 5")
            + "2026-11-24 10:00:03 10.0.0.5 GET /x - 443 - 10.0.0.1 UA - 200 0 0 15 extra\n")
    path = write_log("u_ex261124.log", text)
    result = analyse(path)
    assert result.lines_malformed == 2
    assert [(line, reason.split(" ")[0]) for _src, line, reason in result.malformed] == [(6, "4"), (8, "16")]
    assert all(src == str(path) for src, _l, _r in result.malformed)
    assert result.requests == 2 and result.status_401_total == 1


def test_utf8_bom_crlf_and_non_ascii(write_log, header, row, analyse) -> None:
    text = header + row("10:00:00", "401 1 1326", stem="/résumé", user="CONTOSO\\jürgen")
    text = text.replace("\n", "\r\n")
    result = analyse(write_log("u_ex261124.log", b"\xef\xbb\xbf" + text.encode("utf-8")))
    assert result.requests == 1 and result.lines_malformed == 0
    assert result.top_uris == [("/résumé", 1)] and result.top_users == [("CONTOSO\\jürgen", 1)]


def test_gzip_and_recursive_directories(write_log, header, row, analyse, tmp_path) -> None:
    write_log("logs/W3SVC7/u_ex261124.log.gz", gzip.compress((header + row("10:00:00", "401 2 5")).encode()))
    write_log("logs/W3SVC7/old/u_ex261123.log", header + row("09:00:00", "200 0 0"))
    write_log("logs/W3SVC7/notes.txt", "not a log")
    result = analyse(tmp_path / "logs")
    assert result.requests_by_site == {"W3SVC7": 2}
    assert len(result.sources) == 2


def test_file_names_and_encodings(tmp_path) -> None:
    for name in ("u_ex261124.log", "ex261124.log", "u_ex26112413.log", "u_extend12.log", "httperr3.log",
                 "u_ex261124.log.gz", "readme.md"):
        (tmp_path / "W3SVC4" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "W3SVC4" / name).write_bytes(b"")
    found = {f.path.name: f for f in discover([tmp_path])}
    assert "readme.md" not in found and len(found) == 6
    assert found["u_ex261124.log"].utf8 and not found["ex261124.log"].utf8
    assert found["httperr3.log"].httperr and found["u_ex261124.log.gz"].gz
    assert {f.site for f in found.values()} == {"W3SVC4"}


def test_ansi_log_decodes_without_error(write_log, header, row, analyse) -> None:
    text = (header + row("10:00:00", "401 3 5", stem="/caf\xe9")).encode("cp1252")
    result = analyse(write_log("ex261124.log", text))
    assert result.status_401_terminal == 1  # undecodable bytes are replaced, never fatal


def test_time_filters(write_log, header, row, analyse) -> None:
    text = header + "".join(row(f"{h:02d}:30:00", "401 2 5", ip=f"10.0.0.{h}") for h in range(24))
    path = write_log("u_ex261124.log", text)
    result = analyse(path, since=datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc),
                     until=datetime(2026, 11, 24, 11, 59, 59))  # naive = UTC
    assert (result.requests, result.lines_filtered, result.status_401_total) == (6, 18, 6)
    assert result.first_time == "2026-11-24T06:30:00Z" and result.last_time == "2026-11-24T11:30:00Z"


def test_time_filter_skips_whole_segments(write_log, header, row, analyse) -> None:
    early = "".join(row("01:00:00", "200 0 0") for _ in range(50))
    late = "".join(row("20:00:00", "401 2 5") for _ in range(50))
    result = analyse(write_log("u_ex261124.log", header + early + header + late),
                     since=datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc))
    assert (result.requests, result.lines_filtered, result.status_401_total) == (50, 50, 50)


def test_httperr_records_are_their_own_kind(analyse, write_log) -> None:
    text = ("#Software: Microsoft HTTP API 2.0\n#Version: 1.0\n#Date: 2026-11-24 00:00:00\n"
            "#Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri sc-status s-siteid "
            "s-reason s-queuename\n"
            "2026-11-24 00:00:07 10.2.4.17 5123 10.0.0.5 443 HTTP/1.1 GET /a 503 1 AppOffline pool\n"
            "2026-11-24 00:00:08 10.2.4.17 5124 10.0.0.5 443 HTTP/1.1 GET /b 401 1 Forbidden pool\n"
            "2026-11-24 00:00:09 10.2.4.17 5125 10.0.0.5 443 - - - - - Timer_ConnectionIdle -\n")
    result = analyse(write_log("HTTPERR/httperr1.log", text))
    assert result.httperr_total == 3 and result.requests == 0 and result.status_401_total == 0
    assert result.httperr_by_reason == {"AppOffline": 1, "Forbidden": 1, "Timer_ConnectionIdle": 1}


def test_custom_fields_are_kept_by_name(header) -> None:
    stream = io.BytesIO((WIDE + wide_row("10:00:00", "200 0 0")).encode())
    (record,) = list(iter_records(stream))
    assert record.get("X-Forwarded-For") == b"203.0.113.7"
    assert record.get("s-sitename") == b"Intranet"
    assert record.get("cs-bytes") == b"-"  # not logged


def test_status_as_last_field_uses_the_line_path(write_log, analyse) -> None:
    text = ("#Fields: date time c-ip cs(User-Agent) cs-uri-stem sc-substatus sc-win32-status sc-status\n"
            "2026-11-24 10:00:00 10.0.0.1 UA /x 2 5 401\n2026-11-24 10:00:00 10.0.0.1 UA /x 0 0 200\n")
    result = analyse(write_log("u_ex261124.log", text))
    assert (result.status_401_total, result.status_401_handshake) == (1, 1)


def test_headerless_default_layout_is_inferred(write_log, row, analyse) -> None:
    result = analyse(write_log("u_ex261124.log", row("10:00:00", "401 2 5") + "a b c\n"))
    assert (result.lines_inferred, result.requests, result.lines_malformed) == (1, 1, 1)
    assert result.malformed[0][1:] == (2, "no #Fields directive in force")


def test_parse_excerpt_and_feed_lines(header, row) -> None:
    blob = "".join(f"{n}\t{line}\n" for n, line in enumerate(header.splitlines(), 1))
    blob += f"120\t{row('10:00:00', '401 2 5').strip()}\n121\t{row('10:00:00', '401 1 2148074252').strip()}\n"
    lines = list(parse_excerpt(blob.encode()))
    assert lines[0] == (1, header.splitlines()[0].encode()) and lines[-1][0] == 121
    analyzer = LogAnalyzer(workers=1)
    analyzer.feed_lines(r"C:\inetpub\logs\LogFiles\W3SVC2\u_ex261124.log", lines, site_id=2)
    result = analyzer.result()
    assert (result.status_401_total, result.status_401_terminal) == (2, 2)
    assert {g.site for g in result.groups} == {"W3SVC2"}
    assert sorted(s.line for g in result.groups for s in g.samples) == [120, 121]
    with pytest.raises(InputError, match="excerpt"):
        list(parse_excerpt(b"no tab here\n"))


def test_unusable_paths_raise_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="no such file"):
        LogAnalyzer().feed_path(tmp_path / "missing")
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(InputError, match="not a W3C"):
        LogAnalyzer().feed_path(tmp_path / "x.json")
    (tmp_path / "bad.log.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="cannot read"):
        LogAnalyzer().feed_path(tmp_path / "bad.log.gz")


def test_parallel_ranges_match_a_single_process(tmp_path, monkeypatch) -> None:
    path = tmp_path / "W3SVC1" / "u_ex261124.log"
    path.parent.mkdir()
    truth = synth_log(path, lines=30000, seed=5, layout_changes=(0.2, 0.45, 0.5), malformed_every=997)
    monkeypatch.setattr(analysis_module, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(analysis_module, "CHUNK_BYTES", 256 * 1024)  # many buffers and carried 401s
    results = []
    for workers in (1, 2, 3):
        analyzer = LogAnalyzer(workers=workers)
        analyzer.feed_path(path)
        results.append(analyzer.result().to_dict())
    assert results[0] == results[1] == results[2]
    assert results[0]["status_401"] == {"total": truth.status_401, "terminal": truth.terminal,
                                        "handshake": truth.handshake}
    assert results[0]["lines"]["malformed"] == truth.malformed


def test_headerless_lines_must_look_like_the_default_layout(write_log, analyse) -> None:
    # 13 fields like HTTPERR, but an FTP line: the port columns hold addresses, so no layout is guessed.
    ftp = "2022-10-05 10:43:56 172.16.1.1 user1 192.168.2.2 21 ControlChannelClosed - - 0 0 8124db49 -\n"
    httperr = "2018-05-05 05:05:55 149.42.83.135 12345 192.168.101.101 443 HTTP/1.1 GET /x 400 - URL -\n"
    result = analyse(write_log("logs/u_ex221005.log", ftp + httperr))
    assert (result.lines_malformed, result.lines_inferred, result.httperr_total) == (1, 1, 1)
    assert result.httperr_by_reason == {"URL": 1}


def test_excerpt_site_comes_from_the_windows_path(header, row) -> None:
    lines = [(1, header.splitlines()[-1].encode()), (9, row("10:00:00", "401 2 5").strip().encode())]
    analyzer = LogAnalyzer(workers=1)
    analyzer.feed_lines(r"C:\inetpub\logs\LogFiles\W3SVC5\u_ex261124.log", lines)
    assert analyzer.result().requests_by_site == {"W3SVC5": 1}
