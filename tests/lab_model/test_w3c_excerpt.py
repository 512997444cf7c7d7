"""The W3C excerpt rule (docs/contracts.md §1.3) on a hand-written host, answered by the C# core under Mono:
what is classified, kept and counted."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from toolkit.contract import merge_parts
from toolkit.lab.model import load_fleet
from toolkit.lab.model.catalog import BundledCollector

FIELDS = "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
REORDERED = "#Fields: time date c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status cs-uri-stem"
APPHOST = """<?xml version="1.0" encoding="UTF-8"?>
<configuration><system.applicationHost><sites>
  <site name="Default Web Site" id="1"><application path="/"><virtualDirectory path="/" physicalPath="%SystemDrive%\\inetpub\\wwwroot" /></application></site>
</sites></system.applicationHost></configuration>
"""


def line(time: str, ip: str, agent: str, status: str) -> str:
    return f"2026-11-24 {time} 10.0.0.5 GET / - 80 - {ip} {agent} - {status} 15"


LOG = [
    "#Software: Microsoft Internet Information Services 10.0",  # 1
    "#Version: 1.0",  # 2
    "#Date: 2026-11-24 09:59:59",  # 3
    FIELDS,  # 4
    line("09:59:59", "10.1.1.1", "UA-A", "401 2 5"),  # 5  before the window: neither counted nor remembered
    line("10:00:00", "10.1.1.1", "UA-A", "200 0 0"),  # 6  in the window, no 401 from A in it
    line("10:00:05", "10.1.1.2", "UA-B", "401 2 5"),  # 7  a handshake (line 8 answers it): counted, not kept
    line("10:00:06", "10.1.1.2", "UA-B", "200 0 0"),  # 8  not kept
    line("10:00:07", "10.1.1.3", "UA-C", "200 0 0"),  # 9  not kept
    line("10:00:40", "10.1.1.2", "UA-B", "200 0 0"),  # 10 not kept
    line("10:01:00", "10.1.1.4", "UA-D1", "401 1 1326"),  # 11 terminal: kept
    line("10:01:10", "10.1.1.4", "UA-D2", "200 0 0"),  # 12 same address, other agent: another client
    line("10:01:20", "10.1.1.4", "UA-D1", "200 0 0").replace(" / ", " /other "),  # 13 D1's next line: kept
    REORDERED,  # 14 kept: every directive is
    "10:02:00 2026-11-24 10.1.1.2 UA-B 401 1 1326 /x",  # 15 terminal: kept (read against the new #Fields)
    line("10:05:00", "10.1.1.2", "UA-B", "401 2 5"),  # 16 after Until
    "",
]


@pytest.fixture()
def backend(tmp_path: Path, bundled: dict[str, BundledCollector], fixed_clock):
    files = tmp_path / "hosts" / "web01" / "files" / "C"
    logs = files / "inetpub" / "logs" / "LogFiles" / "W3SVC1"
    logs.mkdir(parents=True)
    (logs / "u_ex261124.log").write_bytes("\r\n".join(LOG).encode("utf-8"))
    (logs / "u_ex261120.log").write_bytes("\r\n".join(LOG[:4] + [line("08:00:00", "10.9.9.9", "UA", "401 2 5")]).encode().replace(b"2026-11-24", b"2026-11-20"))
    config = files / "Windows" / "System32" / "inetsrv" / "config"
    config.mkdir(parents=True)
    (config / "applicationHost.config").write_text(APPHOST, encoding="utf-8")
    (files / "inetpub" / "wwwroot").mkdir(parents=True)
    httperr = files / "Windows" / "System32" / "LogFiles" / "HTTPERR"
    httperr.mkdir(parents=True)
    (httperr / "httperr1.log").write_text(
        "#Software: Microsoft HTTP API 2.0\r\n#Version: 1.0\r\n#Date: 2026-11-24 09:00:00\r\n"
        "#Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid s-reason s-queuename\r\n"
        "2026-11-24 09:30:00 10.1.1.9 50000 10.0.0.5 80 - - - - - - Timer_ConnectionIdle -\r\n"
        "2026-11-24 10:00:30 10.1.1.9 50001 10.0.0.5 80 HTTP/1.1 GET /% - 400 - BadRequest -\r\n")
    (tmp_path / "hosts" / "web01" / "host.yml").write_text("{}\n")
    (tmp_path / "fleet.yml").write_text("domain: {name: contoso.com}\nhosts: [{name: web01, address: 127.77.0.11}]\n")
    return load_fleet(tmp_path, bundled=bundled, clock=fixed_clock).backend("web01")


def run(backend, collector: BundledCollector, **params) -> dict:
    answer = backend.answer(collector.script, params)
    assert answer.error is None, answer.error
    parts = [json.loads(part) for part in answer.output]
    assert [p["part"]["index"] for p in parts] == list(range(len(parts))) and parts[-1]["part"]["final"]
    return merge_parts(parts)


def excerpt_numbers(item: dict) -> list[int]:
    text = gzip.decompress(base64.b64decode(item["excerpt"]["content"])).decode("utf-8")
    return [int(row.split("\t", 1)[0]) for row in text.splitlines()]


def test_handshakes_are_counted_and_terminal_401s_kept_with_their_clients_next_lines(backend, bundled) -> None:
    env = run(backend, bundled["Get-IisW3CLog"], Since="2026-11-24T10:00:00Z", Until="2026-11-24T10:04:59Z",
              HandshakeWindowSeconds=30)
    assert env["data"]["directories"] == ["C:\\inetpub\\logs\\LogFiles\\W3SVC1", "C:\\inetpub\\logs\\LogFiles"]
    (item,) = env["data"]["files"]  # u_ex261120.log holds nothing after Since: not read
    assert item["path"] == "C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261124.log" and item["site_id"] == 1
    assert excerpt_numbers(item) == [1, 2, 3, 4, 11, 13, 14, 15]
    assert item["lines_kept"] == 8 and item["truncated"] is False
    assert (item["status_401"], item["terminal_401"], item["handshake_401"]) == (3, 2, 1)
    assert item["handshakes"] == [{"server": "", "site": "W3SVC1", "substatus": "2", "win32": "5", "count": 1,
                                   "clients": [{"ip": "10.1.1.2", "count": 1}]}]
    assert item["data_lines"] == 9  # lines 6-13 and 15
    assert item["lines_total"] == 11  # every data line read (the file is small: read from the top)
    assert item["size_bytes"] == item["bytes_read"] == len("\r\n".join(LOG).encode())
    assert item["line_numbers"] == "file" and item["start_offset"] == 0
    assert item["excerpt"]["sha256"]


def test_a_shorter_handshake_window_makes_the_slow_answer_terminal(backend, bundled) -> None:
    env = run(backend, bundled["Get-IisW3CLog"], Since="2026-11-24T10:00:00Z", Until="2026-11-24T10:04:59Z",
              HandshakeWindowSeconds=0)
    (item,) = env["data"]["files"]
    # Line 8 answers line 7 one second later: past a 0 s window, so 7 is terminal and kept.
    assert (item["terminal_401"], item["handshake_401"]) == (3, 0)
    assert excerpt_numbers(item) == [1, 2, 3, 4, 7, 11, 14, 15]


def test_explicit_log_directory_and_a_missing_one(backend, bundled) -> None:
    env = run(backend, bundled["Get-IisW3CLog"], LogDirectory=["C:\\inetpub\\logs\\LogFiles\\W3SVC1", "D:\\nowhere"],
              Since="2026-11-19T00:00:00Z", Until="2026-11-25T00:00:00Z")
    assert [f["path"].rsplit("\\", 1)[1] for f in env["data"]["files"]] == ["u_ex261124.log", "u_ex261120.log"]
    assert [(e["category"], e["target"]) for e in env["errors"]] == [("not-found", "D:\\nowhere")]


def test_httperr_keeps_every_line_in_the_window(backend, bundled) -> None:
    env = run(backend, bundled["Get-IisHttpErrLog"], Since="2026-11-24T10:00:00Z", Until="2026-11-24T11:00:00Z")
    (item,) = env["data"]["files"]
    assert env["data"]["directory"] == "C:\\Windows\\System32\\LogFiles\\HTTPERR"
    assert excerpt_numbers(item) == [1, 2, 3, 4, 6]
    assert (item["lines_total"], item["data_lines"]) == (2, 1)
    assert "handshakes" not in item


def test_no_shift_without_a_reference_time(backend) -> None:
    assert backend.shift == dt.timedelta(0)
