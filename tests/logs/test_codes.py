"""toolkit.codes: every value form decodes to the same code (cases: tests/fixtures/logs/codes.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.codes import SSPI_ERRORS, Win32Code, decode_ntstatus, decode_win32, parse_code, substatus_meaning

CASES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "codes.json"
CASES = json.loads(CASES_FILE.read_text("utf-8"))


@pytest.mark.parametrize("case", CASES["win32"], ids=lambda c: str(c["input"]))
def test_decode_win32(case: dict) -> None:
    code = decode_win32(case["input"])
    assert (code.hex, code.name, code.kind) == (case["hex"], case["name"], case["kind"])
    assert code.value == int(case["hex"], 16)
    assert bool(code.meaning) == bool(case["name"])


@pytest.mark.parametrize("case", CASES["ntstatus"], ids=lambda c: str(c["input"]))
def test_decode_ntstatus(case: dict) -> None:
    code = decode_ntstatus(case["input"])
    assert code.name == case["name"]
    assert code.kind == "ntstatus"


@pytest.mark.parametrize("case", CASES["substatus"], ids=lambda c: f"{c['status']}.{c['substatus']}")
def test_substatus_meaning(case: dict) -> None:
    assert case["contains"] in substatus_meaning(case["status"], case["substatus"])


def test_unknown_substatus_is_empty() -> None:
    assert substatus_meaning(401, 99) == ""
    assert substatus_meaning(500, 19) == ""


def test_signed_and_unsigned_forms_agree_for_every_sspi_entry() -> None:
    for value in SSPI_ERRORS:
        signed = value - (1 << 32)
        assert decode_win32(signed) == decode_win32(str(value)) == decode_win32(hex(value))


@pytest.mark.parametrize("bad", ["", "abc", "0xZZ", "4294967296", "-2147483649", True, "1.5"])
def test_bad_values_raise_value_error(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_code(bad)  # type: ignore[arg-type]


def test_code_is_frozen_and_printable() -> None:
    code = decode_win32(2148074254)
    assert isinstance(code, Win32Code)
    assert str(code) == "0x8009030E SEC_E_NO_CREDENTIALS"
    with pytest.raises(AttributeError):
        code.value = 1  # type: ignore[misc]
