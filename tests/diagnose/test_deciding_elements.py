"""A finding cites the configuration element that decided each value it rests on.

The configuration (tests/fixtures/parsers/iisconfig/location-dynamic-ip/applicationHost.config) has
server-level <ipSecurity>/<dynamicIpSecurity> that answer 403, a Shop location that denies one address
with 401, and a Shop/api location whose dynamic restriction answers 401. The log is
tests/fixtures/diagnose/logs/ip-restrictions/. Both go through the real parsers, as collected.
"""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

from toolkit.diagnose import diagnose
from toolkit.diagnose.evidence import build_host_evidence

FIXTURES = Path(__file__).parents[1] / "fixtures"
CONFIG = FIXTURES / "parsers" / "iisconfig" / "location-dynamic-ip" / "applicationHost.config"
LOG = FIXTURES / "diagnose" / "logs" / "ip-restrictions" / "W3SVC2" / "u_ex261124.log"
APPHOST = "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"


def _blob(data: bytes) -> dict:
    return {"encoding": "gzip+base64", "content": base64.b64encode(gzip.compress(data)).decode(), "bytes": len(data),
            "truncated": False}


def _envelope(collector: str, data: dict) -> dict:
    return {"schema": "iisfleet.collector/1", "collector": collector, "version": 1, "host": "WEB01",
            "time_utc": "2026-11-24T15:00:00Z", "data": data, "errors": []}


def _diagnosis():
    lines = LOG.read_bytes().splitlines()
    excerpt = b"".join(f"{n}\t".encode() + line + b"\n" for n, line in enumerate(lines, 1))
    envelopes = {
        "Get-IisConfig": _envelope("Get-IisConfig", {
            "application_host_config": {"path": APPHOST, "content": _blob(CONFIG.read_bytes())},
            "web_configs": [], "redirection_config": None}),
        "Get-IisW3CLog": _envelope("Get-IisW3CLog", {"directories": [], "files": [{
            "path": "C:\\inetpub\\logs\\LogFiles\\W3SVC2\\u_ex261124.log", "site_id": 2, "size_bytes": len(excerpt),
            "lines_total": len(lines), "data_lines": len(lines) - 4, "lines_kept": len(lines), "truncated": False,
            "excerpt": _blob(excerpt)}]}),
    }
    return diagnose({"web01": build_host_evidence("web01", envelopes)})


def _config_lines(finding) -> dict[str, int | None]:
    return {e.summary: (e.source.line if e.source else None) for e in finding.evidence if e.kind == "config"}


def test_dynamic_restriction_cites_the_locations_element_not_the_servers() -> None:
    finding = next(f for f in _diagnosis().findings if f.substatus == "401.502")
    assert finding.cause == "ip-restriction" and finding.scope == "/api"
    cited = _config_lines(finding)
    deny_action = [line for summary, line in cited.items() if "denyAction=Unauthorized" in summary]
    assert deny_action == [47], cited  # <location path="Shop/api"><dynamicIpSecurity denyAction=...>
    assert 31 not in cited.values() and 32 not in cited.values()  # the server's ipSecurity/dynamicIpSecurity
    assert all(e.source.file == APPHOST for e in finding.evidence if e.kind == "config" and e.source)


def test_ip_deny_list_cites_the_decision_and_the_entry() -> None:
    finding = next(f for f in _diagnosis().findings if f.substatus == "401.503")
    cited = _config_lines(finding)
    assert [line for s, line in cited.items() if "denyAction=Unauthorized" in s] == [38]
    assert [line for s, line in cited.items() if "allowUnlisted=True" in s] == [31]  # the server decided that
    assert [line for s, line in cited.items() if "falls under the deny entry 203.0.113.9" in s] == [39]
