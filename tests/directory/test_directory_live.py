"""The directory layer against a real Samba AD DC (marker ``samba``): binds with each auth method, the
queries, and the diagnosis of causes only the DC can settle (tests/fixtures/directory/fleet.yml)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from toolkit.directory.collect import DirectoryNeeds, collect, needs_from_hosts
from toolkit.directory.config import DirectoryConfig
from toolkit.directory.facts import facts_from_document
from toolkit.directory.ldap import DirectoryError, open_session
from toolkit.models import Credential
from toolkit.secrets import Secret

sys.path.insert(0, str(Path(__file__).parents[1] / "diagnose"))
from diag_builders import causes_by_host, host_from_spec  # noqa: E402

pytestmark = pytest.mark.samba
PASSWORD = "Lab!Passw0rd-1"  # the lab domain's password for every seeded user (tests/directory/conftest.py)
FLEET = yaml.safe_load((Path(__file__).parents[1] / "fixtures" / "directory" / "fleet.yml").read_text())


def config(domain, **overrides) -> DirectoryConfig:
    values = dict(dcs=(domain.ip,), auth="ntlm", scheme="ldaps", ca_bundle=domain.ca, tls_name=domain.dc_fqdn)
    values.update(overrides)
    return DirectoryConfig(**values)


def user(name: str, password: str = PASSWORD) -> Credential:
    return Credential(name="t", username=f"CONTOSO\\{name}", password=Secret(password))


@pytest.mark.parametrize("auth,scheme", [("ntlm", "ldap"), ("ntlm", "ldaps"), ("kerberos", "ldaps"),
                                         ("kerberos", "ldap"), ("simple", "ldaps")])
def test_bind_and_search(lab_domain, monkeypatch, auth, scheme) -> None:
    pytest.importorskip("gssapi") if auth == "kerberos" else None
    if auth == "kerberos":
        monkeypatch.setenv("KRB5CCNAME", lab_domain.kinit("alice"))
    credential = None if auth == "kerberos" else user("alice")
    session = open_session(config(lab_domain, auth=auth, scheme=scheme), lab_domain.ip, credential)
    try:
        found = session.search("DC=contoso,DC=test", "(servicePrincipalName=HTTP/web01.contoso.test)",
                               ["sAMAccountName", "objectSid"])
    finally:
        session.close()
    assert [e.first("sAMAccountName") for e in found] == ["WEB01$"]
    assert re.match(r"^S-1-5-21-\d+-\d+-\d+-\d+$", found[0].first("objectSid"))


def test_wrong_password_is_an_auth_error_without_the_password(lab_domain) -> None:
    with pytest.raises(DirectoryError) as caught:
        open_session(config(lab_domain), lab_domain.ip, user("bob", "Wr0ng-Secret-xyz"))
    assert caught.value.category == "auth"
    assert "Wr0ng-Secret-xyz" not in str(caught.value)


def test_certificate_is_checked(lab_domain, tmp_path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_text(_unrelated_ca(tmp_path))
    with pytest.raises(DirectoryError) as caught:
        open_session(config(lab_domain, ca_bundle=str(other)), lab_domain.ip, user("alice"))
    assert caught.value.category == "tls"


def _unrelated_ca(tmp_path: Path) -> str:
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")], check=True,
                   capture_output=True)
    return (tmp_path / "c.pem").read_text()


def _sid_of(domain, name: str) -> str:
    session = open_session(config(domain), domain.ip, user("alice"))
    try:
        return session.search("DC=contoso,DC=test", f"(sAMAccountName={name})", ["objectSid"])[0].first("objectSid")
    finally:
        session.close()


def _fleet_hosts(domain) -> dict:
    text = json.dumps(FLEET["hosts"])
    text = re.sub(r"\{sid:([A-Za-z_]+)\}", lambda m: _sid_of(domain, m.group(1)), text)
    return {name: host_from_spec(name, spec) for name, spec in json.loads(text).items()}


def test_needs_and_queries_are_kept_as_evidence(lab_domain) -> None:
    hosts = _fleet_hosts(lab_domain)
    needs = needs_from_hosts(hosts)
    assert {"HTTP/app.contoso.test", "HTTP/web01.contoso.test", "HTTP/web01"} <= needs.spns
    assert {"CONTOSO\\locked_user", "CONTOSO\\svc_portal", "WEB01$"} <= needs.accounts
    doc = collect(config(lab_domain), user("alice"), needs)
    assert doc["errors"] == [] and doc["dc"] == f"{lab_domain.ip}:636"
    assert doc["spn_scope"].startswith("forest")  # the global catalog answered
    assert [h["sam"] for h in doc["spn_holders"]["HTTP/app.contoso.test"]] == ["svc_app_a", "svc_app_b"]
    assert doc["accounts"]["CONTOSO\\locked_user"]["computed"] & 0x10
    assert all(q["dc"].startswith(lab_domain.ip) and "filter" in q for q in doc["queries"])
    assert PASSWORD not in json.dumps(doc)
    # nested membership: tokenGroups reaches NoNetworkLogon through WebAdmins -> PortalReaders
    names = {doc["sids"][s] for s in doc["token_groups"]["CONTOSO\\alice"] if s in doc["sids"]}
    assert {"CONTOSO\\WebAdmins", "CONTOSO\\PortalReaders", "CONTOSO\\NoNetworkLogon"} <= names


def test_diagnosis_with_the_directory(lab_domain) -> None:
    from toolkit.diagnose import diagnose

    hosts = _fleet_hosts(lab_domain)
    doc = collect(config(lab_domain), user("alice"), needs_from_hosts(hosts))
    result = diagnose(hosts, directory=facts_from_document(doc))
    found = causes_by_host(result.findings)
    for host, causes in FLEET["expect"].items():
        assert set(causes) <= found.get(host, set()), (host, found)
    for host, causes in FLEET["reject"].items():
        assert not set(causes) & found.get(host, set()), (host, found)
    for cause, texts in FLEET["evidence_contains"].items():
        summaries = " | ".join(e.summary for f in result.findings if f.cause == cause for e in f.evidence)
        for text in texts:
            assert text in summaries, (cause, summaries)
    for site, state in FLEET["states"].items():
        finding = next(f for f in result.findings if f.site == site and f.hosts == ("web03",))
        assert state in finding.title or any(state in e.summary for e in finding.evidence if e.kind == "directory")
        assert finding.confidence.level == "high"
    dup = [d for d in result.spn_duplicates if d.spn.lower() == "http/app.contoso.test"]
    assert dup and {a.split("\\")[-1] for a in dup[0].accounts} == {"svc_app_a", "svc_app_b"}
    assert not [m for m in result.spn_mismatches if m.host == "web01"]
    assert any("LDAP" in n for n in result.evidence_notes)


def test_without_the_directory_the_run_still_diagnoses_and_says_what_was_weaker(lab_domain) -> None:
    from toolkit.diagnose import diagnose

    result = diagnose(_fleet_hosts(lab_domain), directory=None)
    found = causes_by_host(result.findings)
    assert "kerberos-spn-duplicate" not in found.get("web02", set())  # setspn never listed the holders
    assert "account-locked-out" in found.get("web03", set())  # still found, from the log's win32 code
    notes = " ".join(result.evidence_notes)
    assert "No directory" in notes and "account-locked-out on web03: judged on weaker evidence" in notes


def test_unreachable_dcs_are_recorded_not_raised(lab_domain) -> None:
    doc = collect(config(lab_domain, dcs=("127.0.0.54", lab_domain.ip)), user("alice"),
                  DirectoryNeeds(spns={"HTTP/web01"}))
    assert doc["errors"][0]["dc"] == "127.0.0.54" and doc["errors"][0]["category"] == "connect"
    assert doc["dc"] == f"{lab_domain.ip}:636"
