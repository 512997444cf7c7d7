"""Edges of the fast engine: buffer and range boundaries, clients with many open 401s, the two resolvers,
lazily numbered samples and the block-wise field-count proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.logs import LogAnalyzer
from toolkit.logs import analysis as analysis_module
from toolkit.logs import engine as engine_module
from toolkit.logs.synth import write_log as synth_log



def _counts(result) -> tuple[int, int, int]:
    return result.status_401_total, result.status_401_handshake, result.status_401_terminal


def _filler(row, n: int, clock: str = "10:00:01") -> str:
    """``n`` successful requests from other clients (enough bytes to push a success out of the short
    look-ahead when ``n`` is large)."""
    return "".join(row(clock, "200 0 0", ip=f"10.1.{i // 250}.{i % 250 + 1}", stem=f"/f{i}")
                   for i in range(n))


def _analyse(path: Path, **options) -> object:
    analyzer = LogAnalyzer(workers=options.pop("workers", 1), **options)
    analyzer.feed_path(path)
    return analyzer.result()


def test_success_just_past_a_buffer_boundary(tmp_path: Path, monkeypatch, header, row) -> None:
    before = header + _filler(row, 20)
    challenge = row("10:00:02", "401 2 5")
    success = row("10:00:02", "200 0 0")
    path = tmp_path / "u_ex261124.log"
    path.write_text(before + challenge + success + _filler(row, 5, "10:00:03"))
    boundary = len(before) + len(challenge)
    # Buffers that end before, exactly at, inside and just after the resolving line.
    for cut in (boundary - 7, boundary - 1, boundary, boundary + 1, boundary + len(success) // 2,
                boundary + len(success)):
        monkeypatch.setattr(analysis_module, "CHUNK_BYTES", cut)
        assert _counts(_analyse(path)) == (1, 1, 0), cut


def test_success_at_the_start_of_the_next_process_range(tmp_path: Path, monkeypatch, header, row) -> None:
    monkeypatch.setattr(analysis_module, "PARALLEL_MIN_BYTES", 1)
    before = header + _filler(row, 40)
    challenge = row("10:00:02", "401 2 5")
    success = row("10:00:02", "200 0 0")
    # Pad after the pair until the midpoint (where the second range starts) falls inside the 401 line:
    # the second range then begins with the resolving line.
    for extra in range(200):
        text = before + challenge + success + _filler(row, extra, "10:00:03")
        if len(before) < len(text) // 2 <= len(before) + len(challenge) - 1:
            break
    else:  # pragma: no cover - the arithmetic above always finds one
        pytest.fail("no padding puts the midpoint inside the 401 line")
    path = tmp_path / "u_ex261124.log"
    path.write_text(text)
    assert _counts(_analyse(path, workers=2)) == (1, 1, 0)
    assert _counts(_analyse(path, workers=1)) == (1, 1, 0)


def test_window_edge_after_a_long_gap(tmp_path: Path, header, row) -> None:
    """The success is beyond the short look-ahead, so the windowed search decides; 30 s is still in."""
    gap = _filler(row, 400, "10:00:10")  # ~50 KB of other clients
    for clock, expected in (("10:00:30", (1, 1, 0)), ("10:00:31", (1, 0, 1))):
        path = tmp_path / f"u_ex{clock.replace(':', '')}.log"
        path.write_text(header + row("10:00:00", "401 2 5") + gap + row(clock, "200 0 0"))
        assert _counts(_analyse(path)) == expected, clock


def test_client_with_many_open_401s(tmp_path: Path, header, row) -> None:
    """One client, many open 401s on two stems; one late success on /a settles only its own stem."""
    lines = [row("10:00:00", "401 2 5", stem="/a")]                 # 31 s before the success: terminal
    for second in range(5, 25):
        lines.append(row(f"10:00:{second:02d}", "401 2 5", stem="/a"))  # handshakes
        lines.append(row(f"10:00:{second:02d}", "401 1 2148074252", stem="/b"))  # never succeeds: terminal
        lines.append(_filler(row, 40, f"10:00:{second:02d}"))
    lines.append(row("10:00:31", "200 0 0", stem="/a"))
    path = tmp_path / "u_ex261124.log"
    path.write_text(header + "".join(lines))
    result = _analyse(path)
    assert _counts(result) == (41, 20, 21)
    by_stem = {uri: n for uri, n in result.top_uris}
    assert by_stem == {"/a": 1, "/b": 20}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("gen") / "W3SVC1" / "u_ex261124.log"
    path.parent.mkdir()
    truth = synth_log(path, lines=30000, seed=9, failure_boost=4.0, layout_changes=(0.4,),
                      malformed_every=611)
    return path, truth


RESOLVERS = ["find", "regex", "multi"]


def _use_resolver(monkeypatch, resolver: str) -> None:
    """Force one way of searching the open 401s' windows (see Scanner._resolve)."""
    if resolver == "multi":  # the optional Aho-Corasick pass, whenever two or more clients are open
        pytest.importorskip("ahocorasick_rs")
        monkeypatch.setattr(engine_module, "FIND_BYTES_PER_S", 1.0)
        return
    monkeypatch.setattr(engine_module, "_MultiSearch", None)
    if resolver == "regex":  # one regular expression for every buffer's open clients
        monkeypatch.setattr(engine_module, "BATCH_MIN_CLIENTS", 0)
        monkeypatch.setattr(engine_module, "BATCH_RATIO", 0.0)
    else:  # one find per client, always
        monkeypatch.setattr(engine_module, "BATCH_MIN_CLIENTS", 10**9)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_every_resolver_gives_the_truth(generated, monkeypatch, resolver: str) -> None:
    path, truth = generated
    _use_resolver(monkeypatch, resolver)
    monkeypatch.setattr(analysis_module, "CHUNK_BYTES", 512 * 1024)
    result = _analyse(path)
    assert (result.status_401_total, result.status_401_terminal, result.status_401_handshake) == (
        truth.status_401, truth.terminal, truth.handshake)
    assert result.lines_malformed == truth.malformed and result.requests == truth.requests
    assert result.top_uris and all(truth.terminal_uris[uri] == n for uri, n in result.top_uris)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_every_resolver_keeps_clients_and_stems_apart(tmp_path: Path, monkeypatch, header, row,
                                                      resolver: str) -> None:
    _use_resolver(monkeypatch, resolver)
    lines = [row("10:00:00", "401 2 5", ip="10.0.0.1", ua="curl/8")]      # a prefix of another agent
    lines.append(row("10:00:00", "401 2 5", ip="10.0.0.1", ua="curl/8.4.0"))
    lines.append(row("10:00:00", "401 2 5", ip="10.0.0.11", stem="/x"))   # a longer address
    lines.append(row("10:00:00", "401 2 5", ip="10.0.0.2", stem="/y"))
    lines.append(_filler(row, 400, "10:00:05"))
    lines.append(row("10:00:20", "200 0 0", ip="10.0.0.1", ua="curl/8.4.0"))
    lines.append(row("10:00:20", "200 0 0", ip="10.0.0.1", stem="/x"))
    lines.append(row("10:00:21", "200 0 0", ip="10.0.0.2", stem="/y"))
    path = tmp_path / "u_ex261124.log"
    path.write_text(header + "".join(lines))
    result = _analyse(path)
    assert _counts(result) == (4, 2, 2)
    assert sorted(c for c, _n in result.top_clients) == ["10.0.0.1", "10.0.0.11"]


def test_samples_and_malformed_lines_point_at_the_right_lines(generated, monkeypatch) -> None:
    path, truth = generated
    # Small buffers and proof blocks: many carried 401s, many blocks halved around the cut-short lines.
    monkeypatch.setattr(analysis_module, "CHUNK_BYTES", 256 * 1024)
    monkeypatch.setattr(engine_module, "PROOF_BLOCK", 8 * 1024)
    result = _analyse(path)
    lines = path.read_bytes().split(b"\n")
    assert result.lines_malformed == truth.malformed
    for _source, number, reason in result.malformed:
        fields = lines[number - 1].rstrip(b"\r").split(b" ")
        assert reason.startswith(f"{len(fields)} fields"), (number, reason)
    samples = [s for g in result.groups for s in g.samples]
    assert samples
    for sample in samples:
        fields = lines[sample.line - 1].decode().split(" ")
        assert "401" in fields and sample.c_ip in fields and sample.uri in fields, sample


def test_process_counts_agree_with_small_buffers(generated, monkeypatch) -> None:
    path, _truth = generated
    monkeypatch.setattr(analysis_module, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(analysis_module, "CHUNK_BYTES", 128 * 1024)
    docs = [_analyse(path, workers=n).to_dict() for n in (1, 2)]
    assert docs[0] == docs[1]
