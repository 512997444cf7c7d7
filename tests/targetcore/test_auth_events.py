"""Get-AuthEventLog's C# core (IisFleet.Target.AuthEventCollector) under Mono with an IEventSource double:
events as fields, caps, 4624 counts, and a read error that keeps everything read before it."""

from __future__ import annotations

import json

from toolkit.collectors import get_collector
from toolkit.contract import validate_envelope
from toolkit.lab.model.coreanswers import with_defaults
from toolkit.lab.model.corehost import CoreHost, SimulatedHost

HOST = SimulatedHost("WEB01", "2026-11-24T21:00:00Z", mounts=[])


def _failure(n: int) -> str:
    return (f"Security|4625|Microsoft-Windows-Security-Auditing|2026-11-24T20:{n:02d}:00Z|{1000 + n}|web01.corp|"
            f"TargetUserName=IUSR;Status=0xc000006d;SubStatus=0xc000006a;LogonType=8")


def _logon(n: int, logon_type: int) -> str:
    return f"Security|4624|Microsoft-Windows-Security-Auditing|2026-11-24T19:{n % 60:02d}:00Z|{5000 + n}|web01.corp|LogonType={logon_type}"


def _collect(core_host: CoreHost, events: list[str], **parameters: object) -> dict:
    collector = get_collector("Get-AuthEventLog")
    bound = with_defaults(collector, collector.bind({k: v for k, v in parameters.items()
                                                     if k in ("Since", "Until", "MaxEvents", "MaxLogonCount")}))
    bound.update({"Events": events, **{k: v for k, v in parameters.items() if k in ("FailAfter", "DenyLogState")}})
    answer = core_host.run("Test-AuthEvents", HOST, bound)
    assert answer.error is None, answer.error
    return validate_envelope(answer.outputs[0], collector=collector, host="web01")


def test_events_are_fields_and_logons_are_counted_per_type(core_host: CoreHost) -> None:
    kerberos = "System|4|Microsoft-Windows-Security-Kerberos|2026-11-24T20:30:00Z|77|web01.corp|Server=HTTP/web01;Data0=x"
    events = [_failure(n) for n in range(3)] + [_logon(n, 3) for n in range(40)] + [_logon(n, 8) for n in range(5)] + [kerberos]
    envelope = _collect(core_host, events)
    data = envelope["data"]
    assert [(e["log"], e["id"]) for e in data["events"]] == [("Security", 4625)] * 3 + [("System", 4)]
    assert data["events"][0]["data"] == {"TargetUserName": "IUSR", "Status": "0xc000006d", "SubStatus": "0xc000006a",
                                         "LogonType": "8"}
    assert data["events"][0]["time_utc"] == "2026-11-24T20:00:00Z" and data["events"][0]["record_id"] == 1000
    assert data["logon_counts"] == {"4624_type3": 40, "4624_type8": 5}
    assert [log["name"] for log in data["logs"]] == ["Security", "System"] and data["crash_on_audit_fail"] == 0
    assert envelope["errors"] == []


def test_caps_say_so(core_host: CoreHost) -> None:
    envelope = _collect(core_host, [_failure(n) for n in range(5)] + [_logon(n, 3) for n in range(30)],
                        MaxEvents=2, MaxLogonCount=10)
    assert len(envelope["data"]["events"]) == 2
    assert envelope["data"]["logon_counts"]["4624_type3"] == 10
    assert sorted(e["probe"] for e in envelope["errors"] if e["category"] == "cap") == ["logon-counts", "security-events"]


def test_a_read_error_keeps_what_was_read(core_host: CoreHost) -> None:
    envelope = _collect(core_host, [_failure(n) for n in range(5)] + [_logon(n, 3) for n in range(30)], FailAfter=3,
                        DenyLogState=True)
    data = envelope["data"]
    assert len(data["events"]) == 3  # the three read before the error are kept
    assert data["logon_counts"]["4624_type3"] == 3  # a lower bound, said so
    by_probe = {e["probe"]: e for e in envelope["errors"]}
    assert by_probe["security-events"]["category"] == "access-denied"
    assert "3 events read before the error are kept" in by_probe["security-events"]["message"]
    assert "lower bound" in by_probe["logon-counts"]["message"]
    assert by_probe["log-state"]["category"] == "access-denied" and [l["name"] for l in data["logs"]] == ["System"]
    assert json.dumps(envelope)
