"""The controller's side of the raw-artefact transfer, fed recorded chunk streams (tests/fixtures/artefacts/
<case>/stream.jsonl, with what must land on disk in expected.json): files written as they arrive, verified
per chunk and whole, refused and named on a mismatch, resumable from a cut at any part."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from streams import FIXTURES, sample_files, stream

from toolkit.artefacts import ArtefactReceiver, have_from_disk, have_lines, read_index
from toolkit.artefacts.receive import local_name

CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "stream.jsonl").is_file())


def _receive(folder: Path, lines: list[str]) -> ArtefactReceiver:
    receiver = ArtefactReceiver(folder, host="web01")
    for line in lines:
        receiver.feed(line)
    receiver.finish()
    return receiver


def _on_disk(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and p.name != "index.json"
            and not p.name.endswith((".partial", ".partial.json", ".refused"))}


@pytest.mark.parametrize("case", CASES)
def test_recorded_stream_lands_as_expected(case: str, tmp_path: Path) -> None:
    lines = (FIXTURES / case / "stream.jsonl").read_text(encoding="utf-8").splitlines()
    expected = json.loads((FIXTURES / case / "expected.json").read_text(encoding="utf-8"))
    receiver = _receive(tmp_path, lines)
    assert _on_disk(tmp_path) == expected["files"]
    assert [r["host_path"] for r in receiver.refused] == expected["refused"]
    assert [e["target"] for e in receiver.errors if e["probe"] == "integrity"] == expected["refused"]
    index = read_index(tmp_path)
    for path, digest in expected["files"].items():
        assert index[path]["status"] == "complete"
        assert index[path]["sha256"] == index[path]["controller_sha256"] == digest
        assert index[path]["owner"] == "BUILTIN\\Administrators"
    for host_path in expected["refused"]:
        [record] = [r for r in index.values() if r["host_path"] == host_path]
        assert record["status"] == "refused" and "sha256" in record["reason"]
        assert (tmp_path / (record["path"] + ".refused")).is_file()  # kept aside, not in place


def test_evidence_keeps_headers_and_summary_never_chunk_contents(tmp_path: Path) -> None:
    lines = (FIXTURES / "complete" / "stream.jsonl").read_text(encoding="utf-8").splitlines()
    receiver = ArtefactReceiver(tmp_path, host="web01")
    for line in lines:
        receiver.feed(line)
    kept = receiver.finish()
    assert len(kept) < len("\n".join(lines)) / 10
    parts = [json.loads(line) for line in kept.splitlines()]
    assert [p["part"]["index"] for p in parts] == list(range(len(lines)))
    assert all(p["data"]["chunks"] == [] for p in parts if "chunks" in p["data"])
    assert sum(len(p["data"].get("artefacts", [])) for p in parts) == 4
    assert parts[-1]["data"]["summary"]["files"] == 4


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7, 9])
def test_a_stream_cut_anywhere_resumes_to_the_same_bytes(cut: int, tmp_path: Path) -> None:
    """Cut after ``cut`` parts (a dropped connection), resume with what is on disk as Have: only the
    missing chunks travel, and the files equal an uninterrupted transfer's."""
    files = sample_files()
    whole = tmp_path / "whole"
    _receive(whole, stream(files))
    resumed = tmp_path / "resumed"
    first = stream(files)
    _receive(resumed, first[:cut])
    have = {item["path"]: item["received"] for item in have_from_disk(resumed)}
    second = stream(files, have=have)
    receiver = _receive(resumed, second)
    assert _on_disk(resumed) == _on_disk(whole)
    assert not list(resumed.rglob("*.partial*"))
    resent = receiver.bytes_written
    total = sum(len(content) for _kind, _path, content in files)
    assert resent <= total - sum(have.values()) + 65536  # at most one chunk sent again (rounded down)
    assert read_index(resumed) == read_index(whole)


def test_partial_state_never_claims_more_than_is_on_disk(tmp_path: Path) -> None:
    lines = stream(sample_files())
    _receive(tmp_path, lines[:3])  # header + two chunks of the w3c log
    [state_path] = list(tmp_path.rglob("*.partial.json"))
    data = state_path.with_name(state_path.name[:-5])
    with open(data, "r+b") as handle:  # a killed process lost the tail of its last write
        handle.truncate(65536 + 100)
    [item] = have_from_disk(tmp_path)
    assert item["received"] == 65536 + 100
    have = {item["path"]: item["received"]}
    _receive(tmp_path, stream(sample_files(), have=have))
    assert _on_disk(tmp_path) == json.loads((FIXTURES / "complete" / "expected.json").read_text())["files"]


def test_a_resume_the_controller_cannot_back_is_refused_not_glued(tmp_path: Path) -> None:
    """The host offers to resume at a byte the controller does not hold (its partial file was removed):
    the file is refused, never assembled from a gap."""
    files = sample_files()
    lines = stream(files, have={files[0][1]: 3 * 65536})
    receiver = _receive(tmp_path, lines)
    assert [r["host_path"] for r in receiver.refused] == [files[0][1]]
    assert "does not hold" in receiver.refused[0]["reason"]


def test_a_whole_file_hash_that_differs_from_the_header_is_refused(tmp_path: Path) -> None:
    lines = stream(sample_files())
    header_part = json.loads(lines[0])
    header_part["data"]["artefacts"][0]["sha256"] = "0" * 64  # every chunk is fine, the file is not the host's
    lines[0] = json.dumps(header_part)
    receiver = _receive(tmp_path, lines)
    assert "differs from the host's" in receiver.refused[0]["reason"]
    assert len(_on_disk(tmp_path)) == 3


@pytest.mark.parametrize("host_path", ["..\\..\\..\\etc\\passwd", "C:\\a\\..\\..\\b", "/abs/path", ".hidden"])
def test_host_paths_cannot_leave_the_artefacts_folder(host_path: str, tmp_path: Path) -> None:
    name = local_name("config", host_path)
    target = (tmp_path / name).resolve()
    assert target.is_relative_to(tmp_path.resolve())
    assert not any(part in ("..", ".") or part.startswith(".") for part in name.split("/"))


def test_hostile_parts_become_errors_not_crashes(tmp_path: Path) -> None:
    lines = stream(sample_files())
    chunk = json.loads(lines[1])
    chunk["data"]["chunks"][0]["file_id"] = "f99"
    garbage = [lines[0], json.dumps(chunk), "not json", json.dumps({"part": {}, "data": {"artefacts": [{"x": 1}]}}),
               json.dumps({"part": {}, "data": {"chunks": [None]}}), "x" * (17 * 1024 * 1024 * 4 // 3 + 2 * 1024 * 1024)]
    receiver = _receive(tmp_path, garbage)
    messages = " | ".join(e["message"] for e in receiver.errors)
    assert "had no header" in messages and "without file_id" in messages and "over the" in messages
    assert "file header without" in messages


def test_a_stream_with_nothing_left_to_send_still_has_the_collectors_shape(tmp_path: Path) -> None:
    """Every file already collected: no chunk part at all; the kept parts still merge into headers, an
    empty chunk list and the summary."""
    files = sample_files()
    _receive(tmp_path, stream(files))
    have = {item["path"]: item["received"] for item in have_from_disk(tmp_path)}
    assert len(have) == 4 and all(have[path] == len(content) for _kind, path, content in files)
    receiver = ArtefactReceiver(tmp_path, host="web01")
    for line in stream(files, have=have):
        receiver.feed(line)
    parts = [json.loads(line) for line in receiver.finish().splitlines()]
    assert parts[0]["data"]["chunks"] == [] and receiver.bytes_written == 0
    assert [h["status"] for p in parts for h in p["data"].get("artefacts", [])] == ["already-collected"] * 4
    lines = {line.split("\t")[3]: line.split("\t")[:3] for line in have_lines(have_from_disk(tmp_path))}
    kind, path, content = files[0]
    assert lines[path] == [hashlib.sha256(content).hexdigest(), str(len(content)), str(len(content))]
