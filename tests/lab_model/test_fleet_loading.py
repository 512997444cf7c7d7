"""Loading a fleet directory: a hand-written minimal fleet works, malformed ones fail with file + field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from toolkit.errors import ConfigError
from toolkit.lab.model import DEMO_PASSWORD, DEMO_USERNAME, load_fleet
from toolkit.lab.model.fleet import read_events

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "bad_fleets.yml").read_text(encoding="utf-8"))
MINIMAL_FLEET = "domain: {name: contoso.com}\nhosts: [{name: web01, address: 127.77.0.11}]\n"


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_minimal_hand_written_fleet_loads_with_defaults(tmp_path: Path) -> None:
    write_tree(tmp_path, {"fleet.yml": MINIMAL_FLEET, "hosts/web01/host.yml": "{}\n"})
    fleet = load_fleet(tmp_path, bundled={})
    (spec, backend), = fleet.hosts
    assert (spec.name, spec.address, spec.fqdn) == ("web01", "127.77.0.11", "web01.contoso.com")
    assert (spec.http_port, spec.https_port, spec.ssh_port) == (5985, 5986, 22)
    assert spec.users == {DEMO_USERNAME: DEMO_PASSWORD}
    assert fleet.credentials.username == DEMO_USERNAME
    assert "NotASecret" not in repr(fleet.credentials)
    assert backend.host.iis_installed and backend.shift.total_seconds() == 0  # no clock: no shift
    assert fleet.model.domain.netbios == "CONTOSO"


def test_fleet_faults_are_inherited_and_host_overrides(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "fleet.yml": "domain: {name: contoso.com}\nfaults: {latency_ms: 50, auth_failure: true}\n"
                     "hosts: [{name: web01, address: 127.77.0.11}, {name: web02, address: 127.77.0.12}]\n",
        "hosts/web01/host.yml": "{}\n",
        "hosts/web02/host.yml": "faults: {auth_failure: false, slow_collector: {collector: Get-IisSpn, delay_s: 9}}\n",
    })
    specs = {spec.name: spec for spec, _ in load_fleet(tmp_path, bundled={}).hosts}
    assert specs["web01"].faults.latency_ms == 50 and specs["web01"].faults.auth_failure
    assert specs["web02"].faults.latency_ms == 50 and not specs["web02"].faults.auth_failure


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_malformed_fleet_names_file_and_field(tmp_path: Path, case: dict) -> None:
    files = dict(case["files"])
    if files and "fleet.yml" not in files:
        files["fleet.yml"] = MINIMAL_FLEET
    if files:
        files.setdefault("hosts/web01/host.yml", "{}\n")
    write_tree(tmp_path, files)
    with pytest.raises(ConfigError) as caught:
        load_fleet(tmp_path, bundled={})
    message = str(caught.value)
    for word in case["expect"]:
        assert word in message, f"{word!r} not in {message!r}"


def test_bad_event_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    write_tree(tmp_path, {"fleet.yml": MINIMAL_FLEET, "hosts/web01/host.yml": "{}\n",
                          "hosts/web01/events.jsonl": '{"log": "Security", "id": 4625, "time": "2026-11-24T10:00:00Z"}\n'
                                                      '{"log": "Security", "id": "x", "time": "2026-11-24T10:00:00Z"}\n'})
    host = load_fleet(tmp_path, bundled={}).model.hosts[0]
    with pytest.raises(ConfigError, match=r"events\.jsonl:2 \(id\)"):
        read_events(host)


def test_port_base_moves_or_frees_the_ports(tmp_path: Path) -> None:
    write_tree(tmp_path, {"fleet.yml": "domain: {name: contoso.com}\nhosts: [{name: web01, address: 127.77.0.11},"
                                       " {name: web02, address: 127.77.0.12}]\n",
                          "hosts/web01/host.yml": "{}\n", "hosts/web02/host.yml": "{}\n"})
    moved = [s for s, _ in load_fleet(tmp_path, port_base=20000, bundled={}).hosts]
    assert [(s.http_port, s.https_port, s.ssh_port) for s in moved] == [(20000, 20001, 20002), (20003, 20004, 20005)]
    free = [s for s, _ in load_fleet(tmp_path, port_base=0, bundled={}).hosts]
    assert {(s.http_port, s.https_port, s.ssh_port) for s in free} == {(0, 0, 0)}
