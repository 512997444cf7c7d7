"""Scenario builder: every scenario generates, the answer key is complete, output is deterministic, and
the planted evidence is consistent across logs, events, rights, ACLs and SPNs."""

from __future__ import annotations

import importlib
import base64
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from toolkit.errors import UsageError
from toolkit.lab.model import LabFleet
from toolkit.lab.model.appconfig import summarise
from toolkit.lab.model.catalog import BundledCollector
from toolkit.lab.scenarios import FAULTS, SCENARIOS, generate
from toolkit.lab.scenarios.causes import PLANTERS

CONTRACT_CAUSES = {
    "anonymous-credentials-invalid", "logon-right-denied", "account-locked-out", "account-disabled-or-expired",
    "kerberos-spn-missing", "kerberos-spn-duplicate", "kerberos-kernel-mode-mismatch", "security-log-full",
    "clock-skew", "user-credentials-rejected", "auth-protocol-mismatch", "ntlm-through-proxy",
    "client-certificate-mapping", "content-acl-denied", "anonymous-identity-vs-pool-identity",
    "unc-share-acl-mismatch", "isapi-filter-denied", "isapi-extension-denied", "ip-restriction",
}
#: host health causes the lab plants too (substatus "host": no 401 is logged for them)
HEALTH_CAUSES = {"certificate-expired", "certificate-expiring", "certificate-name-mismatch", "certificate-missing"}


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def expected(root: Path) -> dict:
    return json.loads((root / "expected.json").read_text(encoding="utf-8"))


def w3c_lines(root: Path, host: str, folder: str = "") -> list[str]:
    logs = root / "hosts" / host / "files" / "C" / "inetpub" / "logs" / "LogFiles" / folder
    return [row for path in sorted(logs.rglob("*.log")) for row in path.read_text(encoding="utf-8").splitlines()
            if row and not row.startswith("#")]


def events(root: Path, host: str) -> list[dict]:
    return [json.loads(row) for row in (root / "hosts" / host / "events.jsonl").read_text().splitlines() if row]


def host_yml(root: Path, host: str) -> dict:
    return yaml.safe_load((root / "hosts" / host / "host.yml").read_text(encoding="utf-8"))


def host_with(key: dict, cause: str) -> str:
    return next(h for h, entries in key["hosts"].items() if any(e["cause"] == cause for e in entries))


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "large"])
def test_every_scenario_generates_a_loadable_fleet(scenario: str, tmp_path: Path, bundled, fixed_clock) -> None:
    from toolkit.lab.model import load_fleet

    hosts = {"seed-catalog": 6, "faults": len(FAULTS) + 1}.get(scenario, 3)
    key = generate(scenario, hosts, tmp_path)
    assert key["schema"] == "iisfleet.lab-expected/1" and key["scenario"] == scenario
    assert len(key["hosts"]) == hosts
    fleet = load_fleet(tmp_path, bundled=bundled, clock=fixed_clock)
    assert [spec.address for spec, _ in fleet.hosts][:2] == ["127.77.0.11", "127.77.0.12"]


def test_large_scenario_is_mostly_healthy(tmp_path: Path) -> None:
    key = generate("large", 50, tmp_path)
    planted = [h for h, entries in key["hosts"].items() if entries]
    assert len(key["hosts"]) == 50 and len(planted) == 5
    assert yaml.safe_load((tmp_path / "fleet.yml").read_text())["hosts"][49]["address"] == "127.77.0.60"


def test_host_names_and_addresses_scale() -> None:
    from toolkit.lab.scenarios import host_address, host_name

    assert [host_name(7, 12), host_name(7, 300), host_name(300, 300)] == ["web07", "web007", "web300"]
    assert [host_address(1), host_address(200), host_address(201)] == ["127.77.0.11", "127.77.0.210", "127.77.1.11"]


def test_seed_catalog_plants_every_cause_and_keeps_hosts_healthy(seed_dir: Path) -> None:
    key = expected(seed_dir)
    planted = {e["cause"] for entries in key["hosts"].values() for e in entries}
    assert planted == CONTRACT_CAUSES | HEALTH_CAUSES == set(PLANTERS)
    assert sum(1 for entries in key["hosts"].values() if not entries) >= 2
    for entries in key["hosts"].values():
        for entry in entries:
            if entry["cause"] in HEALTH_CAUSES:
                assert entry["substatus"] == "host" and entry["site"] and entry["terminal"] == []
                continue
            assert entry["substatus"].startswith("401.") and entry["site"]
            assert any(group["substatus"] == entry["substatus"] for group in entry["terminal"]), entry
    (duplicate,) = key["spn_duplicates"]
    assert duplicate["spn"].startswith("HTTP/wiki-") and len(duplicate["accounts"]) == 2


def test_same_seed_same_tree_other_seed_other_tree(tmp_path: Path) -> None:
    generate("seed-catalog", 6, tmp_path / "a", seed=3)
    generate("seed-catalog", 6, tmp_path / "b", seed=3)
    generate("seed-catalog", 6, tmp_path / "c", seed=4)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


def test_refuses_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown scenario"):
        generate("chaos", 3, tmp_path / "x")
    with pytest.raises(UsageError, match="at least"):
        generate("seed-catalog", 3, tmp_path / "y")
    generate("healthy", 1, tmp_path / "z")
    with pytest.raises(UsageError, match="not empty"):
        generate("healthy", 1, tmp_path / "z")
    with pytest.raises(UsageError, match="unknown fault"):
        generate("healthy", 2, tmp_path / "w", faults={"web01": ["meteor"]})


def test_healthy_hosts_have_only_handshake_401s(seed_dir: Path) -> None:
    key = expected(seed_dir)
    healthy = [h for h, entries in key["hosts"].items() if not entries]
    assert healthy, "the seed fleet must keep hosts without a planted cause, or this test checks nothing"
    for host in healthy:
        rows = w3c_lines(seed_dir, host)
        challenges = [r for r in rows if " 401 2 5 " in r]
        assert challenges and any(" 401 1 2148074254 " in r for r in rows), "no Negotiate/NTLM handshakes"
        # every 401 is followed by a success from the same client (c-ip + agent) within seconds
        for index, row in enumerate(rows):
            fields = row.split(" ")
            if fields[11] != "401":
                continue
            later = [r.split(" ") for r in rows[index + 1:index + 40]]
            assert any(f[8] == fields[8] and f[9] == fields[9] and f[11] in ("200", "304") for f in later), row
        assert not [e for e in events(seed_dir, host) if e["id"] == 4625]


def test_log_analysis_agrees_with_the_answer_key(seed_dir: Path) -> None:
    logs = importlib.import_module("toolkit.logs")
    key = expected(seed_dir)
    for host, entries in key["hosts"].items():
        config = seed_dir / "hosts" / host / "files/C/Windows/System32/inetsrv/config/applicationHost.config"
        names = {f"W3SVC{site.id}": site.name for site in summarise(config.read_text(encoding="utf-8")).sites}
        found = set()
        for folder in sorted((seed_dir / "hosts" / host / "files/C/inetpub/logs/LogFiles").iterdir()):
            analyzer = logs.LogAnalyzer(server=host)
            analyzer.feed_path(folder)
            for group in analyzer.result().groups:
                if group.terminal:
                    found.add((names[group.site], f"401.{group.substatus}", group.win32, group.terminal))
        planted = {(e["site"], g["substatus"], g["win32"], g["count"]) for e in entries for g in e["terminal"]}
        assert found == planted, host


def test_logon_right_denied_evidence_is_consistent(seed_dir: Path) -> None:
    key = expected(seed_dir)
    host = host_with(key, "logon-right-denied")
    # Default Web Site (W3SVC1): IUSR through the local Guests group; Kiosk: a domain account through nested
    # domain groups (the DC knows them: fleet.yml's domain groups)
    assert {e["site"] for e in key["hosts"][host] if e["cause"] == "logon-right-denied"} == {"Default Web Site", "Kiosk"}
    rows = [r for r in w3c_lines(seed_dir, host, "W3SVC1")]
    assert sum(" 401 1 1385 " in r for r in rows) >= 20
    denied = [e for e in events(seed_dir, host) if e["id"] == 4625 and e["data"]["TargetUserName"] == "IUSR"]
    assert denied and all(e["data"]["Status"] == "0xC000015B" and e["data"]["SubStatus"] == "0x0" for e in denied)
    assert len(denied) == sum(" 401 1 1385 " in r for r in rows)
    kiosk = [e for e in events(seed_dir, host) if e["id"] == 4625 and e["data"]["TargetUserName"] == "svc_kiosk"]
    assert kiosk and {e["data"]["Status"] for e in kiosk} == {"0xC000015B"}
    domain = yaml.safe_load((seed_dir / "fleet.yml").read_text())["domain"]
    groups = {g["name"]: g for g in domain["groups"]}
    assert groups["KioskAccounts"]["members"] == ["svc_kiosk"] and groups["Contractors"]["members"] == ["KioskAccounts"]
    assert f"*{groups['WebDenyNetworkLogon']['sid']}" in (seed_dir / "hosts" / host / "secedit.inf").read_bytes().decode("utf-16")
    secedit = (seed_dir / "hosts" / host / "secedit.inf").read_bytes()
    assert secedit.startswith(b"\xff\xfe")
    text = secedit.decode("utf-16")
    assert "SeDenyNetworkLogonRight = *S-1-5-32-546" in text and text.lstrip("\ufeff").startswith("[Unicode]")
    guests = next(g for g in host_yml(seed_dir, host)["local_groups"] if g["name"] == "Guests")
    assert {"name": "NT AUTHORITY\\IUSR", "sid": "S-1-5-17"} in guests["members"]


# The account state lives where the account does: a local user in host.yml, a domain account in fleet.yml's
# domain: section (which the lab DC is seeded from).
@pytest.mark.parametrize(("cause", "log_code", "status", "substatus", "user_state"), [
    ("account-locked-out", " 401 1 1909 ", "0xC0000234", "0x0", {"locked": True}),
    ("anonymous-credentials-invalid", " 401 1 1326 ", "0xC000006D", "0xC000006A", {"enabled": True}),
    ("account-disabled-or-expired", " 401 1 1331 ", "0xC000006E", "0xC0000072", {"enabled": False}),
])
def test_anonymous_account_failures_are_consistent(seed_dir: Path, cause: str, log_code: str, status: str,
                                                   substatus: str, user_state: dict) -> None:
    key = expected(seed_dir)
    host = host_with(key, cause)
    site = next(e["site"] for e in key["hosts"][host] if e["cause"] == cause)
    config = (seed_dir / "hosts" / host / "files/C/Windows/System32/inetsrv/config/applicationHost.config").read_text()
    location = config[config.index(f'<location path="{site}"'):]
    location = location[:location.index("</location>")]
    owner, user = location.split('userName="', 1)[1].split('"', 1)[0].split("\\")
    if owner == "CONTOSO":
        domain = yaml.safe_load((seed_dir / "fleet.yml").read_text())["domain"]
        record = next(a for a in domain["accounts"] if a["sAMAccountName"] == user)
    else:
        record = next(u for u in host_yml(seed_dir, host)["local_users"] if u["name"] == user)
        record["locked"] = record.get("locked_out")
    assert all(record[k] == v for k, v in user_state.items())
    failures = [e for e in events(seed_dir, host) if e["id"] == 4625 and e["data"]["TargetUserName"] == user]
    assert failures and {(e["data"]["Status"], e["data"]["SubStatus"]) for e in failures} == {(status, substatus)}
    assert any(log_code in r for r in w3c_lines(seed_dir, host))


def test_kerberos_causes_show_in_config_and_spns(seed_fleet: LabFleet, seed_dir: Path,
                                                 bundled: dict[str, BundledCollector]) -> None:
    key = expected(seed_dir)
    accounts = {a["sAMAccountName"]: a for a in yaml.safe_load((seed_dir / "fleet.yml").read_text())["domain"]["accounts"]}
    assert accounts["svc_portal"]["spns"] == []  # missing
    hr_host = host_with(key, "kerberos-kernel-mode-mismatch")
    assert any(s.startswith("HTTP/hr-") for s in accounts["svc_hr"]["spns"])
    config = (seed_dir / "hosts" / hr_host / "files/C/Windows/System32/inetsrv/config/applicationHost.config").read_text()
    hr = config[config.index('<location path="HR"'):]
    assert "useAppPoolCredentials" not in hr[:hr.index("</location>")]
    spn_answer = json.loads(seed_fleet.backend(hr_host).answer(bundled["Get-IisSpn"].script, {}).output[0])
    outputs = {q["source"]: q["output"] for q in spn_answer["data"]["queries"]}
    assert "HTTP/hr-" in outputs["app-pool:HRPool"]
    duplicate = key["spn_duplicates"][0]["spn"]
    holders = [a for a in accounts.values() if duplicate in a["spns"]]
    assert len(holders) == 2 and any(a["sAMAccountName"].endswith("$") for a in holders)


def test_security_log_full_and_clock_skew_host_state(seed_dir: Path, seed_fleet: LabFleet, bundled) -> None:
    key = expected(seed_dir)
    full = host_yml(seed_dir, host_with(key, "security-log-full"))
    security = next(log for log in full["event_logs"] if log["name"] == "Security")
    assert security["is_full"] and security["retention"] == "Retain"
    assert full["registry"]["HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\CrashOnAuditFail"] == 2
    assert any(e["id"] == 1104 for e in events(seed_dir, host_with(key, "security-log-full")))
    skewed = host_with(key, "clock-skew")
    fact = json.loads(seed_fleet.backend(skewed).answer(bundled["Get-HostFact"].script, {}).output[0])
    assert fact["data"]["utc_now"] == "2026-11-26T08:41:00Z"  # 11 minutes ahead of the real clock
    assert any(" 401 1 2148074276 " in r for r in w3c_lines(seed_dir, skewed))


def test_acl_causes_ship_acls_and_freb(seed_fleet: LabFleet, seed_dir: Path, bundled) -> None:
    key = expected(seed_dir)
    host = host_with(key, "unc-share-acl-mismatch")
    paths = json.loads(seed_fleet.backend(host).answer(bundled["Get-IisContentAcl"].script, {}).output[0])["data"]["paths"]
    unc = next(p for p in paths if p["is_unc"])
    assert unc["share"]["name"] == "archive" and unc["share"]["sddl"].endswith("-512)")
    assert unc["sddl"] and "-512)" not in unc["sddl"]
    for cause, sub in (("content-acl-denied", "401.3"), ("isapi-filter-denied", "401.4"), ("isapi-extension-denied", "401.5")):
        host = host_with(key, cause)
        freb = json.loads(seed_fleet.backend(host).answer(bundled["Get-IisFailedRequestTrace"].script,
                                                          {"Since": "2026-11-20T00:00:00Z"}).output[0])
        statuses = set()
        for item in freb["data"]["files"]:
            import gzip
            text = gzip.decompress(base64.b64decode(item["content"]["content"])).decode()
            statuses.add(text.split('statusCode="', 1)[1].split('"', 1)[0])
        assert sub in statuses, (cause, statuses)


def test_drift_scenario_key(tmp_path: Path) -> None:
    key = generate("drift", 4, tmp_path, seed=1)
    (item,) = key["drift"]
    assert item["site"] == "Shop" and item["attribute"] == "anonymous.user_name"
    assert [h for h, entries in key["hosts"].items() if entries] == [item["host"]]
    for host in key["hosts"]:
        failing = [r for r in w3c_lines(tmp_path, host) if " 401 1 1326 " in r]
        assert bool(failing) == (host == item["host"])


def test_faults_scenario_key(tmp_path: Path) -> None:
    key = generate("faults", len(FAULTS) + 1, tmp_path)
    assert sorted(f for faults in key["faults"].values() for f in faults) == sorted(FAULTS)
    not_installed = next(h for h, f in key["faults"].items() if f == ["iis_not_installed"])
    assert host_yml(tmp_path, not_installed)["iis"]["installed"] is False
    slow = next(h for h, f in key["faults"].items() if f == ["slow_collector"])
    assert host_yml(tmp_path, slow)["faults"]["slow_collector"][0]["delay_s"] >= 60


def test_auth_set_in_web_config_is_unlocked_in_application_host(seed_dir: Path) -> None:
    key = expected(seed_dir)
    host = host_with(key, "auth-protocol-mismatch")
    files = seed_dir / "hosts" / host / "files"
    app_host = (files / "C/Windows/System32/inetsrv/config/applicationHost.config").read_text(encoding="utf-8")
    unlock = app_host[app_host.index('<location path="Partners" overrideMode="Allow">'):]
    assert "<anonymousAuthentication />" in unlock[:unlock.index("</location>")]
    web_config = (files / "D/sites/partners/web.config").read_text(encoding="utf-8")
    assert '<anonymousAuthentication enabled="false" />' in web_config
    iisconfig = importlib.import_module("toolkit.parsers.iisconfig")
    config = iisconfig.parse_iis_config(app_host, "applicationHost.config", [
        iisconfig.WebConfigText(site="Partners", virtual_path="/", path="D:\\sites\\partners\\web.config", text=web_config)])
    effective = iisconfig.effective_for(config, "Partners", "/")
    assert effective.anonymous.enabled is False


def test_every_client_address_in_the_logs_is_a_real_ip(seed_dir: Path) -> None:
    """c-ip comes from a network prefix of one to three octets; each must still become a valid address."""
    import ipaddress

    checked = 0
    for host in expected(seed_dir)["hosts"]:
        logs = seed_dir / "hosts" / host / "files" / "C" / "inetpub" / "logs" / "LogFiles"
        for path in sorted(logs.rglob("*.log")):
            fields: list[str] = []
            for row in path.read_text(encoding="utf-8").splitlines():
                if row.startswith("#Fields:"):
                    fields = row.split()[1:]
                elif row and not row.startswith("#"):
                    ipaddress.ip_address(row.split(" ")[fields.index("c-ip")])
                    checked += 1
    assert checked > 0, "no log rows found: the check above never ran"


def test_a_shared_pool_account_keeps_the_spns_every_host_registered() -> None:
    """A farm plants on one account from several hosts; later plantings must not drop earlier SPNs."""
    from toolkit.lab.scenarios.causes import Domain

    domain = Domain()
    domain.account("svc_hr", spns=["HTTP/hr-web08.contoso.com", "HTTP/hr-web08"])
    record = domain.account("svc_hr", spns=["HTTP/hr-web50.contoso.com", "HTTP/hr-web08"])
    assert record["spns"] == ["HTTP/hr-web08.contoso.com", "HTTP/hr-web08", "HTTP/hr-web50.contoso.com"]
