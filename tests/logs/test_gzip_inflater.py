"""`.gz` logs read through ISA-L where installed (the `fast` extra) give the same bytes and the same
analysis as the standard library's inflater; a damaged file fails the same way with either."""

from __future__ import annotations

import builtins
import gzip
from pathlib import Path

import pytest

from toolkit.logs import LogAnalyzer, discover
from toolkit.logs import w3c
from toolkit.logs.synth import write_log as synth_log

_real_import = builtins.__import__


def _without_isal(name, *args, **kwargs):  # type: ignore[no-untyped-def]
    if name == "isal" or name.startswith("isal."):
        raise ImportError("isal hidden by the test")
    return _real_import(name, *args, **kwargs)


def _analysis(path: Path) -> dict:
    analyzer = LogAnalyzer()
    analyzer.feed_path(path)
    return analyzer.result().to_dict()


@pytest.fixture
def gz_log(tmp_path: Path) -> Path:
    path = tmp_path / "W3SVC1" / "u_ex261124.log.gz"
    path.parent.mkdir()
    synth_log(path, seed=7, lines=30000)
    return path


def test_isal_is_what_reads_gz_logs_when_installed(gz_log: Path) -> None:
    pytest.importorskip("isal", reason="isal (the `fast` extra) could not be installed")
    (log,) = discover([gz_log])
    with w3c.open_log(log) as stream:
        assert type(stream).__module__.startswith("isal")
        fast = stream.read()
    assert fast == gzip.decompress(gz_log.read_bytes())


def test_same_analysis_with_and_without_isal(gz_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_isal = _analysis(gz_log)
    monkeypatch.setattr(builtins, "__import__", _without_isal)
    (log,) = discover([gz_log])
    with w3c.open_log(log) as stream:
        assert isinstance(stream, gzip.GzipFile)
    assert _analysis(gz_log) == with_isal


def test_a_truncated_gz_fails_alike(tmp_path: Path, gz_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(gz_log.read_bytes()[: gz_log.stat().st_size // 2])
    errors = []
    for hide in (False, True):
        if hide:
            monkeypatch.setattr(builtins, "__import__", _without_isal)
        (log,) = discover([cut])
        with pytest.raises((EOFError, OSError)) as raised, w3c.open_log(log) as stream:
            while stream.read(1 << 16):
                pass
        errors.append(type(raised.value))
    assert errors[0] is errors[1]
