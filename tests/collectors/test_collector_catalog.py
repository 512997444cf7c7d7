"""toolkit.collectors: loading the bundled catalogue and binding parameters against the sidecars."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from toolkit.collectors import (
    Collector,
    ParamSpec,
    get_collector,
    load_catalog,
    parse_marker,
    ssh_bootstrap,
    ssh_request,
)
from toolkit.errors import ConfigError


def test_catalog_holds_every_bundled_collector_with_its_contract() -> None:
    catalog = load_catalog()
    assert list(catalog) == sorted(catalog)
    assert len(catalog) == 11 and "_ssh_bootstrap" not in catalog
    w3c = catalog["Get-IisW3CLog"]
    assert isinstance(w3c, Collector) and w3c.id == "Get-IisW3CLog" and w3c.version == 2
    assert w3c.script.startswith("# collector-id: Get-IisW3CLog/2\n")
    assert "\r" not in w3c.script
    assert w3c.sidecar["name"] == "Get-IisW3CLog"
    assert w3c.parameter("MaxLinesPerFile") == ParamSpec(
        "MaxLinesPerFile", "int", 200000, w3c.parameter("MaxLinesPerFile").description)
    assert w3c.parameter("logdirectory").type == "string[]"
    assert w3c.description


def test_script_text_is_the_bundled_file(scripts_folder: Callable[[], Path]) -> None:
    folder = scripts_folder()
    (folder / "Get-IisSpn.ps1").write_bytes((folder / "Get-IisSpn.ps1").read_bytes().replace(b"\n", b"\r\n"))
    spn = load_catalog()["Get-IisSpn"]
    assert spn.script == (folder / "Get-IisSpn.ps1").read_text("utf-8").replace("\r\n", "\n")


def test_unknown_collector_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown collector 'Get-Nope'.*Get-HostFact"):
        get_collector("Get-Nope")


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda f: (f / "Get-IisSpn.yml").unlink(), "has no sidecar"),
        (lambda f: _edit(f / "Get-IisSpn.ps1", "collector-id: Get-IisSpn/2", "collector-id: Get-IisSpn/3"),
         "sidecar says Get-IisSpn/2, script marker says Get-IisSpn/3"),
        (lambda f: _edit(f / "Get-IisSpn.ps1", "# collector-id: Get-IisSpn/2", "# no marker"), "no '# collector-id"),
        (lambda f: _edit(f / "Get-IisSpn.ps1", "collector-id: Get-IisSpn/", "collector-id: Get-Other/"),
         "marker names 'Get-Other'"),
        (lambda f: _edit(f / "Get-IisSpn.yml", "parameters: []", "parameters: [{name: X, type: float}]"),
         "type must be one of"),
        (lambda f: _edit(f / "Get-IisSpn.yml", "name: Get-IisSpn", "name: [unclosed"), "not valid YAML"),
        (lambda f: (f / "Get-IisSpn.ps1").write_bytes(b"\xef\xbb\xbf" + (f / "Get-IisSpn.ps1").read_bytes()),
         "BOM"),
    ],
    ids=["no-sidecar", "version-mismatch", "no-marker", "wrong-marker-id", "bad-param-type", "bad-yaml", "bom"],
)
def test_inconsistent_bundle_is_a_config_error(scripts_folder: Callable[[], Path],
                                               mutation: Callable[[Path], None], message: str) -> None:
    mutation(scripts_folder())
    with pytest.raises(ConfigError, match=message) as caught:
        load_catalog()
    assert "Get-IisSpn" in str(caught.value)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new), "utf-8")


def test_parse_marker() -> None:
    assert parse_marker("# collector-id: Get-IisConfig/12\nparam()") == ("Get-IisConfig", 12)
    assert parse_marker("param()\n# collector-id: nope") is None


# -------------------------------------------------------------------------------------- bind


@pytest.fixture
def w3c() -> Collector:
    return load_catalog()["Get-IisW3CLog"]


def test_bind_coerces_to_the_declared_types(w3c: Collector) -> None:
    bound = w3c.bind({"maxlinesperfile": "1000", "LogDirectory": r"D:\logs", "Since": "2026-11-24T00:00:00Z",
                      "MaxFiles": 7.0, "Until": None})
    assert bound == {"MaxLinesPerFile": 1000, "LogDirectory": [r"D:\logs"], "Since": "2026-11-24T00:00:00Z",
                     "MaxFiles": 7}
    assert w3c.bind({}) == {}


def test_bind_turns_aware_datetimes_into_utc_text(w3c: Collector) -> None:
    moment = datetime(2026, 11, 24, 23, 0, tzinfo=timezone(timedelta(hours=2)))
    assert w3c.bind({"Since": moment}) == {"Since": "2026-11-24T21:00:00Z"}
    with pytest.raises(ConfigError, match="time zone"):
        w3c.bind({"Since": datetime(2026, 11, 24)})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"MaxLinezPerFile": 5}, r"has no parameter 'MaxLinezPerFile' \(it takes: LogDirectory, Since"),
        ({"MaxFiles": True}, "expected a whole number, got True"),
        ({"MaxFiles": "many"}, "expected a whole number, got 'many'"),
        ({"MaxFiles": 1.5}, "expected a whole number"),
        ({"MaxFiles": 2**40}, "32-bit"),
        ({"LogDirectory": [r"D:\a", 3]}, "a string or a list of strings"),
        ({"Since": "yesterday"}, "not an ISO 8601 time"),
        ({"Since": "2026-11-24T00:00:00"}, "no time zone"),
        ({"Since": ["2026-11-24T00:00:00Z"]}, "expected a string"),
        ({"MaxFiles": 1, "maxfiles": 2}, "given twice"),
    ],
)
def test_bind_rejects_bad_parameters(w3c: Collector, params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        w3c.bind(params)
    assert "Get-IisW3CLog" in str(caught.value)


def test_collector_without_parameters_rejects_any() -> None:
    with pytest.raises(ConfigError, match="it takes: none"):
        load_catalog()["Get-HostFact"].bind({"Anything": 1})


def test_every_sidecar_default_binds() -> None:
    for collector in load_catalog().values():
        defaults = {p.name: p.default for p in collector.parameters}
        assert collector.bind(defaults).keys() == defaults.keys(), collector.id


# -------------------------------------------------------------------------------- ssh helpers


def test_ssh_request_carries_script_and_parameters_as_data(w3c: Collector) -> None:
    document = json.loads(ssh_request(w3c, w3c.bind({"MaxFiles": "3", "LogDirectory": "D:\\ü"})))
    assert document == {"script": w3c.script, "parameters": {"MaxFiles": 3, "LogDirectory": ["D:\\ü"]}}
    assert ssh_bootstrap().startswith("# collector-id: _ssh_bootstrap/2\n")
