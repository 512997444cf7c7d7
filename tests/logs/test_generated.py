"""Generated logs whose truth the generator knows: the analysis must match it exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.logs import samples_dir
from toolkit.logs.synth import write_log, write_samples


def _groups(result) -> dict[str, list[int]]:
    merged: dict[str, list[int]] = {}
    for g in result.groups:
        entry = merged.setdefault(f"{g.site}|{g.substatus}|{g.win32}", [0, 0])
        entry[0] += g.count
        entry[1] += g.terminal
    return dict(sorted(merged.items()))


@pytest.mark.parametrize("name,options", [
    ("u_ex261124.log", {}),
    ("u_ex261124.log", {"malformed_every": 101, "crlf": True, "bom": True}),
    ("u_ex261124.log.gz", {"layout_changes": (0.1, 0.2, 0.3, 0.9)}),
    ("u_ex261124.log", {"lines_per_second": 4.0}),   # sparse log: windows span many buffers' worth of time
])
def test_counts_are_exact(tmp_path: Path, analyse, name: str, options: dict) -> None:
    path = tmp_path / "W3SVC1" / name
    path.parent.mkdir()
    truth = write_log(path, lines=20000, seed=3, failure_boost=3.0, **options)
    result = analyse(path)
    assert result.lines_total == truth.lines_total
    assert result.lines_malformed == truth.malformed
    assert result.requests == truth.requests
    assert (result.status_401_total, result.status_401_terminal, result.status_401_handshake) == (
        truth.status_401, truth.terminal, truth.handshake)
    assert _groups(result) == {f"{s}|{sub}|{w}": v for (s, sub, w), v in sorted(truth.groups.items())}
    assert all(truth.terminal_uris[uri] == n for uri, n in result.top_uris)
    assert [n for _uri, n in result.top_uris] == [n for _uri, n in truth.terminal_uris.most_common(10)]


def test_bundled_samples_are_what_the_generator_writes(tmp_path: Path, analyse) -> None:
    truths = write_samples(tmp_path)
    bundled = samples_dir()
    for relative in [*truths, "HTTPERR/httperr1.log"]:
        assert (bundled / relative).read_bytes() == (tmp_path / relative).read_bytes(), relative
    result = analyse(bundled)
    assert result.status_401_terminal == sum(t.terminal for t in truths.values())
    assert result.status_401_handshake == sum(t.handshake for t in truths.values())
    assert result.httperr_total == 5
