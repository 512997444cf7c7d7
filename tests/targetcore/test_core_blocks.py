"""The core's JSON writer, blobs and file access, run for real in the lab harness under Mono."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path

from toolkit.contract import decode_blob
from toolkit.lab.model.corehost import CoreHost, SimulatedHost

HOST = SimulatedHost("WEB01", "2026-11-24T21:00:00Z", mounts=[])


def _run(core_host: CoreHost, collector: str, parameters: dict, host: SimulatedHost = HOST) -> list[str]:
    answer = core_host.run(collector, host, parameters)
    assert answer.error is None, answer.error
    return answer.outputs


def test_json_writer_escapes_everything_and_stays_valid_utf16(core_host: CoreHost) -> None:
    strings = ['plain', 'quote " back \\ slash', "ctl \x00\x01\x1f\x7f tab\t nl\n cr\r", "sep \u2028 \u2029",
               "emoji \U0001F600 ok", "ümlaut ß", ""]
    [text] = _run(core_host, "Test-JsonEcho", {"Strings": strings})
    assert json.loads(text)["strings"] == strings
    assert "\u2028" not in text and "\n" not in text  # one line, safe in any JSON-lines channel


def test_json_writer_replaces_lone_surrogates(core_host: CoreHost) -> None:
    # Python cannot send a lone surrogate as UTF-8, so the JSON request carries it escaped.
    request = {"Strings": ["a\ud800b", "c\udc00", "\ud83d"]}
    [text] = _run(core_host, "Test-JsonEcho", request)
    text.encode("utf-8")  # would raise on a lone surrogate
    assert json.loads(text)["strings"] == ["a\ufffdb", "c\ufffd", "\ufffd"]


def test_json_writer_caps_strings_without_splitting_a_pair(core_host: CoreHost) -> None:
    [text] = _run(core_host, "Test-JsonEcho", {"Strings": ["abcdef", "ab\U0001F600", "abc"], "MaxChars": 3})
    document = json.loads(text)
    assert document["strings"] == ["abc", "ab", "abc"] and document["cut"] == 2


def test_files_are_mapped_case_insensitively_and_returned_as_checked_blobs(core_host: CoreHost, tmp_path: Path) -> None:
    logs = tmp_path / "C" / "inetpub" / "Logs"
    logs.mkdir(parents=True)
    (logs / "W3SVC1").mkdir()
    payload = os.urandom(5000) + b"\r\n#Fields: date time\r\n" * 100
    (logs / "u_ex261124.log").write_bytes(payload)
    host = SimulatedHost("WEB01", "2026-11-24T21:00:00Z", mounts=[("C:\\", str(tmp_path / "C"))],
                         variables={"SystemDrive": "C:"})
    [text] = _run(core_host, "Test-FolderDump", {"Folder": "%systemdrive%\\INETPUB\\logs\\"}, host)
    envelope = json.loads(text)
    assert envelope["schema"] == "iisfleet.collector/1" and envelope["host"] == "WEB01"
    assert envelope["time_utc"] == "2026-11-24T21:00:00Z" and envelope["errors"] == []
    data = envelope["data"]
    assert data["exists"] is True and data["folders"] == ["C:\\INETPUB\\logs\\W3SVC1"]
    [entry] = data["files"]
    assert entry["name"] == "u_ex261124.log" and entry["size"] == len(payload)
    blob = entry["content"]
    assert decode_blob(blob) == payload
    assert blob["sha256"] == hashlib.sha256(payload).hexdigest()
    assert gzip.decompress(base64.b64decode(blob["content"])) == payload


def test_the_longest_mount_wins_and_paths_never_leave_the_tree(core_host: CoreHost, tmp_path: Path) -> None:
    (tmp_path / "C" / "logs").mkdir(parents=True)
    (tmp_path / "C" / "logs" / "old.log").write_text("old")
    (tmp_path / "shifted").mkdir()
    (tmp_path / "shifted" / "new.log").write_text("new")
    (tmp_path / "outside.log").write_text("secret")
    host = SimulatedHost("WEB01", "2026-11-24T21:00:00Z",
                         mounts=[("C:\\", str(tmp_path / "C")), ("C:\\logs", str(tmp_path / "shifted"))])
    [text] = _run(core_host, "Test-FolderDump", {"Folder": "c:\\LOGS"}, host)
    assert [f["name"] for f in json.loads(text)["data"]["files"]] == ["new.log"]
    [text] = _run(core_host, "Test-FolderDump", {"Folder": "C:\\.."}, host)
    document = json.loads(text)
    assert document["data"]["exists"] is False and document["data"]["files"] == []
    assert [e["category"] for e in document["errors"]] == ["not-found", "not-found"]


def test_a_failing_entry_point_is_an_error_not_a_dead_process(core_host: CoreHost) -> None:
    answer = core_host.run("Get-NoSuchCollector", HOST, {})
    assert answer.outputs == [] and "no core entry point" in (answer.error or "")
    assert core_host.ping()["version"]  # the process still serves
