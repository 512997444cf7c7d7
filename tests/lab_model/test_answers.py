"""Each simulated host answers every bundled collector per docs/contracts.md, and nothing else."""

from __future__ import annotations

import importlib
import base64
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from toolkit.contract import merge_parts
from toolkit.lab.model import LabFleet, ModelBackend, load_fleet
from toolkit.lab.model.catalog import BundledCollector, find_marker
from toolkit.lab.scenarios import generate


def envelope(backend: ModelBackend, collector: BundledCollector, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The envelope as the controller sees it: a streaming collector's parts merged (docs/contracts.md 1.4)."""
    answer = backend.answer(collector.script, params or {})
    assert answer.error is None, answer.error
    if len(answer.output) > 1:
        return merge_parts([json.loads(part) for part in answer.output])
    assert len(answer.output) == 1
    return json.loads(answer.output[0])


def unblob(blob: dict[str, Any]) -> bytes:
    raw = base64.b64decode(blob["content"])
    return gzip.decompress(raw) if blob["encoding"] == "gzip+base64" else raw


def test_the_lab_answers_every_bundled_collector_on_every_host(seed_fleet: LabFleet,
                                                               bundled: dict[str, BundledCollector]) -> None:
    contract = importlib.import_module("toolkit.contract")
    collectors = importlib.import_module("toolkit.collectors").load_catalog()
    assert set(bundled) <= ModelBackend.answerable(), "a bundled collector has no model in the lab"
    for spec, backend in seed_fleet.hosts:
        for cid, collector in bundled.items():
            answer = backend.answer(collector.script, {})
            assert answer.error is None, f"{spec.name} {cid}: {answer.error}"
            checked = contract.validate_envelope("\n".join(answer.output), collector=collectors[cid], host=spec.name)
            assert checked["collector"] == cid and checked["host"] == spec.name.upper()
            assert checked["errors"] == [], f"{spec.name} {cid}: {checked['errors']}"


def test_envelope_fields_and_host_clock(seed_fleet: LabFleet, bundled: dict[str, BundledCollector]) -> None:
    backend = seed_fleet.backend("web01")
    env = envelope(backend, bundled["Get-HostFact"])
    assert env["schema"] == "iisfleet.collector/1" and env["version"] == bundled["Get-HostFact"].version
    assert env["time_utc"] == "2026-11-26T08:30:00Z" == env["data"]["utc_now"]
    assert env["data"]["iis_installed"] is True and env["data"]["domain"] == "contoso.com"


def test_changed_unknown_and_unmarked_scripts_are_refused_loudly(seed_fleet: LabFleet,
                                                                 bundled: dict[str, BundledCollector]) -> None:
    backend = seed_fleet.backend("web01")
    original = bundled["Get-HostFact"].script
    assert backend.answer(original.replace("\n", "\r\n"), {}).error is None  # line endings do not matter
    # what Ansible's `raw` appends (Windows runs it after the script); anything else after it is a change
    assert backend.answer(original + "\r\nexit $LASTEXITCODE", {}).error is None
    assert "differs" in (backend.answer(original + "\nexit $LASTEXITCODE\nRemove-Item C:\\x", {}).error or "")
    changed = original.replace("$ErrorActionPreference = 'Stop'", "$ErrorActionPreference = 'Continue'", 1)
    assert changed != original
    for script, words in [
        (changed, ["unknown collector", "Get-HostFact", "differs"]),
        ("# collector-id: Get-Secrets/1\nGet-Content C:\\secrets.txt", ["unknown collector", "Get-Secrets"]),
        ("Get-ChildItem C:\\", ["unknown collector", "marker"]),
        ("# collector-id: _ssh_bootstrap/1\n", ["unknown collector", "SSH server"]),
        (original.replace("Get-HostFact/1", "Get-HostFact/9", 1), ["unknown collector", "Get-HostFact/9"]),
    ]:
        answer = backend.answer(script, {})
        assert answer.output == [] and answer.error is not None
        for word in words:
            assert word in answer.error


def test_parameters_are_bound_like_powershell_would(seed_fleet: LabFleet, bundled: dict[str, BundledCollector]) -> None:
    backend = seed_fleet.backend("web01")
    answer = backend.answer(bundled["Get-IisW3CLog"].script, {"MaxFiles": "many"})
    assert answer.error is not None and "MaxFiles" in answer.error
    answer = backend.answer(bundled["Get-IisW3CLog"].script, {"NoSuchParameter": 1})
    assert answer.error is not None and "NoSuchParameter" in answer.error


def test_time_shift_puts_the_traffic_inside_the_default_window(seed_fleet: LabFleet,
                                                               bundled: dict[str, BundledCollector]) -> None:
    backend = seed_fleet.backend("web01")
    assert backend.shift == dt.timedelta(hours=44, minutes=30)
    env = envelope(backend, bundled["Get-IisW3CLog"])
    files = env["data"]["files"]
    assert files, "no W3C file inside the default 24 h window"
    names = {f["path"].rsplit("\\", 1)[1] for f in files}
    assert names <= {"u_ex261125.log", "u_ex261126.log"}, names  # re-filed under the days they now fall on
    for item in files:
        day = item["path"][-10:-4]
        for line in unblob(item["excerpt"]).decode().splitlines():
            number, text = line.split("\t", 1)
            assert int(number) >= 1
            if not text.startswith("#"):
                assert text[2:10].replace("-", "") == day, (item["path"], text)
    assert sum(f["data_lines"] for f in files) > 100


def test_explicit_window_and_caps(seed_fleet: LabFleet, bundled: dict[str, BundledCollector]) -> None:
    backend = seed_fleet.backend("web01")
    w3c = bundled["Get-IisW3CLog"]
    everything = envelope(backend, w3c, {"Since": "2026-11-20T00:00:00Z", "Until": "2026-11-27T00:00:00Z"})
    empty = envelope(backend, w3c, {"Since": "2026-11-27T00:00:00Z"})
    assert empty["data"]["files"] == []
    capped = envelope(backend, w3c, {"Since": "2026-11-20T00:00:00Z", "MaxFiles": 1, "MaxLinesPerFile": 5})
    assert len(capped["data"]["files"]) == 1 < len(everything["data"]["files"])
    kept = unblob(capped["data"]["files"][0]["excerpt"]).decode().splitlines()
    assert len([line for line in kept if not line.split("\t", 1)[1].startswith("#")]) == 5
    assert capped["data"]["files"][0]["truncated"] and capped["data"]["files"][0]["lines_kept"] == len(kept)
    assert {e["category"] for e in capped["errors"]} == {"cap"}
    events = envelope(backend, bundled["Get-AuthEventLog"], {"Since": "2026-11-20T00:00:00Z", "MaxEvents": 1})
    assert len(events["data"]["events"]) <= 1


def test_collector_faults(tmp_path: Path, bundled: dict[str, BundledCollector], fixed_clock) -> None:
    contract = importlib.import_module("toolkit.contract")
    collectors = importlib.import_module("toolkit.collectors").load_catalog()
    faults = {"web01": ["slow_collector"], "web02": ["garbage_output"], "web03": ["truncated_output"],
              "web04": ["iis_not_installed"]}
    generate("healthy", 4, tmp_path, faults=faults)
    fleet = load_fleet(tmp_path, bundled=bundled, clock=fixed_clock)
    fact = bundled["Get-HostFact"]
    slow = fleet.backend("web01").answer(fact.script, {})
    assert slow.delay_s >= 60 and json.loads(slow.output[0])["collector"] == "Get-HostFact"
    for name in ("web02", "web03"):
        answer = fleet.backend(name).answer(fact.script, {})
        with pytest.raises(contract.ContractError if hasattr(contract, "ContractError") else Exception):
            contract.validate_envelope("\n".join(answer.output), collector=collectors["Get-HostFact"], host=name)
    bare = fleet.backend("web04")
    assert envelope(bare, fact)["data"]["iis_installed"] is False
    for cid in ("Get-IisConfig", "Get-IisW3CLog", "Get-IisFailedRequestTrace", "Get-IisContentAcl"):
        env = envelope(bare, bundled[cid])
        contract.validate_envelope(json.dumps(env), collector=collectors[cid], host="web04")
        assert "not-installed" in {e["category"] for e in env["errors"]}, cid


def test_unreadable_security_log_is_an_error_not_a_gap(tmp_path: Path, bundled: dict[str, BundledCollector]) -> None:
    (tmp_path / "hosts" / "web01").mkdir(parents=True)
    (tmp_path / "fleet.yml").write_text("domain: {name: contoso.com}\nhosts: [{name: web01, address: 127.77.0.11}]\n")
    (tmp_path / "hosts" / "web01" / "host.yml").write_text("event_logs: [{name: Security, readable: false}, {name: System}]\n")
    backend = load_fleet(tmp_path, bundled=bundled).backend("web01")
    env = envelope(backend, bundled["Get-AuthEventLog"])
    assert [e["category"] for e in env["errors"]] == ["access-denied"]
    assert env["data"]["events"] == []


def test_markers_of_bundled_collectors_match_their_ids(bundled: dict[str, BundledCollector]) -> None:
    for cid, collector in bundled.items():
        assert find_marker(collector.script) == (cid, collector.version)
