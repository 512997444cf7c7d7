"""Account-name normalisation (toolkit/identity.py), driven by tests/fixtures/identity/accounts.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from toolkit.identity import account_key, machine_account, network_account, same_account, same_network_account

CASES = yaml.safe_load((Path(__file__).parents[1] / "fixtures" / "identity" / "accounts.yml").read_text())


@pytest.mark.parametrize("a,b", CASES["same"])
def test_same_account(a: str, b: str) -> None:
    assert same_account(a, b) and same_account(b, a)


@pytest.mark.parametrize("a,b", CASES["different"])
def test_different_accounts(a: str, b: str) -> None:
    assert not same_account(a, b) and not same_account(b, a)


@pytest.mark.parametrize("row", CASES["network"], ids=lambda r: f"{r['identity']}@{r['computer']}")
def test_network_account(row: dict) -> None:
    assert network_account(row["identity"], row["computer"]) == row["account"]


@pytest.mark.parametrize("row", CASES["same_network"], ids=lambda r: f"{r['a']}={r['b']}")
def test_same_network_account(row: dict) -> None:
    assert same_network_account(row["a"], row["b"], row["computer"])


@pytest.mark.parametrize("row", CASES["different_network"], ids=lambda r: f"{r['a']}!={r['b']}")
def test_different_network_account(row: dict) -> None:
    assert not same_network_account(row["a"], row["b"], row["computer"])


@pytest.mark.parametrize("row", CASES["key"], ids=lambda r: r["text"])
def test_account_key(row: dict) -> None:
    key = account_key(row["text"])
    assert (key.name, key.domain) == (row["name"], row["domain"])


def test_machine_account_spellings() -> None:
    assert {machine_account(n) for n in ("WEB01", "web01", "WEB01$", "web01.contoso.com", "CONTOSO\\WEB01$")} \
        == {"WEB01$"}


def test_collector_machine_query_is_the_computer_account() -> None:
    """Get-IisSpn runs ``setspn -L %COMPUTERNAME%`` (no ``$``): its records belong to ``WEB01$``."""
    from toolkit.diagnose.evidence import build_host_evidence

    sidecar = yaml.safe_load((Path(__file__).parents[2] / "ps_scripts" / "Get-IisSpn.yml").read_text())
    envelope = sidecar["output"]["sample"]
    host = build_host_evidence("web01", {"Get-IisSpn": envelope,
                                         "Get-HostFact": {"data": {"computer_name": "WEB01"}}})
    machine = [r for r in host.spns if r.spn.upper().startswith("HOST/")]
    assert machine and {r.account for r in machine} == {"WEB01$"}
    assert {r.account for r in host.spns if r.spn.startswith("HTTP/")} == {"CORP\\svc-shop"}
