"""secedit exports and user-right checks, driven by tests/fixtures/parsers/secedit/<case>/expected.yml.

``inf`` names the export in the case folder (``inf_shared``: a file under ../shared/conformance);
``rights`` lists expected holders as ``[sid, name]``; ``checks`` and ``logon_checks`` run
``check_right`` / ``check_logon`` against the case's ``groups`` (the Get-LocalUserRight shape).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.parsers.rights import check_logon, check_right
from toolkit.parsers.secedit import parse_secedit

from parser_helpers import case_dirs, load_yaml, shared_file

CASES = case_dirs("secedit")


def _inf(case: Path, expected: dict) -> tuple[bytes, str]:
    if "inf_shared" in expected:
        path = shared_file(expected["inf_shared"])
    else:
        path = case / expected["inf"]
    return path.read_bytes(), path.name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_secedit_case(case: Path) -> None:
    expected = load_yaml(case / "expected.yml")
    data, name = _inf(case, expected)
    rights = parse_secedit(data, name)
    assert len(rights) == expected["count"]
    for right, holders in (expected.get("rights") or {}).items():
        assert [[p.sid, p.name] for p in rights[right]] == holders, right
    if "same_as" in expected:
        other = (case / expected["same_as"]).read_bytes()
        assert rights == parse_secedit(other, "other.inf")
    groups = expected.get("groups") or []
    for check in expected.get("checks") or []:
        result = check_right(check["identity"], check["right"], rights, groups)
        label = f"{check['identity']} {check['right']}"
        assert result.holds is check["holds"], f"{label}: {result}"
        if "via" in check:
            assert result.via == check["via"], f"{label}: {result}"
        if "how_contains" in check:
            assert check["how_contains"] in result.how, f"{label}: {result}"
        if not check["holds"]:
            assert result.via is None
    for check in expected.get("logon_checks") or []:
        result = check_logon(check["identity"], check["logon_type"], rights, groups)
        assert result.allowed is check["allowed"], result
        if "reason_contains" in check:
            assert check["reason_contains"] in result.reason, result.reason


@pytest.mark.parametrize("data, message", [
    (b"", "no [section] headers"),
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "binary data"),
    (b"hello = world\n[Privilege Rights]\n", "text before the first [section]"),
    (b"[Privilege Rights]\nSeNetworkLogonRight *S-1-1-0\n", "expected 'SeSomeRight = holders'"),
    (b"[Privilege Rights]\n<html>oops</html>\n", "expected 'SeSomeRight = holders'"),
])
def test_garbage_is_an_input_error_with_line(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[")) as info:
        parse_secedit(data, "secedit.inf")
    assert info.value.path == "secedit.inf"


def test_line_number_is_reported() -> None:
    data = "[Unicode]\r\nUnicode=yes\r\n[Privilege Rights]\r\nSeNetworkLogonRight\r\n".encode("utf-16")
    with pytest.raises(InputError) as info:
        parse_secedit(data, "x.inf")
    assert info.value.line == 4


def test_oversized_export_is_refused() -> None:
    with pytest.raises(InputError, match="cap"):
        parse_secedit(b"[Privilege Rights]\n" + b";" * (5 * 1024 * 1024), "big.inf")


def test_identity_sid_hint_is_used() -> None:
    rights = parse_secedit(b"[Privilege Rights]\nSeDenyNetworkLogonRight = *S-1-5-21-9-9-9-1001\n", "x.inf")
    assert check_right("svc_local", "SeDenyNetworkLogonRight", rights, [],
                       identity_sid="S-1-5-21-9-9-9-1001").holds
    assert not check_right("svc_local", "SeDenyNetworkLogonRight", rights, []).holds


def test_nested_group_membership_is_followed() -> None:
    rights = parse_secedit(b"[Privilege Rights]\nSeDenyNetworkLogonRight = *S-1-5-32-546\n", "x.inf")
    groups = [
        {"name": "Guests", "sid": "S-1-5-32-546", "members": [{"name": "WEB01\\Kiosks", "sid": "S-1-5-21-1-2-3-1010"}]},
        {"name": "Kiosks", "sid": "S-1-5-21-1-2-3-1010", "members": [{"name": "CONTOSO\\kiosk7", "sid": "S-1-5-21-7-7-7-1107"}]},
    ]
    result = check_right("CONTOSO\\kiosk7", "SeDenyNetworkLogonRight", rights, groups)
    assert result.holds and result.via == "BUILTIN\\Guests"
