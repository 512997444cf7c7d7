"""Playbook loading, validation errors (file:line field), templating, parameters and `when`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from toolkit.errors import PlaybookError
from toolkit.playbooks import (
    Condition,
    Step,
    WhenSyntaxError,
    bundled_playbook_names,
    collector_catalog,
    contract_catalog,
    format_duration,
    load_playbook,
    parse_duration,
    parse_playbook,
)

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 24, 21, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("case", sorted((FIXTURES / "invalid").glob("*.yml")), ids=lambda p: p.stem)
def test_invalid_playbooks_name_file_line_and_field(case: Path) -> None:
    """Each file in fixtures/invalid states the line, field and message it must fail with."""
    header = dict(re.findall(r"^# (expect[\w-]*): ?(.*)$", case.read_text(), flags=re.M))
    with pytest.raises(PlaybookError) as caught:
        load_playbook(case, catalog=contract_catalog())
    error = caught.value
    assert error.path == str(case)
    assert error.line == int(header["expect-line"]), str(error)
    assert (error.field or "") == header["expect-field"].strip(), str(error)
    assert header["expect"] in str(error), str(error)


def test_bundled_names() -> None:
    assert bundled_playbook_names() == ["health-sweep", "incident-collect", "triage-401"]


@pytest.mark.parametrize("name", ["triage-401", "health-sweep", "incident-collect"])
def test_bundled_playbooks_validate_against_the_contract(name: str) -> None:
    playbook = load_playbook(name, catalog=contract_catalog())
    assert playbook.name == name and playbook.description
    bound = playbook.bind(now=NOW)
    for step in playbook.steps:
        step.parameters(bound)  # every template renders with the defaults


@pytest.mark.parametrize("name", ["triage-401", "health-sweep", "incident-collect"])
def test_bundled_playbooks_validate_against_the_collector_catalog(name: str) -> None:
    catalog = collector_catalog()
    # The collectors are bundled: a fallback to the contract table means the real catalog failed to load.
    assert catalog.source == "toolkit.collectors", catalog.source
    assert load_playbook(name, catalog=catalog).name == name


def test_triage_runs_all_nine_collectors_and_freb_only_after_terminal_401s() -> None:
    playbook = load_playbook("triage-401", catalog=contract_catalog())
    assert playbook.report is True
    # every summary collector; the raw artefact copy is incident-collect's alone
    assert sorted(step.collector for step in playbook.steps) == sorted(set(contract_catalog().parameters) -
                                                                        {"Get-IisRawArtefact"})
    incident = load_playbook("incident-collect", catalog=contract_catalog())
    assert sorted(step.collector for step in incident.steps) == sorted(contract_catalog().parameters)
    freb = next(s for s in playbook.steps if s.collector == "Get-IisFailedRequestTrace")
    assert freb.should_run({"Get-IisW3CLog": {"terminal_401": 0}})[0] is False
    assert freb.should_run({"Get-IisW3CLog": {"terminal_401": 7}})[0] is True
    assert freb.should_run({})[0] is False  # the W3C step failed on this host: no FREB
    others = [s for s in playbook.steps if s is not freb]
    assert all(s.should_run({}) == (True, "no condition") for s in others)


def test_templating_with_defaults_and_overrides() -> None:
    playbook = load_playbook("triage-401", catalog=contract_catalog())
    w3c = next(s for s in playbook.steps if s.collector == "Get-IisW3CLog")
    bound = playbook.bind(now=NOW)
    assert w3c.parameters(bound) == {
        "Since": "2026-11-23T21:00:00Z",
        "HandshakeWindowSeconds": 30,
        "MaxLinesPerFile": 200000,
    }
    bound = playbook.bind({"since": "90m", "max_log_lines": "5000", "handshake_window": 10}, now=NOW)
    assert dict(bound)["since"] == 5400.0
    assert w3c.parameters(bound) == {
        "Since": "2026-11-24T19:30:00Z",
        "HandshakeWindowSeconds": 10,
        "MaxLinesPerFile": 5000,
    }


def test_bind_rejects_unknown_and_bad_values() -> None:
    playbook = load_playbook("triage-401", catalog=contract_catalog())
    with pytest.raises(PlaybookError, match=r"unknown parameter 'sinse'.*takes: since"):
        playbook.bind({"sinse": "1h"})
    with pytest.raises(PlaybookError, match=r"\(parameters.max_log_lines\): must be at least 1000"):
        playbook.bind({"max_log_lines": 5})
    with pytest.raises(PlaybookError, match="expected a duration"):
        playbook.bind({"since": "yesterday"})


_TYPES_PLAYBOOK = """\
name: types
parameters:
  flag: {type: bool, default: false}
  ratio: {type: float, default: 0.5}
  dirs: {type: list, default: ['D:\\\\logs', 'E:\\\\logs']}
  mode: {type: string, choices: [fast, full], default: fast}
  who: {type: string}
steps:
  - collector: Get-IisW3CLog
    parameters:
      LogDirectory: "{{ dirs }}"
      Since: "from {{ who }} in {{ mode }} mode"
      MaxFiles: 3
"""


def test_parameter_types_lists_and_required() -> None:
    playbook = parse_playbook(_TYPES_PLAYBOOK, "types.yml", catalog=contract_catalog())
    with pytest.raises(PlaybookError, match=r"types.yml:7 \(parameters.who\): this parameter has no default"):
        playbook.bind()
    bound = playbook.bind({"flag": "yes", "ratio": "2", "dirs": "C:\\a, C:\\b", "who": "ops"}, now=NOW)
    assert dict(bound) == {
        "flag": True,
        "ratio": 2.0,
        "dirs": ["C:\\a", "C:\\b"],
        "mode": "fast",
        "who": "ops",
    }
    (step,) = playbook.steps
    assert step.parameters(bound) == {
        "LogDirectory": ["C:\\a", "C:\\b"],
        "Since": "from ops in fast mode",
        "MaxFiles": 3,
    }
    with pytest.raises(PlaybookError, match="expected one of fast, full"):
        playbook.bind({"who": "x", "mode": "slow"})
    assert playbook.to_dict()["parameters"][4] == {
        "name": "who",
        "type": "string",
        "default": None,
        "description": "",
        "required": True,
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86400),
        ("30m", 1800),
        ("90s", 90),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("500ms", 0.5),
        (45, 45),
        ("45", 45),
    ],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "5 minutes", "h", True, "1h 30x", None])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (86400, 5400, 45, 7200, 0.5)] == ["24h", "90m", "45s", "2h", "0.5s"]


_WHEN = yaml.safe_load((FIXTURES / "when_cases.yml").read_text())["cases"]


@pytest.mark.parametrize("case", _WHEN, ids=lambda c: c["when"])
def test_when(case: dict[str, Any]) -> None:
    step = Step(collector="Get-IisFailedRequestTrace", when=Condition(case["when"]))
    run, reason = step.should_run(case["facts"], case.get("params", {}))
    assert run is case["run"], reason
    if "reason" in case:
        assert case["reason"] in reason


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a.b >",
        "(Get-IisW3CLog.status_401 > 0",
        "Get-IisW3CLog.status_401 > 0)",
        "1 + 2",
        "Get-IisW3CLog.status_401 = 1",
        "open('x')",
        "x.__class__.__bases__",
        "lambda: 1",
        "and",
        "not",
    ],
)
def test_when_grammar_rejects(text: str) -> None:
    with pytest.raises(WhenSyntaxError):
        Condition(text)


def test_when_parses_references_and_names() -> None:
    condition = Condition("not (Get-HostFact.iis_installed == false) and deep and Get-IisSpn.queries >= 1")
    assert condition.refs == [("Get-HostFact", "iis_installed"), ("Get-IisSpn", "queries")]
    assert condition.names == ["deep"]


def test_when_must_be_quoted_text(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("name: p\nsteps:\n  - collector: Get-HostFact\n    when: true\n")
    with pytest.raises(PlaybookError, match=r"p.yml:4 \(steps\[0\].when\): expected an expression in quotes"):
        load_playbook(path, catalog=contract_catalog())


def test_load_by_name_and_path_errors(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match=r"no bundled playbook named 'triage'.*triage-401"):
        load_playbook("triage")
    with pytest.raises(PlaybookError, match="playbook file not found"):
        load_playbook(str(tmp_path / "missing.yml"))


def test_real_catalog_binding_errors_are_located(tmp_path: Path) -> None:
    """With the real catalog, the collector's own bind() check runs on the rendered defaults."""

    class Rejecting:
        def bind(self, params: dict[str, Any]) -> dict[str, Any]:
            raise ValueError("MaxFiles must be at most 1000")

    from toolkit.playbooks import CollectorCatalog

    catalog = CollectorCatalog(contract_catalog().parameters, "test", {"Get-IisW3CLog": Rejecting()})
    path = tmp_path / "p.yml"
    path.write_text(
        "name: p\nsteps:\n  - collector: Get-HostFact\n  - collector: Get-IisW3CLog\n"
        "    parameters: {MaxFiles: 5000}\n"
    )
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path, catalog=catalog)
    assert str(caught.value).startswith(f"{path}:4 (steps[1].parameters): Get-IisW3CLog rejects")
    assert "at most 1000" in str(caught.value)
