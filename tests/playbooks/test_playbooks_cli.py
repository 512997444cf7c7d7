"""`iisfleet playbooks list|show|validate` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from toolkit.cli import app

FIXTURES = Path(__file__).parent / "fixtures"

runner = CliRunner()


def test_list_json_has_the_bundled_playbooks() -> None:
    result = runner.invoke(app, ["playbooks", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["health-sweep", "incident-collect", "triage-401"]
    assert all(row["valid"] for row in rows)
    assert {row["name"]: row["steps"] for row in rows}["triage-401"] == 10


def test_list_table() -> None:
    result = runner.invoke(app, ["playbooks", "list"])
    assert result.exit_code == 0
    assert "triage-401" in result.stdout and "Bundled playbooks" in result.stdout


def test_show_table_and_json() -> None:
    result = runner.invoke(app, ["playbooks", "show", "triage-401"])
    assert result.exit_code == 0, result.output
    assert "Get-IisFailedRequestTrace" in result.stdout and "Get-IisSpn" in result.stdout
    shown = json.loads(runner.invoke(app, ["playbooks", "show", "health-sweep", "--json"]).stdout)
    assert shown["report"] is True and shown["steps"][1]["when"] == "Get-HostFact.iis_installed"


def test_show_unknown_name_exits_2() -> None:
    result = runner.invoke(app, ["playbooks", "show", "nope"])
    assert result.exit_code == 2
    assert "no bundled playbook named 'nope'" in result.stderr


def test_validate_good_and_bad_files() -> None:
    bad = FIXTURES / "invalid" / "when-unknown-fact.yml"
    good = Path(__file__).resolve().parents[2] / "playbooks" / "triage-401.yml"
    result = runner.invoke(app, ["playbooks", "validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"ok {good}" in result.stdout.replace("\n", " ")
    assert f"{bad}:8: steps[1].when: Get-IisW3CLog has no fact 'terminal401'" in result.stderr


def test_validate_json() -> None:
    bad = FIXTURES / "invalid" / "unknown-collector.yml"
    result = runner.invoke(app, ["playbooks", "validate", "--json", str(bad), "incident-collect"])
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert rows[0]["valid"] is False
    assert rows[0]["error"] == {
        "path": str(bad),
        "line": 7,
        "field": "steps[1].collector",
        "message": rows[0]["error"]["message"],
    }
    assert rows[0]["error"]["message"].startswith("unknown collector 'Get-IisW3CLogs'")
    assert rows[1] == {
        "path": "incident-collect",
        "valid": True,
        "name": "incident-collect",
        "steps": 11,
        "catalog": rows[1]["catalog"],
    }


def test_validate_all_bundled_files_pass() -> None:
    bundled = sorted((Path(__file__).resolve().parents[2] / "playbooks").glob("*.yml"))
    result = runner.invoke(app, ["playbooks", "validate", *map(str, bundled)])
    assert result.exit_code == 0, result.output
