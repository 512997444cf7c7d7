"""An sc-win32-status that does not fit in 32 bits is a malformed line (with its number), in both engines.

Masking 8589934604 to 32 bits would give 2148074252 (SEC_E_LOGON_DENIED): a real-looking cause made up
from a damaged line. The fixture is a log an admin could add lines to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.logs import LogAnalyzer
from toolkit.logs.engine import win32_fits

CASE = Path(__file__).parents[1] / "fixtures" / "logs" / "admin-cases" / "win32-out-of-range"


def _document(path: Path) -> dict:
    analyzer = LogAnalyzer()
    analyzer.feed_path(path)
    return analyzer.result().to_dict()


def test_out_of_range_codes_are_malformed_lines(log_engine: str) -> None:
    doc = _document(CASE)
    assert [(m["line"], m["reason"]) for m in doc["malformed"]] == [
        (7, "sc-win32-status 8589934604 does not fit in 32 bits"),
        (10, "sc-win32-status 99999999999999999999 does not fit in 32 bits")]
    assert doc["lines"]["malformed"] == 2
    assert doc["requests"] == 4
    terminal = {(r["substatus"], r["win32"]): r["terminal"] for r in doc["rows"] if r["terminal"]}
    # Lines 8 and 9 (the negative rendering of the same code, which fits); nothing from lines 7 and 10.
    assert terminal == {(1, 2148074252): 2}
    assert doc["status_401"] == {"total": 3, "terminal": 2, "handshake": 1}


def test_excerpts_and_files_agree(log_engine: str) -> None:
    """The same lines fed as a collector excerpt (numbered lines) give the same malformed list."""
    source = CASE / "W3SVC1" / "u_ex261124.log"
    numbered = [(n, line) for n, line in enumerate(source.read_bytes().splitlines(), 1)]
    analyzer = LogAnalyzer()
    analyzer.feed_lines(str(source), numbered, site_id=1)
    doc = analyzer.result().to_dict()
    assert [m["line"] for m in doc["malformed"]] == [7, 10]
    whole = _document(CASE)
    assert (doc["status_401"], doc["requests"]) == (whole["status_401"], whole["requests"])


@pytest.mark.parametrize("raw, fits", [(b"0", True), (b"4294967295", True), (b"4294967296", False),
                                       (b"00004294967295", True), (b"-2147483648", True),
                                       (b"-2147483649", False), (b"-", True), (b"", True), (b"12ab", True)])
def test_the_32_bit_rule(raw: bytes, fits: bool) -> None:
    assert win32_fits(raw) is fits
