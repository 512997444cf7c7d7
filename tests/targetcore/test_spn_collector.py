"""Get-IisSpn's C# core (IisFleet.Target.SpnCollector) under Mono with an ISpnLister double: which accounts
are queried (machine first, SpecificUser pools incl. inherited defaults, each account once), raw localized
output passed through, a setspn that cannot start reported per account."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from toolkit.collectors import get_collector
from toolkit.contract import validate_envelope
from toolkit.lab.model.corehost import CoreHost, SimulatedHost
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles
from toolkit.parsers.setspn import parse_setspn_result

CONFIG = "C/Windows/System32/inetsrv/config"
GERMAN = "Registrierte Dienstprinzipalnamen (SPN) f\u00fcr CN=WEB05,OU=Webserver,DC=corp,DC=beispiel,DC=de:\\n\tHTTP/web05"


def _host(tmp_path: Path, pools: str, defaults: str = "") -> SimulatedHost:
    root = tmp_path / "files"
    (root / CONFIG).mkdir(parents=True)
    (root / CONFIG / "applicationHost.config").write_text(
        f"<configuration><system.applicationHost><applicationPools>{defaults}{pools}</applicationPools>"
        "</system.applicationHost></configuration>", "utf-8")
    return SimulatedHost("WEB05", "2026-11-24T21:00:00Z", mounts=PresentedFiles(root, timedelta(0)).mounts(),
                         variables=dict(HOST_VARIABLES))


def _run(core_host: CoreHost, host: SimulatedHost, listings: list[str]) -> tuple[dict, list[str]]:
    answer = core_host.run("Test-Spn", host, {"Listings": listings})
    assert answer.error is None, answer.error
    envelope = validate_envelope(answer.outputs[0], collector=get_collector("Get-IisSpn"), host="web05")
    return envelope, json.loads(answer.outputs[1])["asked"]


def test_machine_and_specific_user_pools_each_account_once(core_host: CoreHost, tmp_path: Path) -> None:
    pools = ('<add name="Shop"><processModel identityType="SpecificUser" userName="CORP\\svc_web" /></add>'
             '<add name="Shop2"><processModel identityType="SpecificUser" userName="corp\\SVC_WEB" /></add>'
             '<add name="Default" />'
             '<add name="Net"><processModel identityType="NetworkService" /></add>')
    envelope, asked = _run(core_host, _host(tmp_path, pools), [f"WEB05|0|{GERMAN}"])
    assert asked == ["WEB05", "CORP\\svc_web"]  # the second spelling of the same account is not asked again
    queries = envelope["data"]["queries"]
    assert [(q["account"], q["source"]) for q in queries] == [("WEB05", "machine"), ("CORP\\svc_web", "app-pool:Shop"),
                                                               ("corp\\SVC_WEB", "app-pool:Shop2")]
    assert envelope["data"]["machine_account"] == "WEB05$"
    # localized output arrives as printed, and the controller's structural parser reads it
    machine = queries[0]
    assert "f\u00fcr CN=WEB05" in machine["output"]
    assert [r.spn for r in parse_setspn_result(machine["output"], "WEB05$").records] == ["HTTP/web05"]
    assert queries[1]["exit_code"] == 1


def test_pool_defaults_are_inherited(core_host: CoreHost, tmp_path: Path) -> None:
    defaults = ('<applicationPoolDefaults><processModel identityType="SpecificUser" userName="CORP\\svc_pool" />'
                '</applicationPoolDefaults>')
    pools = '<add name="A" /><add name="B"><processModel identityType="ApplicationPoolIdentity" /></add>'
    envelope, asked = _run(core_host, _host(tmp_path, pools, defaults), [])
    assert asked == ["WEB05", "CORP\\svc_pool"]
    assert [q["source"] for q in envelope["data"]["queries"]] == ["machine", "app-pool:A"]


def test_a_setspn_that_cannot_start_is_an_error_for_that_account(core_host: CoreHost, tmp_path: Path) -> None:
    envelope, _ = _run(core_host, _host(tmp_path, ""), ["WEB05|FAIL|"])
    assert envelope["data"]["queries"] == []
    assert [(e["probe"], e["target"]) for e in envelope["errors"]] == [("setspn", "WEB05")]
