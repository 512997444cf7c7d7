"""SDDL parsing and effective access, driven by tests/fixtures/parsers/sddl/cases.yml."""

from __future__ import annotations

import pytest

from toolkit.errors import InputError
from toolkit.parsers._identity import app_pool_sid
from toolkit.parsers.sddl import effective_access, parse_sddl, sids_for_identity

from parser_helpers import FIXTURES, check_expectations, load_yaml

DATA = load_yaml(FIXTURES / "sddl" / "cases.yml")


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["name"] for c in DATA["cases"]])
def test_sddl_case(case: dict) -> None:
    sd = parse_sddl(case["sddl"])
    assert sd.sddl == case["sddl"]
    check_expectations(sd, case.get("expect") or {}, case["name"])
    for access in case.get("access") or []:
        if "sids" in access:
            sids = set(access["sids"])
            label = f"{case['name']} {access['sids']}"
        else:
            sids = sids_for_identity(access["identity"], DATA["groups"], logon_type=access.get("logon_type"))
            label = f"{case['name']} {access['identity']}"
        result = effective_access(sd, sids)
        assert result.read is access["read"], f"{label}: {result}"
        assert result.execute is access["execute"], f"{label}: {result}"
        if "denied_by_sid" in access:
            assert result.denied_by is not None and result.denied_by.trustee_sid == access["denied_by_sid"], label
        elif not access["read"]:
            assert result.granted_by == () or all(a.ace_type == "A" for a in result.granted_by)
        if "execute_denied_by_sid" in access:
            assert result.execute_denied_by is not None
            assert result.execute_denied_by.trustee_sid == access["execute_denied_by_sid"], label
        if "granted_by_sid" in access:
            assert access["granted_by_sid"] in {a.trustee_sid for a in result.granted_by}, label


@pytest.mark.parametrize("bad", DATA["errors"], ids=[e["sddl"] for e in DATA["errors"]])
def test_sddl_errors(bad: dict) -> None:
    with pytest.raises(InputError, match=bad["message"].replace("(", r"\(")):
        parse_sddl(bad["sddl"])


def test_error_names_the_content_path() -> None:
    with pytest.raises(InputError) as info:
        parse_sddl("D:(A;;QQ;;;BU)", r"D:\sites\shop")
    assert info.value.path == r"D:\sites\shop" and "QQ" in str(info.value)


def test_app_pool_sid_matches_the_documented_value() -> None:
    # facts.md section 4.4: DefaultAppPool on every machine.
    assert app_pool_sid("DefaultAppPool") == "S-1-5-82-3006700770-424185619-1745488364-794895919-4004696415"
    assert app_pool_sid("defaultapppool") == app_pool_sid("DefaultAppPool")


def test_sids_for_identity() -> None:
    iusr = sids_for_identity("IUSR", DATA["groups"])
    assert {"S-1-5-17", "S-1-1-0", "S-1-5-11", "S-1-5-32-545", "S-1-5-32-546"} <= iusr
    pool = sids_for_identity("IIS APPPOOL\\Shop", DATA["groups"])
    assert app_pool_sid("Shop") in pool and "S-1-5-32-568" in pool
    assert "S-1-5-32-546" not in pool
    network = sids_for_identity("NT AUTHORITY\\NETWORK SERVICE", [])
    assert "S-1-5-20" in network
    anonymous = sids_for_identity("NT AUTHORITY\\ANONYMOUS LOGON", DATA["groups"])
    assert "S-1-1-0" not in anonymous and "S-1-5-11" not in anonymous


def test_oversized_sddl_is_refused() -> None:
    with pytest.raises(InputError, match="longer than"):
        parse_sddl("D:" + "(A;;FA;;;BU)" * 10000)
