"""HTTPS binding certificate rules (toolkit/diagnose/rules/certificates.py) beyond the case file: RFC 6125 name
matching, the expiry thresholds, citations, which HTTP.sys record serves a binding, farms, and the reference clock."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from diag_builders import host_from_spec
from toolkit.diagnose import diagnose
from toolkit.diagnose.rules.certificates import covers, name_matches, split_binding_information

CASE = yaml.safe_load((Path(__file__).parents[1] / "fixtures/diagnose/cases/certificates.yml").read_text("utf-8"))


@pytest.mark.parametrize(("pattern", "host", "match"), [
    ("shop.contoso.com", "SHOP.contoso.com.", True),
    ("*.contoso.com", "shop.contoso.com", True),
    ("*.contoso.com", "contoso.com", False),  # the wildcard needs one label
    ("*.contoso.com", "eu.shop.contoso.com", False),  # and only one
    ("*.com", "contoso.com", False),  # never directly under a single label
    ("s*.contoso.com", "shop.contoso.com", False),  # partial-label wildcards are not honoured
    ("shop.*.com", "shop.contoso.com", False),
    ("", "shop.contoso.com", False),
])
def test_rfc6125_wildcards(pattern: str, host: str, match: bool) -> None:
    assert name_matches(pattern, host) is match


def test_the_cn_counts_only_without_a_san() -> None:
    assert covers((), "shop.contoso.com", "shop.contoso.com")
    assert not covers(("www.contoso.com",), "shop.contoso.com", "shop.contoso.com")


def test_binding_information_with_ipv6_and_no_host() -> None:
    assert split_binding_information("[2001:db8::5]:443:shop.contoso.com") == ("2001:db8::5", "443", "shop.contoso.com")
    assert split_binding_information("*:443:") == ("*", "443", "")
    assert split_binding_information("10.0.0.6:8443:") == ("10.0.0.6", "8443", "")


def _run(hosts: dict, collected: str | None = "2026-11-24T12:00:00Z"):
    return diagnose({n: host_from_spec(n, s) for n, s in hosts.items()}, collected_utc=collected)


def test_expiry_thresholds_and_citations() -> None:
    result = _run({h: CASE["hosts"][h] for h in ("web01", "web02", "web03")})
    by_host = {f.hosts[0]: f for f in result.findings}
    assert (by_host["web01"].cause, by_host["web01"].severity) == ("certificate-expired", "high")
    assert (by_host["web02"].cause, by_host["web02"].severity) == ("certificate-expiring", "medium")
    assert (by_host["web03"].cause, by_host["web03"].severity) == ("certificate-expiring", "low")
    expired = by_host["web01"]
    assert expired.site == "Billing" and expired.scope == "billing.contoso.com:443"
    config = next(e for e in expired.evidence if e.kind == "config")
    assert (config.source.file.endswith("applicationHost.config"), config.source.line) == (True, 171)
    cert = [e for e in expired.evidence if e.kind == "certificate"]
    assert any("Cert:\\LocalMachine\\MY\\1111111111111111111111111111111111111111" == (e.source.file if e.source else "")
               for e in cert)
    assert "2026-11-19" in expired.explanation


def test_a_farm_sharing_one_certificate_is_one_finding() -> None:
    hosts = {"web01": CASE["hosts"]["web01"], "web02": copy.deepcopy(CASE["hosts"]["web01"])}
    [finding] = _run(hosts).findings
    assert finding.hosts == ("web01", "web02") and len([e for e in finding.evidence if e.kind == "config"]) == 2


def test_without_a_collection_time_the_hosts_clock_decides_with_less_confidence() -> None:
    host = copy.deepcopy(CASE["hosts"]["web01"])
    host["facts"] = {"computer_name": "WEB01", "utc_now": "2026-11-24T12:00:00Z"}
    [finding] = _run({"web01": host}, collected=None).findings
    assert finding.cause == "certificate-expired" and finding.confidence.level == "medium"
    assert "host's own clock" in finding.confidence.reason


def test_an_ip_binding_falls_back_to_the_wildcard_record_and_a_specific_one_wins() -> None:
    host = copy.deepcopy(CASE["hosts"]["web06"])
    specific = copy.deepcopy(host["ssl_bindings"][0])
    specific.update(endpoint="10.0.0.6:8443", address="10.0.0.6")
    specific["certificate"] = copy.deepcopy(CASE["hosts"]["web09"]["ssl_bindings"][0]["certificate"])
    causes = {f.cause for f in _run({"web06": host}).findings}
    assert "certificate-no-private-key" in causes  # 0.0.0.0:8443 serves 10.0.0.6:8443
    host["ssl_bindings"].append(specific)
    judged = [f for f in _run({"web06": host}).findings if f.site == "Legacy"]
    assert judged == []  # the 10.0.0.6:8443 record (a good certificate) serves the site, not the wildcard one


def test_a_host_that_was_not_asked_is_not_judged() -> None:
    host = copy.deepcopy(CASE["hosts"]["web08"])
    del host["ssl_bindings"]
    assert [f for f in _run({"web08": host}).findings if f.cause.startswith(("certificate", "https"))] == []
