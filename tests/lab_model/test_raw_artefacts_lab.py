"""The lab answers Get-IisRawArtefact through the real core under Mono (toolkit/lab/targethost/RawArtefactEntry.cs):
the fleet's files under their Windows paths, the event logs "exported" as real .evtx files holding the host
model's events of the window, the host's secedit export, and a log the account may not read refused per log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from toolkit.contract import decode_blob
from toolkit.lab.model import LabFleet, ModelBackend
from toolkit.lab.model.catalog import BundledCollector
from toolkit.lab.model.fleet import read_events


def _files(answer_outputs: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, bytes], list[dict[str, Any]]]:
    headers: dict[str, dict[str, Any]] = {}
    contents: dict[str, bytearray] = {}
    errors: list[dict[str, Any]] = []
    for text in answer_outputs:
        part = json.loads(text)
        errors += part["errors"]
        for header in part["data"].get("artefacts", []):
            headers[header["host_path"]] = header
            contents[header["file_id"]] = bytearray()
        for chunk in part["data"].get("chunks", []):
            contents[chunk["file_id"]] += decode_blob(chunk["content"])
    return headers, {path: bytes(contents[h["file_id"]]) for path, h in headers.items()}, errors


def test_raw_artefacts_of_a_lab_host(seed_fleet: LabFleet, bundled: dict[str, BundledCollector], tmp_path: Path) -> None:
    evtx = pytest.importorskip("evtx", reason="the evtx package did not install (pip install 'iisfleet[evtx]')")
    backend = seed_fleet.backend("web01")
    since = backend.now() - dt.timedelta(days=7)
    answer = backend.answer(bundled["Get-IisRawArtefact"].script,
                            {"Since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "ChunkBytes": 65536})
    assert answer.error is None, answer.error
    headers, contents, errors = _files(answer.output)
    for path, header in headers.items():  # every file arrived whole and matches the hash taken on the host
        assert hashlib.sha256(contents[path]).hexdigest() == header["sha256"], path
    apphost = headers["C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"]
    local = backend.host.files_root / "C/Windows/System32/inetsrv/config/applicationHost.config"
    assert contents[apphost["host_path"]] == local.read_bytes() and apphost["owner"]
    assert {h["kind"] for h in headers.values()} >= {"config", "webconfig", "w3c", "evtx", "secedit"}
    assert contents["secedit:/export"] == (backend.host.directory / "secedit.inf").read_bytes()
    # the Security export is a real .evtx with exactly the model's Security events of the window
    target = tmp_path / "Security.evtx"
    target.write_bytes(contents["EventLog:Security"])
    exported = sorted(int(json.loads(r["data"])["Event"]["System"]["EventID"])
                      for r in evtx.PyEvtxParser(str(target)).records_json())
    expected = sorted(e["id"] for e in read_events(backend.host) if e["log"] == "Security"
                      and since <= backend._shifted(e["_time"]) <= backend.now())
    assert exported == expected and exported
    assert not [e for e in errors if e["category"] not in ("not-found",)], errors


def test_a_log_the_account_may_not_read_is_refused_per_log(seed_fleet: LabFleet,
                                                           bundled: dict[str, BundledCollector]) -> None:
    web01 = seed_fleet.backend("web01")
    # host.yml's `readable: false` for the Security log (an account outside Event Log Readers)
    logs = tuple(dataclasses.replace(log, readable=log.name != "Security") for log in web01.host.event_logs)
    backend = ModelBackend(dataclasses.replace(web01.host, event_logs=logs), web01.fleet, bundled, clock=web01._clock)
    answer = backend.answer(bundled["Get-IisRawArtefact"].script, {"Kinds": ["evtx"], "ChunkBytes": 65536})
    headers, _, errors = _files(answer.output)
    assert "EventLog:Security" not in headers and {"EventLog:System", "EventLog:Application"} <= set(headers)
    assert [(e["target"], e["category"]) for e in errors] == [("EventLog:Security", "access-denied")]
