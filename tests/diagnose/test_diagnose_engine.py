"""The engine around the rules: missing evidence, merging, drift, fleet views, determinism, envelopes."""

from __future__ import annotations

import base64
import gzip
import json
from types import SimpleNamespace

from diag_builders import host_from_spec
from toolkit.diagnose import diagnose, diagnose_run
from toolkit.diagnose.evidence import build_host_evidence

RIGHT_DENIED = {
    "sites": [{"name": "Default Web Site"}],
    "log": [{"site": "Default Web Site", "sub": 1, "win32": 1385, "terminal": 40}],
    "failures": [{"user": "IUSR", "domain": "NT AUTHORITY", "status": "0xC000015B", "logon_type": 3}],
    "rights": {"SeNetworkLogonRight": ["S-1-1-0"], "SeDenyNetworkLogonRight": ["S-1-5-32-546"]},
    "groups": [{"name": "Guests", "sid": "S-1-5-32-546", "members": ["IUSR"]}],
}


def shop(user: str = "IUSR", failing: bool = False) -> dict:
    spec = {"sites": [{"name": "Shop", "host_header": "shop.contoso.com",
                       "anonymous": {"enabled": True, "user_name": user}}],
            "requests": {"Shop": 5000}}
    if failing:
        spec["log"] = [{"site": "Shop", "sub": 1, "win32": 1326, "terminal": 30}]
        spec["failures"] = [{"user": user.split("\\")[-1], "domain": "CONTOSO", "sub_status": "0xC000006A"}]
    return spec


def test_missing_rights_lowers_confidence_and_names_it() -> None:
    full = diagnose({"web01": host_from_spec("web01", RIGHT_DENIED)}).findings[0]
    spec = dict(RIGHT_DENIED)
    spec.pop("rights")
    spec["missing"] = {"rights": "Get-LocalUserRight was not collected (host failed: timeout)"}
    partial = diagnose({"web01": host_from_spec("web01", spec)}).findings[0]
    assert (full.cause, partial.cause) == ("logon-right-denied", "logon-right-denied")
    assert full.confidence.level == "high" and not full.missing_evidence
    assert partial.confidence.level in ("medium", "low")
    assert any("Get-LocalUserRight" in m for m in partial.missing_evidence)
    assert "missing" in partial.confidence.reason


def test_same_cause_on_several_hosts_is_one_finding() -> None:
    hosts = {name: host_from_spec(name, RIGHT_DENIED) for name in ("web01", "web02", "web03")}
    result = diagnose(hosts)
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.hosts == ("web01", "web02", "web03")
    assert finding.terminal_401 == 120
    assert {e.host for e in finding.evidence} == {"web01", "web02", "web03"}


def test_different_sites_are_not_merged() -> None:
    other = json.loads(json.dumps(RIGHT_DENIED).replace("Default Web Site", "Intranet"))
    result = diagnose({"web01": host_from_spec("web01", RIGHT_DENIED), "web02": host_from_spec("web02", other)})
    assert sorted((f.site, f.hosts) for f in result.findings) == [("Default Web Site", ("web01",)),
                                                                   ("Intranet", ("web02",))]


def test_drift_ranks_the_attribute_that_separates_failing_servers() -> None:
    hosts = {f"web0{i}": host_from_spec(f"web0{i}", {**shop(), "crash_on_audit_fail": 0})
             for i in range(1, 9) if i != 3}
    hosts["web03"] = host_from_spec("web03", {**shop("CONTOSO\\svc_web", failing=True), "crash_on_audit_fail": 0})
    # noise: a difference that does not line up with the failures
    hosts["web05"] = host_from_spec("web05", {**shop(), "crash_on_audit_fail": 1})
    result = diagnose(hosts)
    top = result.drift[0]
    assert (top.site, top.attribute, top.hosts, top.score) == ("Shop", "anonymous.user_name", ("web03",), 1.0)
    assert top.summary == ("web03 differs from the other 7 on Shop: anonymous.user_name=CONTOSO\\svc_web "
                           "(others: IUSR)")
    noise = [d for d in result.drift if d.attribute == "security.crash_on_audit_fail"]
    assert noise and noise[0].hosts == ("web05",) and noise[0].score == 0.0
    finding = next(f for f in result.findings if f.cause == "anonymous-credentials-invalid")
    assert any(e.kind == "drift" and "anonymous.user_name" in e.summary for e in finding.evidence)


def test_missing_evidence_is_not_drift() -> None:
    hosts = {f"web0{i}": host_from_spec(f"web0{i}", {**shop(), "crash_on_audit_fail": 0}) for i in range(1, 4)}
    hosts["web04"] = host_from_spec("web04", shop())  # its event collector did not answer
    assert not [d for d in diagnose(hosts).drift if d.attribute == "security.crash_on_audit_fail"]


def test_sites_are_matched_by_binding_when_names_differ() -> None:
    a = host_from_spec("web01", shop())
    b_spec = shop("CONTOSO\\svc_web", failing=True)
    b_spec["sites"][0]["name"] = "Shop-Prod"
    b_spec["log"][0]["site"] = "Shop-Prod"
    result = diagnose({"web01": a, "web02": host_from_spec("web02", b_spec),
                       "web03": host_from_spec("web03", shop())})
    assert any(d.attribute == "anonymous.user_name" and d.hosts == ("web02",) for d in result.drift)


def test_clock_outlier_against_fleet_median() -> None:
    hosts = {}
    for i, stamp in enumerate(("12:00:00", "12:00:05", "11:59:58", "12:09:00"), 1):
        spec = shop()
        spec["facts"] = {"computer_name": f"WEB0{i}", "utc_now": f"2026-11-24T{stamp}Z"}
        hosts[f"web0{i}"] = host_from_spec(f"web0{i}", spec)
    result = diagnose(hosts, collected_utc="2026-11-24T13:00:00Z")  # median wins with 3+ hosts
    assert [(c.host, c.reference) for c in result.clock_outliers] == [("web04", "fleet median")]
    assert 530 < result.clock_outliers[0].offset_s < 545


def test_matrix_rate_and_leading_cause() -> None:
    result = diagnose({"web01": host_from_spec("web01", shop("CONTOSO\\svc_web", failing=True)),
                       "web02": host_from_spec("web02", shop())})
    cells = {(c.host, c.site): c for c in result.matrix}
    assert cells[("web01", "Shop")].to_dict()["rate"] == 0.006
    assert cells[("web01", "Shop")].leading_cause == "anonymous-credentials-invalid"
    assert cells[("web02", "Shop")].terminal_401 == 0 and cells[("web02", "Shop")].leading_cause is None


def test_to_dict_is_deterministic_and_versioned() -> None:
    specs = {"web02": RIGHT_DENIED, "web01": shop("CONTOSO\\svc_web", failing=True), "web03": shop()}
    one = diagnose({n: host_from_spec(n, s) for n, s in specs.items()}).to_dict()
    two = diagnose({n: host_from_spec(n, s) for n, s in reversed(list(specs.items()))}).to_dict()
    assert json.dumps(one, sort_keys=False) == json.dumps(two, sort_keys=False)
    assert one["schema"] == "iisfleet.diagnosis/1"
    assert [h["host"] for h in one["hosts"]] == ["web01", "web02", "web03"]
    for finding in one["findings"]:
        assert {"id", "hosts", "site", "scope", "substatus", "cause", "severity", "confidence", "evidence",
                "missing_evidence", "explanation", "fix"} <= set(finding)
    assert "time" not in json.dumps(one["summary"])


def _blob(text: str) -> dict:
    raw = text.encode("utf-8")
    return {"encoding": "gzip+base64", "content": base64.b64encode(gzip.compress(raw, mtime=0)).decode(),
            "bytes": len(raw), "truncated": False}


def _envelope(collector: str, data: dict, errors: list | None = None) -> dict:
    return {"schema": "iisfleet.collector/1", "collector": collector, "version": 1, "host": "WEB01",
            "time_utc": "2026-11-24T12:00:00Z", "data": data, "errors": errors or []}


W3C = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
       "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
       "sc-status sc-substatus sc-win32-status time-taken\n")


def _excerpt(rows: list[str]) -> str:
    lines = W3C.splitlines() + rows
    return "".join(f"{i}\t{line}\n" for i, line in enumerate(lines, 1))


def test_envelopes_to_findings_with_unreadable_security_log() -> None:
    rows = [f"2026-11-24 10:00:{i:02d} 10.0.0.1 GET /index.html - 80 - 10.0.0.{i} Mozilla 401 1 1326 1"
            for i in range(10, 30)]
    apphost = ("<configuration><system.applicationHost><sites><site name=\"Shop\" id=\"1\"><application path=\"/\">"
               "<virtualDirectory path=\"/\" physicalPath=\"C:\\inetpub\\shop\" /></application></site></sites>"
               "</system.applicationHost><location path=\"Shop\"><system.webServer><security><authentication>"
               "<anonymousAuthentication enabled=\"true\" userName=\"CONTOSO\\svc_web\" /></authentication>"
               "</security></system.webServer></location></configuration>")
    envelopes = {
        "Get-HostFact": _envelope("Get-HostFact", {"computer_name": "WEB01", "utc_now": "2026-11-24T12:00:00Z"}),
        "Get-IisConfig": _envelope("Get-IisConfig", {
            "application_host_config": {"path": "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config",
                                        "content": _blob(apphost)}, "web_configs": [], "redirection_config": None}),
        "Get-IisW3CLog": _envelope("Get-IisW3CLog", {"directories": [], "files": [{
            "path": "C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex261124.log", "site_id": 1, "size_bytes": 1,
            "lines_total": 23, "data_lines": 400, "lines_kept": 20, "truncated": False,
            "excerpt": _blob(_excerpt(rows))}]}),
        "Get-AuthEventLog": _envelope("Get-AuthEventLog", {"events": [], "logon_counts": {}, "logs": [],
                                                           "crash_on_audit_fail": 0},
                                      errors=[{"probe": "Security", "category": "access-denied",
                                               "message": "Attempted to perform an unauthorized operation."}]),
    }
    evidence = build_host_evidence("web01", envelopes)
    assert "security-log" in evidence.missing and "rights" in evidence.missing and "freb" in evidence.missing
    assert evidence.log.requests_by_site == {"Shop": 400}
    result = diagnose({"web01": evidence})
    finding = result.findings[0]
    assert (finding.cause, finding.site, finding.terminal_401) == ("anonymous-credentials-invalid", "Shop", 20)
    assert finding.confidence.level == "low"  # no 4625 to confirm, and the Security log was unreadable
    assert any("Security" in m for m in finding.missing_evidence)
    log_rows = [e for e in finding.evidence if e.kind == "log" and e.source and e.source.line]
    assert log_rows[0].source.file.endswith("u_ex261124.log") and log_rows[0].source.line >= 4


def test_diagnose_run_duck_types_run_data() -> None:
    record = SimpleNamespace(status="failed", error={"category": "connect", "message": "connection refused"},
                             address="10.0.0.9", envelopes={})
    run = SimpleNamespace(meta={"started_utc": "2026-11-24T12:00:00Z"}, hosts={"web09": record})
    result = diagnose_run(run)
    host = result.to_dict()["hosts"][0]
    assert (host["host"], host["status"], host["error"]) == ("web09", "failed", "connection refused")
    assert any("connection refused" in m for m in host["missing_evidence"])
    assert result.findings == ()


def test_a_failing_rule_becomes_an_unexplained_finding_not_a_crash(monkeypatch) -> None:
    from toolkit.diagnose import rules

    def broken(ctx):
        raise KeyError("surprise")

    monkeypatch.setitem(rules.RULES_BY_SUBSTATUS, 1, (broken,))
    result = diagnose({"web01": host_from_spec("web01", RIGHT_DENIED)})
    (finding,) = result.findings
    assert finding.cause == "unexplained" and finding.confidence.level == "low"
    assert any("rule broken could not evaluate" in m for m in finding.missing_evidence)


def test_missing_collectors_say_why_from_the_run_steps() -> None:
    steps = [{"collector": "Get-IisFailedRequestTrace", "status": "skipped", "error": None,
              "skipped_reason": "no terminal 401 in the W3C logs"},
             {"collector": "Get-AuthEventLog", "status": "failed", "skipped_reason": None,
              "error": {"category": "timeout", "message": "Get-AuthEventLog did not answer within 60 s"}}]
    evidence = build_host_evidence("web01", {}, status="partial", steps=steps)
    assert evidence.missing["freb"] == "Get-IisFailedRequestTrace was skipped: no terminal 401 in the W3C logs"
    assert evidence.missing["events"] == "Get-AuthEventLog failed: Get-AuthEventLog did not answer within 60 s"
    assert evidence.missing["config"] == "Get-IisConfig was not collected"


def test_a_step_its_playbook_skipped_by_condition_is_not_a_host_problem() -> None:
    """`when:` false is the playbook's choice (no terminal 401, so no trace needed): rules still learn why
    there is no trace, but the hosts table does not list it as missing. A condition that could not be
    evaluated is not a choice and stays a problem."""
    by_choice = {"collector": "Get-IisFailedRequestTrace", "status": "skipped", "error": None,
                 "skipped_reason": "when 'Get-IisW3CLog.terminal_401 > 0' is false (Get-IisW3CLog.terminal_401 = 0)"}
    undecidable = {"collector": "Get-AuthEventLog", "status": "skipped", "error": None,
                   "skipped_reason": "when 'Get-HostFact.security_log_readable': Get-HostFact.security_log_readable "
                                     "was not collected"}
    evidence = build_host_evidence("web01", {}, status="ok", steps=[by_choice, undecidable])
    assert "when 'Get-IisW3CLog.terminal_401 > 0' is false" in evidence.missing["freb"]
    assert evidence.not_needed == frozenset({"freb"})

    record = SimpleNamespace(status="ok", error=None, address="10.0.0.9", envelopes={},
                             steps=[by_choice, undecidable])
    run = SimpleNamespace(meta={"started_utc": "2026-11-24T12:00:00Z"}, hosts={"web01": record})
    host = diagnose_run(run).to_dict()["hosts"][0]
    assert not any("Get-IisFailedRequestTrace" in m for m in host["missing_evidence"])
    assert any("Get-AuthEventLog was skipped" in m for m in host["missing_evidence"])
