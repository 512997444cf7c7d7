"""FREB traces, driven by tests/fixtures/parsers/freb/cases.yml."""

from __future__ import annotations

import pytest

from toolkit.errors import InputError
from toolkit.parsers.freb import error_hex, parse_freb

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
