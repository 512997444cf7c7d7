"""Fixtures for the host-model and scenario tests: generated fleets (once per session) and the catalog."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from toolkit.lab.model import LabFleet, load_fleet
from toolkit.lab.model.catalog import BundledCollector, load_bundled
from toolkit.lab.scenarios import generate

#: a fixed "real" clock for the backends: 2026-11-26 08:30:00 UTC, i.e. 44.5 h after the default reference
FIXED_NOW = dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture(scope="session")
def fixed_clock():
    """The backends' "real" clock in these tests (FIXED_NOW)."""
    return lambda: FIXED_NOW


@pytest.fixture(scope="session")
def bundled() -> dict[str, BundledCollector]:
    catalog = load_bundled()
    if not catalog:
        pytest.skip("no bundled collectors in ps_scripts/ yet")
    return catalog


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed-catalog")
    generate("seed-catalog", 8, out, seed=7)
    return out


@pytest.fixture(scope="session")
def seed_fleet(seed_dir: Path, bundled: dict[str, BundledCollector]) -> LabFleet:
    return load_fleet(seed_dir, bundled=bundled, clock=lambda: FIXED_NOW)
