"""FREB traces, driven by tests/fixtures/parsers/freb/cases.yml."""

from __future__ import annotations

import pytest

from toolkit.errors import InputError
from toolkit.parsers.freb import denied_access, error_hex, parse_freb, refusing_filter

from parser_helpers import FIXTURES, check_expectations, load_yaml, shared_file

FOLDER = FIXTURES / "freb"
DATA = load_yaml(FOLDER / "cases.yml")


def _path(case: dict):
    return shared_file(case["shared"]) if "shared" in case else FOLDER / case["file"]


@pytest.mark.parametrize("case", DATA["cases"], ids=[c.get("file") or c["shared"] for c in DATA["cases"]])
def test_freb_case(case: dict) -> None:
    path = _path(case)
    trace = parse_freb(path.read_bytes(), path.name)
    assert trace.file == path.name
    check_expectations(trace, case.get("expect") or {}, path.name)
    for index, name, value in case.get("values") or []:
        assert trace.events[index].value(name) == value
    summary = [[e.name, e.module, e.notification, e.http_status, e.http_substatus, e.error_code]
               for e in trace.summary]
    assert summary == case["summary"]


@pytest.mark.parametrize("bad", DATA["errors"], ids=[e["file"] for e in DATA["errors"]])
def test_freb_rejects(bad: dict) -> None:
    with pytest.raises(InputError, match=bad["message"]) as info:
        parse_freb((FOLDER / bad["file"]).read_bytes(), bad["file"])
    assert info.value.path == bad["file"]
    if "line" in bad:
        assert info.value.line == bad["line"]


def test_xxe_content_never_reaches_the_result() -> None:
    with pytest.raises(InputError) as info:
        parse_freb((FOLDER / "xxe.xml").read_bytes(), "xxe.xml")
    assert "root:" not in str(info.value)


def test_oversized_trace_is_refused() -> None:
    with pytest.raises(InputError, match="cap"):
        parse_freb(b"<failedRequest statusCode='401'>" + b" " * (17 * 1024 * 1024) + b"</failedRequest>", "big.xml")


@pytest.mark.parametrize("raw, expected", [("2147942402", "0x80070002"), ("-2147023570", "0x8007052E"),
                                           ("0x80070005", "0x80070005"), ("junk", "")])
def test_error_hex(raw: str, expected: str) -> None:
    assert error_hex(raw) == expected


# --- who refused: ISAPI filters (401.4) and file access (401.3) ---------------------------------------

FREB_DIR = FIXTURES / "freb"
SSO_DLL = "C:\\Program Files\\Acme\\SSO Agent\\bin\\acmesso_isapi.dll"


def _trace(name: str):
    return parse_freb((FREB_DIR / name).read_bytes(), name)


def test_the_filter_running_when_401_4_was_set_is_named() -> None:
    verdict = refusing_filter(_trace("isapi-two-filters-401-4.xml"))
    assert verdict is not None and verdict.running
    assert verdict.name == SSO_DLL
    assert verdict.started == ("C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\aspnet_filter.dll", SSO_DLL)
    assert verdict.start.line and verdict.error is not None and verdict.error.http_substatus == 4


def test_filters_that_ended_before_the_401_4_only_give_the_last_one() -> None:
    verdict = refusing_filter(_trace("isapi-filters-ended-401-4.xml"))
    assert verdict is not None and not verdict.running and verdict.name == SSO_DLL
    assert len(verdict.started) == 3


def test_a_trace_without_filter_events_names_no_filter() -> None:
    assert refusing_filter(_trace("basic-logon-failure-401-1.xml")) is None


def test_401_3_trace_names_file_identity_module_and_code() -> None:
    denial = denied_access(_trace("static-file-acl-401-3.xml"))
    assert denial.file == "D:\\sites\\docs\\handbook\\chapter1.html"
    assert denial.identity == "NT AUTHORITY\\IUSR"
    assert (denial.module, denial.error_code) == ("StaticFileModule", "0x80070005")
    assert denial.error_text == "Access is denied. (0x80070005)"
    assert denial.file_event is not None and denial.error is not None
    assert denial.file_event.line < denial.error.line
