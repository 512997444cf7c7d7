"""Get-IisFailedRequestTrace's C# core (IisFleet.Target.FrebCollector) under Mono: only the head of a trace
is read to match it, the request's time comes from its first SystemTime (not LastWriteTime), matching
traces are returned whole and newest first, and the caps leave traces out whole."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from toolkit.collectors import get_collector
from toolkit.contract import decode_blob, validate_envelope
from toolkit.lab.model.coreanswers import with_defaults
from toolkit.lab.model.presented import HOST_VARIABLES, PresentedFiles
from toolkit.lab.model.corehost import CoreHost, SimulatedHost

CONFIG = "C/Windows/System32/inetsrv/config"
TRACES = "C/inetpub/logs/FailedReqLogFiles"
NOW = "2026-11-24T21:00:00Z"


def _trace(status: str, when: str, padding: int = 0) -> bytes:
    events = "".join(f'<Event><System><TimeCreated SystemTime="{when}.{n:03d}Z"/></System><EventData>'
                     f'<Data Name="n">{"x" * 200}</Data></EventData></Event>\n' for n in range(padding))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<failedRequest url="http://shop/" siteId="1" statusCode="{status}" '
            f'triggerStatusCode="{status}">\n<Event><System><TimeCreated SystemTime="{when}.000Z"/></System></Event>\n'
            f"{events}</failedRequest>\n").encode("utf-8")


def _fleet(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / CONFIG).mkdir(parents=True)
    (root / CONFIG / "applicationHost.config").write_text(
        '<configuration><system.applicationHost><sites><site name="Shop" id="1" /></sites></system.applicationHost>'
        "</configuration>")
    site = root / TRACES / "W3SVC1"
    site.mkdir(parents=True)
    (site / "fr000001.xml").write_bytes(_trace("401.2", "2026-11-24T20:00:00", padding=400))  # about 100 KB
    (site / "fr000002.xml").write_bytes(_trace("500.19", "2026-11-24T20:30:00", padding=400))
    (site / "fr000003.xml").write_bytes(_trace("401.3", "2026-11-20T08:00:00"))  # an old request
    (site / "fr000004.xml").write_bytes(_trace("401.1", "2026-11-24T20:45:00"))
    (site / "notes.txt").write_text("not a trace")
    # LastWriteTime says nothing: the old request's file was touched just now, the newest one long ago.
    os.utime(site / "fr000003.xml", (1_800_000_000, 1_800_000_000))
    os.utime(site / "fr000004.xml", (1_600_000_000, 1_600_000_000))
    return root


def _collect(core_host: CoreHost, root: Path, collector: str = "Get-IisFailedRequestTrace",
             **parameters: object) -> list[str]:
    freb = get_collector("Get-IisFailedRequestTrace")
    host = SimulatedHost("WEB01", NOW, mounts=PresentedFiles(root, timedelta(0)).mounts(), variables=dict(HOST_VARIABLES))
    answer = core_host.run(collector, host, with_defaults(freb, freb.bind(parameters)))
    assert answer.error is None, answer.error
    validate_envelope(answer.outputs[0], collector=freb, host="web01")
    return answer.outputs


def test_matching_traces_newest_first_by_request_time_and_whole(core_host: CoreHost, tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    [text] = _collect(core_host, root)
    data = json.loads(text)["data"]
    # the site's own folder, then the default one (which holds it again: each file is listed once)
    assert data["directories"] == ["C:\\inetpub\\logs\\FailedReqLogFiles\\W3SVC1", "C:\\inetpub\\logs\\FailedReqLogFiles"]
    files = data["files"]
    assert [f["path"].rsplit("\\", 1)[1] for f in files] == ["fr000004.xml", "fr000001.xml"]
    assert [f["modified_utc"] for f in files] == ["2026-11-24T20:45:00Z", "2026-11-24T20:00:00Z"]
    assert all(f["site_id"] == 1 for f in files)
    big = root / TRACES / "W3SVC1" / "fr000001.xml"
    assert decode_blob(files[1]["content"]) == big.read_bytes() and files[1]["size_bytes"] == big.stat().st_size


def test_only_the_head_of_a_trace_that_does_not_match_is_read(core_host: CoreHost, tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    envelope, counts = _collect(core_host, root, "Test-FrebReadCounts")
    read = {path.rsplit("\\", 1)[1]: n for path, n in json.loads(counts).items()}
    size = (root / TRACES / "W3SVC1" / "fr000002.xml").stat().st_size
    assert size > 64 * 1024 and read["fr000002.xml"] <= 16 * 1024  # a 500: its head only
    assert read["fr000001.xml"] > size - 1024  # the matching 401 is returned whole
    assert "notes.txt" not in read


def test_caps_leave_traces_out_whole(core_host: CoreHost, tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    [text] = _collect(core_host, root, MaxBytes=5000)
    envelope = json.loads(text)
    assert [f["path"].rsplit("\\", 1)[1] for f in envelope["data"]["files"]] == ["fr000004.xml"]
    assert any(e["category"] == "cap" for e in envelope["errors"])
    [one] = _collect(core_host, root, MaxFiles=1)
    assert len(json.loads(one)["data"]["files"]) == 1
    assert [e["probe"] for e in json.loads(one)["errors"]] == ["max-files"]


def test_since_and_status_code(core_host: CoreHost, tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    [old] = _collect(core_host, root, Since="2026-11-19T00:00:00Z")
    assert len(json.loads(old)["data"]["files"]) == 3
    [errors] = _collect(core_host, root, StatusCode=500)
    assert [f["path"].rsplit("\\", 1)[1] for f in json.loads(errors)["data"]["files"]] == ["fr000002.xml"]
