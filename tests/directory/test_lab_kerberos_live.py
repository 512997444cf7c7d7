"""Kerberos end to end in the lab: a real ticket from the Samba KDC, accepted by the lab's WinRM listener
with the keytab exported from the DC; a wrong SPN fails with the KDC's own reason (marker ``samba``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.samba
pytest.importorskip("gssapi", reason="python-gssapi is not installed (it needs libkrb5-dev to build)")
sys.path.insert(0, str(Path(__file__).parents[1] / "fleet"))
from fleet_helpers import StubPlaybook, StubStep  # noqa: E402
from lab_fixtures import EchoBackend  # noqa: E402

from toolkit.lab.backend import LabHostSpec  # noqa: E402
from toolkit.models import Credential, HostConfig, WinRMOptions  # noqa: E402
from toolkit.runner import run_playbook  # noqa: E402


@pytest.fixture
def kerberos_lab(lab_domain, tmp_path, monkeypatch):
    from toolkit.lab.server import LabServer
    from toolkit.lab.winrm.auth import use_keytab

    monkeypatch.setenv("KRB5CCNAME", lab_domain.kinit("alice"))
    restore = use_keytab(lab_domain.seeded["keytabs"]["HTTP/web01.contoso.test"], lab_domain.dc.krb5_conf)
    spec = LabHostSpec(name="web01", address="127.0.61.10", fqdn="web01.contoso.test", http_port=0, https_port=0,
                       ssh_port=0, users={"CONTOSO\\alice": "not-used-with-kerberos-1"})
    server = LabServer([(spec, EchoBackend("ok"))], state_dir=tmp_path / "lab")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        restore()


def _host(server, name_in_spn: str) -> HostConfig:
    endpoint = server.endpoints()["web01"]
    options = WinRMOptions(scheme="http", port=int(endpoint["http_port"]), auth="kerberos",
                           negotiate_service="HTTP", negotiate_hostname_override=name_in_spn, connect_timeout=3,
                           operation_timeout=2, read_timeout=10)
    return HostConfig(name="web01", address=str(endpoint["address"]),
                      credential=Credential(name="kerb", username="alice@CONTOSO.TEST"), winrm=options,
                      time_budget=60)


def _run(server, tmp_path: Path, name_in_spn: str):
    from toolkit.collectors import load_catalog

    book = StubPlaybook("kerberos", [StubStep("Get-HostFact", {}, timeout=20)])
    return run_playbook(book, [_host(server, name_in_spn)], out_dir=tmp_path / "run", params={},
                        catalog=load_catalog()).hosts[0]


def test_winrm_logon_with_a_real_ticket(kerberos_lab, tmp_path) -> None:
    result = _run(kerberos_lab, tmp_path, "web01.contoso.test")
    assert result.status == "ok", result.error
    assert [s.status for s in result.steps] == ["ok"]


def test_wrong_spn_fails_with_the_kdcs_reason(kerberos_lab, tmp_path) -> None:
    result = _run(kerberos_lab, tmp_path, "nosuch.contoso.test")
    assert result.status == "failed" and result.error.category == "auth"
    assert "not found in Kerberos database" in (result.error.message + " " + (result.error.explanation or ""))
