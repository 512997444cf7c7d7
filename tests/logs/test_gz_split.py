"""Multi-member .gz logs split across processes at member boundaries (toolkit/logs/gzsplit.py): every count,
sample and line number equals the one-process read, including a handshake whose 401 and success lie in
different members (and different processes), members that end mid-line (bgzip style), a #Fields change
between ranges, and a boundary guess that is not a member start."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest

from toolkit.logs import LogAnalyzer
from toolkit.logs import analysis as analysis_module
from toolkit.logs import gzsplit
from toolkit.logs.synth import write_log as synth_log


def _members(text: bytes, cuts: list[int]) -> bytes:
    """``text`` as one gzip member per piece between ``cuts`` (uncompressed offsets)."""
    bounds = [0, *cuts, len(text)]
    return b"".join(gzip.compress(text[a:b], mtime=0) for a, b in zip(bounds, bounds[1:]) if b > a)


def _analyse(path: Path, workers: int) -> dict:
    analyzer = LogAnalyzer(workers=workers)
    analyzer.feed_path(path)
    return analyzer.result().to_dict()


def _splits(path: Path, parts: int) -> list[int]:
    with open(path, "rb", buffering=0) as handle:
        return gzsplit.member_splits(handle.fileno(), os.path.getsize(path), parts)


@pytest.fixture(autouse=True)
def _split_small_files(monkeypatch) -> None:
    monkeypatch.setattr(analysis_module, "PARALLEL_MIN_GZ_BYTES", 1)


@pytest.fixture(scope="module")
def synth_text() -> tuple[bytes, object]:
    out = io.BytesIO()
    truth = synth_log(out, lines=24000, seed=17, failure_boost=4.0, layout_changes=(0.35, 0.7), malformed_every=509)
    return out.getvalue(), truth


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "W3SVC1" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("style", ["bgzip-64k", "hourly-lines"])
def test_split_equals_one_process(tmp_path: Path, synth_text, style: str) -> None:
    text, truth = synth_text
    if style == "bgzip-64k":  # members cut every 64 KiB, wherever that falls in a line
        cuts = list(range(65536, len(text), 65536))
    else:  # members end at line ends, a few per file
        cuts = [text.index(b"\n", len(text) * k // 7) + 1 for k in range(1, 7)]
    path = _write(tmp_path, "u_ex261124.log.gz", _members(text, cuts))
    one = _analyse(path, 1)
    assert one["status_401"]["terminal"] == truth.terminal and one["status_401"]["handshake"] == truth.handshake
    for workers in (2, 3, 4):
        assert len(_splits(path, workers)) == workers, "the file really is split"
        assert _analyse(path, workers) == one, workers


def test_a_handshake_across_the_split_point(tmp_path: Path, header, row) -> None:
    """The 401 ends one member, its success starts the next; the split lands exactly there (and, in the
    second file, inside the success line, as bgzip would cut)."""
    def filler(clock: str) -> str:
        return "".join(row(clock, "200 0 0", ip=f"10.1.{i // 250}.{i % 250 + 1}", stem=f"/f{i}") for i in range(3000))

    challenge, success = row("10:00:02", "401 2 5", ip="10.9.9.9"), row("10:00:03", "200 0 0", ip="10.9.9.9")
    denied = row("10:00:01", "401 1 1326", ip="10.7.7.7")  # a real failure stays terminal
    # times only go forward, as IIS writes them (the time range is read from the first and last lines)
    before = header + filler("10:00:01") + denied + challenge
    text = (before + success + filler("10:00:04")).encode()
    at = len(before.encode())
    for name, cut in (("u_ex261124.log.gz", at), ("u_ex261125.log.gz", at + 20)):
        path = _write(tmp_path, name, _members(text, [cut]))
        assert _splits(path, 2) == [0, len(gzip.compress(text[:cut], mtime=0))], "split at the member boundary"
        one, two = _analyse(path, 1), _analyse(path, 2)
        assert two == one
        assert (two["status_401"]["handshake"], two["status_401"]["terminal"]) == (1, 1), name


def test_a_single_member_file_is_not_split(tmp_path: Path, synth_text) -> None:
    text, _truth = synth_text
    path = _write(tmp_path, "u_ex261124.log.gz", gzip.compress(text, mtime=0))
    assert _splits(path, 4) == [0]
    assert _analyse(path, 4) == _analyse(path, 1)


def test_a_wrong_boundary_guess_falls_back_to_one_process(tmp_path: Path, synth_text, monkeypatch) -> None:
    """A guess inside a member (what a stray 1f 8b 08 in deflate data would give) is caught by the range
    before it, which ends no member there: the file is read whole, same result."""
    text, _truth = synth_text
    cuts = [len(text) * k // 8 for k in range(1, 8)]
    path = _write(tmp_path, "u_ex261124.log.gz", _members(text, cuts))
    expected = _analyse(path, 1)
    real = _splits(path, 3)
    assert len(real) == 3
    monkeypatch.setattr(analysis_module, "member_splits", lambda fd, size, parts: [0, real[1] + 7, real[2]])
    assert _analyse(path, 3) == expected
