"""Fixtures for the collector catalogue and contract tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from toolkit import collectors
from toolkit.resources import ps_scripts_dir


@pytest.fixture
def scripts_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Path]]:
    """A writable copy of ps_scripts/ that the catalogue loads from instead of the bundled one.

    Patches only the single seam collectors.py reads through (``ps_scripts_dir``) and clears the
    catalogue cache before and after, so other tests see the real bundle.
    """
    folder = tmp_path / "ps_scripts"
    shutil.copytree(str(ps_scripts_dir()), folder)
    monkeypatch.setattr(collectors, "ps_scripts_dir", lambda: folder)
    collectors._catalog.cache_clear()
    collectors.ssh_bootstrap.cache_clear()
    yield lambda: folder
    collectors._catalog.cache_clear()
    collectors.ssh_bootstrap.cache_clear()
