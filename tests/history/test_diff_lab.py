"""`iisfleet diff` of two seeded lab runs lists exactly the changes planted between them.

Both runs are real (lab fleets served over WinRM on loopback, triage-401 through the product's runner); the
planted changes are read from the two fleets' answer keys, never written into the test.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab_runs import lab_run, planted
from typer.testing import CliRunner

from toolkit.cli import app


def _diff(tmp_path: Path, before: Path, after: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["diff", str(before), str(after), "--format", "json",
                                      "--history", str(tmp_path / "history.sqlite"), *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _where(items: list[dict]) -> set[tuple[str, str, str]]:
    return {(f["host"], f["cause"], f["site"]) for f in items}


def test_drift_moves_a_host_appears_and_one_fails(tmp_path: Path) -> None:
    run_a, key_a = lab_run(tmp_path / "a", scenario="drift", hosts=6, seed=0)
    run_b, key_b = lab_run(tmp_path / "b", scenario="drift", hosts=7, seed=3, faults={"web02": ["auth_failure"]})
    code, diff = _diff(tmp_path, run_a, run_b)

    checked_b = set(key_b["hosts"]) - set(key_b["faults"])
    assert _where(diff["findings"]["new"]) == planted(key_b) - planted(key_a)
    assert _where(diff["findings"]["resolved"]) == {p for p in planted(key_a) - planted(key_b) if p[0] in checked_b}
    assert diff["findings"]["changed"] == []
    assert {h["host"] for h in diff["hosts"]["appeared"]} == set(key_b["hosts"]) - set(key_a["hosts"])
    assert diff["hosts"]["vanished"] == []
    assert [(h["host"], h["before"], h["after"], h["error_category"]) for h in diff["hosts"]["status_changed"]] == [
        ("web02", "ok", "failed", "auth")]
    drift_a = {(d["host"], d["site"], d["attribute"]) for d in key_a["drift"]}
    drift_b = {(d["host"], d["site"], d["attribute"]) for d in key_b["drift"]}
    assert {(d["host"], d["site"], d["attribute"]) for d in diff["drift"]["started"]} == drift_b - drift_a
    assert {(d["host"], d["site"], d["attribute"]) for d in diff["drift"]["stopped"]} == drift_a - drift_b
    assert planted(key_b) - planted(key_a), "the seeds must plant a change"
    assert code == 1  # a new high-severity finding

    # the same pair, --fail-on above the new finding's severity: nothing new that high
    severities = {f["severity"] for f in diff["findings"]["new"]}
    assert severities == {"high"}
    code, _ = _diff(tmp_path, run_a, run_b, "--fail-on", "critical")
    assert code == 0

    # no change between a run and itself
    code, same = _diff(tmp_path, run_b, run_b)
    assert code == 0 and all(not items for section in ("findings", "hosts", "drift") for items in same[section].values())


def test_seed_catalog_every_planted_cause_that_differs(tmp_path: Path) -> None:
    run_a, key_a = lab_run(tmp_path / "a", scenario="seed-catalog", hosts=12, seed=0)
    run_b, key_b = lab_run(tmp_path / "b", scenario="seed-catalog", hosts=12, seed=2)
    _, diff = _diff(tmp_path, run_a, run_b)
    new, resolved = planted(key_b) - planted(key_a), planted(key_a) - planted(key_b)
    assert new and resolved, "the two seeds must plant different causes"
    assert _where(diff["findings"]["new"]) == new
    assert _where(diff["findings"]["resolved"]) == resolved
    assert diff["findings"]["unverified"] == []
    assert diff["hosts"] == {"appeared": [], "vanished": [], "status_changed": []}
