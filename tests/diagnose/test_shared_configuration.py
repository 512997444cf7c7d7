"""Shared configuration (redirection.config enabled="true") is detected and said loudly.

A web farm with shared configuration reads applicationHost.config from a share; the local copy a
collector reads may be stale. Until the shared file is read, every configuration-based finding is in
doubt, and the diagnosis and every report format must say so.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from test_diagnose_engine import _blob, _envelope, _excerpt
from toolkit.diagnose import diagnose
from toolkit.diagnose.evidence import build_host_evidence
from toolkit.parsers.iisconfig import parse_redirection_config
from toolkit.report import render
from toolkit.report.model import build_report

FIXTURES = Path(__file__).parents[1] / "fixtures" / "diagnose" / "shared-config"
SHARE = "\\\\fs01\\iisconfig$"
APPHOST = ("<configuration><system.applicationHost><sites><site name=\"Shop\" id=\"1\"><application path=\"/\">"
           "<virtualDirectory path=\"/\" physicalPath=\"C:\\inetpub\\shop\" /></application></site></sites>"
           "</system.applicationHost><location path=\"Shop\"><system.webServer><security><authentication>"
           "<anonymousAuthentication enabled=\"true\" userName=\"CONTOSO\\svc_web\" /></authentication>"
           "</security></system.webServer></location></configuration>")


def _envelopes(redirection: str | None) -> dict:
    rows = [f"2026-11-24 10:00:{i:02d} 10.0.0.1 GET /index.html - 80 - 10.0.0.{i} Mozilla 401 1 1326 1"
            for i in range(10, 30)]
    redirection_config = None if redirection is None else {
        "path": "C:\\Windows\\System32\\inetsrv\\config\\redirection.config",
        "content": _blob((FIXTURES / redirection).read_text("utf-8"))}
    return {
        "Get-HostFact": _envelope("Get-HostFact", {"computer_name": "WEB01", "utc_now": "2026-11-24T12:00:00Z"}),
        "Get-IisConfig": _envelope("Get-IisConfig", {
            "application_host_config": {"path": "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config",
                                        "content": _blob(APPHOST)},
            "web_configs": [], "redirection_config": redirection_config}),
        "Get-IisW3CLog": _envelope("Get-IisW3CLog", {"directories": [], "files": [{
            "path": "C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261124.log", "site_id": 1, "size_bytes": 1,
            "lines_total": 23, "data_lines": 400, "lines_kept": 20, "truncated": False,
            "excerpt": _blob(_excerpt(rows))}]}),
    }


def _reports(envelopes: dict) -> dict[str, str]:
    diagnosis = diagnose({"web01": build_host_evidence("web01", envelopes)}).to_dict()
    report = build_report({"hosts": ["web01"]}, diagnosis)
    return {fmt: render(report, fmt) for fmt in ("text", "md", "html", "json")}


def test_redirection_config_parser_reads_only_enabled_and_path() -> None:
    shared = parse_redirection_config((FIXTURES / "redirection-enabled.config").read_bytes(), "redirection.config")
    assert (shared.enabled, shared.path) == (True, SHARE) and shared.source and shared.source.line == 10
    off = parse_redirection_config((FIXTURES / "redirection-disabled.config").read_bytes(), "redirection.config")
    assert off.enabled is False
    assert parse_redirection_config("<configuration/>", "r.config").enabled is False


def test_enabled_shared_configuration_lowers_config_findings_and_says_why() -> None:
    evidence = build_host_evidence("web01", _envelopes("redirection-enabled.config"))
    assert evidence.shared_config == SHARE and evidence.config is not None
    finding = diagnose({"web01": evidence}).findings[0]
    assert finding.cause == "anonymous-credentials-invalid"
    assert any("SHARED CONFIGURATION" in m and SHARE in m for m in finding.missing_evidence)
    baseline = diagnose({"web01": build_host_evidence("web01", _envelopes(None))}).findings[0]
    assert finding.confidence.level != baseline.confidence.level or baseline.confidence.level == "low"
    assert not any("SHARED" in m for m in baseline.missing_evidence)


@pytest.mark.parametrize("fmt", ["text", "md", "html", "json"])
def test_every_report_format_warns_loudly_and_never_shows_the_share_password(fmt: str) -> None:
    on = _reports(_envelopes("redirection-enabled.config"))[fmt]
    off = _reports(_envelopes("redirection-disabled.config"))[fmt]
    assert "SHARED CONFIGURATION" in on and "iisconfig$" in on
    assert "SHARED CONFIGURATION" not in off
    for text in (on, off):
        assert "SECRETCIPHERTEXT" not in text and "svc_iisshare" not in text


def test_the_collectors_own_record_is_used_when_present() -> None:
    envelopes = _envelopes(None)
    envelopes["Get-IisConfig"]["data"]["shared_configuration"] = {"enabled": True, "path": "\\\\nas\\web"}
    assert build_host_evidence("web01", envelopes).shared_config == "\\\\nas\\web"
    envelopes["Get-IisConfig"]["data"]["shared_configuration"] = {"enabled": False, "path": ""}
    assert build_host_evidence("web01", envelopes).shared_config is None


def test_unreadable_redirection_config_keeps_the_config_and_names_the_doubt() -> None:
    envelopes = _envelopes("redirection-enabled.config")
    broken = copy.deepcopy(envelopes)
    broken["Get-IisConfig"]["data"]["redirection_config"]["content"] = _blob("<configuration><oops")
    evidence = build_host_evidence("web01", broken)
    assert evidence.config is not None and "config" not in evidence.missing
    assert "shared configuration may be on" in evidence.missing["shared-config"]
    assert json.dumps(diagnose({"web01": evidence}).to_dict())  # still a complete diagnosis
