"""The findings do not depend on the second of the day a run starts (toolkit/lab/rollover.py).

That second decides which client conversations of the lab fleet fall across midnight, into two daily log
files. A sample of those seconds, and the one a CI run met (02:06:10 puts a proxy's NTLM leg at 23:59:59
and the fresh 401.2 after it at 00:00:00 of the next file), must give the same (host, cause, site,
substatus) findings as a second that splits nothing. The whole day: bench/rollover/rollover.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from toolkit.lab.rollover import findings, lab_envelopes, quiet_second, split_seconds, w3c_envelopes
from toolkit.lab.scenarios import DEFAULT_REFERENCE, generate

SEEN_IN_CI = 2 * 3600 + 6 * 60 + 10
SAMPLE = 24


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict, set]:
    root = tmp_path_factory.mktemp("rollover")
    fleet_dir = root / "fleet"
    generate("seed-catalog", 12, fleet_dir)
    split = split_seconds(fleet_dir, DEFAULT_REFERENCE)
    base = lab_envelopes(fleet_dir, root / "run")
    for host, envelope in w3c_envelopes(fleet_dir, set(base), quiet_second(split)).items():
        base[host]["Get-IisW3CLog"] = envelope
    return fleet_dir, split, base, findings(base)


def test_the_lab_fleet_has_conversations_across_midnight(fleet: tuple[Path, dict, dict, set]) -> None:
    _fleet_dir, split, _base, expected = fleet
    assert len(split) > 1000, "the sample below would test nothing"
    assert SEEN_IN_CI in split and split[SEEN_IN_CI] == {"web10"}
    assert ("web10", "ntlm-through-proxy", "Helpdesk", "401.2") in expected


@pytest.mark.parametrize("second", sorted(random.Random(20261205).sample(range(86400), SAMPLE)) + [SEEN_IN_CI],
                         ids=lambda s: f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}")
def test_a_run_started_at_any_second_finds_the_same(fleet: tuple[Path, dict, dict, set], second: int) -> None:
    fleet_dir, split, base, expected = fleet
    # a random second rarely splits anything: move it to the next second that does
    while second not in split:
        second = (second + 1) % 86400
    envelopes = {host: dict(envelope) for host, envelope in base.items()}
    for host, envelope in w3c_envelopes(fleet_dir, split[second], second).items():
        envelopes[host]["Get-IisW3CLog"] = envelope
    got = findings(envelopes)
    assert got == expected, f"extra {sorted(got - expected)}, missing {sorted(expected - got)}"
