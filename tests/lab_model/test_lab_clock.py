"""IISFLEET_LAB_START: load a lab fleet as if the clock read a given UTC second, and a failing test that
loaded a fleet names the second it ran at (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.errors import UsageError
from toolkit.lab import model as lab_model
from toolkit.lab.model import START_ENV, lab_clock, load_fleet
from toolkit.lab.scenarios import generate

ROOT = Path(__file__).resolve().parents[2]


def test_without_the_variable_the_lab_keeps_the_real_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_ENV, raising=False)
    assert lab_clock() is time.time


def test_the_variable_sets_the_clock_back_to_that_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(START_ENV, "02:06:10")
    clock = lab_clock()
    now, then = time.time(), clock()
    assert 0 <= now - then < 86400
    assert abs(then % 86400 - (2 * 3600 + 6 * 60 + 10)) < 2
    time.sleep(0.05)
    assert clock() > then  # it runs, it is not frozen


@pytest.mark.parametrize("value", ["2:6:10", "24:00:00", "12:60:00", "noon", "12:00"])
def test_a_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(START_ENV, value)
    with pytest.raises(UsageError, match=f"{START_ENV}=.*HH:MM:SS"):
        lab_clock()


def test_a_loaded_fleet_presents_its_traffic_moved_to_that_second(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    generate("healthy", 1, tmp_path / "fleet")
    monkeypatch.setenv(START_ENV, "23:59:30")
    fleet = load_fleet(tmp_path / "fleet", port_base=0)
    assert abs(lab_model.LOADED_AT[-1][1] % 86400 - (23 * 3600 + 59 * 60 + 30)) < 2
    backend = fleet.hosts[0][1]
    # the fleet's reference time (its "now") is presented at that second: the traffic of its last minutes
    # falls on the day that is ending, the next run's on the next
    reference = fleet.model.reference_time
    assert reference is not None
    presented = reference + backend.shift
    assert abs((presented.hour * 3600 + presented.minute * 60 + presented.second) - (23 * 3600 + 59 * 60 + 30)) < 2

def test_a_failing_test_that_loaded_a_fleet_names_the_second(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    (tmp_path / "test_fails.py").write_text(
        "from toolkit.lab.model import load_fleet\n"
        "from toolkit.lab.scenarios import generate\n\n"
        "def test_fails(tmp_path):\n"
        "    generate('healthy', 1, tmp_path / 'fleet')\n"
        "    load_fleet(tmp_path / 'fleet', port_base=0)\n"
        "    assert False, 'planted failure'\n", encoding="utf-8")
    env = {**os.environ, START_ENV: "04:05:06"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lab fleet loaded at" in result.stdout
    assert f"{START_ENV}=04:05:0" in result.stdout, result.stdout
