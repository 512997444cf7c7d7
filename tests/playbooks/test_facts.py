"""Facts computed from collector envelopes (what `when` tests)."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from toolkit.facts import FACTS, facts_from_envelope, known_facts

FIXTURES = Path(__file__).parent / "fixtures"

_EXCERPT = (
    "\n".join(
        [
            "1\t#Software: Microsoft Internet Information Services 10.0",
            "2\t#Version: 1.0",
            "3\t#Date: 2026-11-24 10:00:00",
            "4\t#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
            "cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken",
            # a Negotiate handshake: 401.2 then success from the same client → not a failure
            "17\t2026-11-24 10:00:01 10.0.0.5 GET / - 80 - 10.0.0.9 Mozilla/5.0 - 401 2 5 1",
            "18\t2026-11-24 10:00:01 10.0.0.5 GET / - 80 CONTOSO\\bob 10.0.0.9 Mozilla/5.0 - 200 0 0 3",
            # a terminal 401.1 from another client
            "30\t2026-11-24 10:05:00 10.0.0.5 GET /app - 80 - 10.0.0.77 curl/8.0 - 401 1 1326 2",
        ]
    ).encode()
    + b"\n"
)


def _w3c_envelope() -> dict[str, Any]:
    packed = gzip.compress(_EXCERPT)
    blob = {
        "encoding": "gzip+base64",
        "content": base64.b64encode(packed).decode(),
        "bytes": len(_EXCERPT),
        "truncated": False,
    }
    return {
        "schema": "iisfleet.collector/1",
        "collector": "Get-IisW3CLog",
        "version": 1,
        "host": "WEB01",
        "time_utc": "2026-11-24T21:00:00Z",
        "errors": [],
        "data": {
            "directories": ["C:\\inetpub\\logs\\LogFiles\\W3SVC1"],
            "files": [
                {
                    "path": "C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261124.log",
                    "site_id": 1,
                    "size_bytes": 4096,
                    "lines_total": 40,
                    "data_lines": 35,
                    "lines_kept": 3,
                    "truncated": False,
                    "excerpt": blob,
                }
            ],
        },
    }


@pytest.mark.parametrize("case", sorted((FIXTURES / "facts").glob("*.json")), ids=lambda p: p.stem)
def test_facts_from_fixture(case: Path) -> None:
    spec = json.loads(case.read_text())
    facts = facts_from_envelope(spec["collector"], spec["envelope"])
    assert facts == spec["facts"]
    assert set(facts) <= set(known_facts(spec["collector"]))


def test_w3c_facts_use_the_handshake_analysis_when_available() -> None:
    import toolkit.logs  # noqa: F401  # part of this package: an import error must fail, not skip

    facts = facts_from_envelope("Get-IisW3CLog", _w3c_envelope())
    assert facts["terminal_401_exact"] is True
    assert (facts["status_401"], facts["terminal_401"], facts["handshake_401"]) == (2, 1, 1)
    assert (facts["requests"], facts["files"], facts["truncated"]) == (35, 1, False)


def test_w3c_facts_fall_back_to_counting_401_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "toolkit.logs", None)  # as if LOGS' module were missing
    facts = facts_from_envelope("Get-IisW3CLog", _w3c_envelope())
    assert facts["terminal_401_exact"] is False
    assert (facts["status_401"], facts["terminal_401"], facts["handshake_401"]) == (2, 2, 0)


def test_w3c_facts_survive_a_corrupt_blob() -> None:
    envelope = _w3c_envelope()
    envelope["data"]["files"][0]["excerpt"] = {
        "encoding": "gzip+base64",
        "content": "!!!",
        "bytes": 5,
        "truncated": False,
    }
    facts = facts_from_envelope("Get-IisW3CLog", envelope)
    assert facts["status_401"] == 0 and facts["files"] == 1


def test_every_collector_has_facts_and_unknown_input_is_empty() -> None:
    assert len(FACTS) == 10 and all("errors" in names for names in FACTS.values())
    assert facts_from_envelope("Get-HostFact", None) == {}
    assert facts_from_envelope("Get-Nothing", {"errors": [1]}) == {"errors": 1}
