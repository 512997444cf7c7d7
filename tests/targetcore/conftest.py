"""Fixtures for the target-side C# core, compiled once per session and run for real under Mono.

Tests that need Mono skip only when it is not installed (``.ci/run`` and ``scripts/setup.sh`` install it
and warn when they could not), and the skip says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.lab.model.corehost import CoreHost
from toolkit.targetcore import MonoUnavailable, compile_core, mono_tools

HERE = Path(__file__).resolve().parent


def require_mono() -> None:
    try:
        mono_tools()
    except MonoUnavailable as exc:
        pytest.skip(f"{exc} (.ci/run tried to install it and printed a warning when it could not)")


@pytest.fixture(scope="session")
def core_dll() -> Path:
    require_mono()
    return compile_core()


def test_only_entry_sources() -> list[tuple[str, str]]:
    """Test-only lab entry points (``tests/targetcore/*.cs``), compiled into the harness next to the real ones."""
    return sorted((path.name, path.read_text(encoding="utf-8")) for path in HERE.glob("*.cs"))


@pytest.fixture(scope="session")
def core_host() -> Iterator[CoreHost]:
    """One harness process (core + lab entries + test entries) for the whole session."""
    require_mono()
    host = CoreHost(extra_sources=test_only_entry_sources())
    yield host
    host.close()
