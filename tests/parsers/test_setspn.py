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


def test_header_is_found_by_structure_not_by_english_words() -> None:
    # Whatever words precede the DN (any language, or mojibake from a wrong code page), the header is
    # the unindented line that carries the DN and ends with ':'.
    for words in ("Registered ServicePrincipalNames for", "Registrierte Dienstprinzipalnamen (SPN) f\ufffdr",
                  "\u53d1\u73b0 SPN", "xyz"):
        result = parse_setspn_result(f"{words} CN=web01,DC=example,DC=com:\n\tHTTP/web01\n", "WEB01$")
        assert result.found and result.account_dn == "CN=web01,DC=example,DC=com"
        assert [r.spn for r in result.records] == ["HTTP/web01"]


def test_error_text_in_any_language_is_not_found_not_garbage() -> None:
    result = parse_setspn_result("Le compte est introuvable.\n", "svc_x")
    assert result.found is False and "introuvable" in result.error
