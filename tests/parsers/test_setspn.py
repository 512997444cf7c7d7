"""setspn -L output, driven by tests/fixtures/parsers/setspn/cases.yml and the .txt files beside it."""

from __future__ import annotations

import pytest

from toolkit.errors import InputError
from toolkit.parsers.setspn import duplicate_spns, parse_setspn, parse_setspn_result, spn_map

from parser_helpers import FIXTURES, load_yaml

FOLDER = FIXTURES / "setspn"
DATA = load_yaml(FOLDER / "cases.yml")


def _read(name: str) -> str:
    return (FOLDER / name).read_bytes().decode("utf-8")


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["file"] for c in DATA["cases"]])
def test_setspn_case(case: dict) -> None:
    result = parse_setspn_result(_read(case["file"]), case["account"], source=case["file"])
    assert result.found is case["found"]
    assert [r.spn for r in result.records] == case["spns"]
    assert all(r.account == case["account"] for r in result.records)
    if "dn" in case:
        assert result.account_dn == case["dn"]
        assert all(r.account_dn == case["dn"] for r in result.records)
    if "error_contains" in case:
        assert case["error_contains"] in result.error
    assert parse_setspn(_read(case["file"]), case["account"]) == tuple(
        r.__class__(r.account, r.account_dn, r.spn, r.source.__class__(f"setspn -L {case['account']}", r.source.line))
        for r in result.records)


@pytest.mark.parametrize("group", DATA["duplicates"], ids=range(len(DATA["duplicates"])))
def test_duplicate_spns(group: dict) -> None:
    records = []
    for file, account in group["inputs"]:
        records.extend(parse_setspn(_read(file), account))
    assert {k: list(v) for k, v in duplicate_spns(records).items()} == group["expect"]


def test_spn_map_is_case_insensitive() -> None:
    records = parse_setspn(_read("svc-web.txt"), "a") + parse_setspn(_read("svc-old-duplicate.txt"), "b")
    assert len(spn_map(records)["http/intranet.corp.contoso.com"]) == 2


def test_records_cite_their_line() -> None:
    records = parse_setspn_result(_read("svc-web.txt"), "CORP\\svc_web", source="Get-IisSpn").records
    assert records[1].source.file == "Get-IisSpn" and records[1].source.line == 3


@pytest.mark.parametrize("text", ["<html>proxy error</html>", "Registered ServicePrincipalNames for CN=x:\nnot an spn line here\n"])
def test_garbage_raises(text: str) -> None:
    with pytest.raises(InputError):
        parse_setspn(text, "x")


def test_empty_output_is_not_found() -> None:
    result = parse_setspn_result("", "x")
    assert result.found is False and result.records == ()
