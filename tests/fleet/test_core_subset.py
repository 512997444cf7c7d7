"""A host session loads only the core files its playbook's collectors need (issue 17: bytes per host), and a
script outside that plan still runs, in a new session with the whole core. Real parts: the lab's WinRM and
SSH servers and host model (whose sessions refuse a script calling a core file they did not load, as the
type lookup would on Windows), the real transports and runner.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lab_fixtures import served_scenario

from toolkit.collectors import core_loader, core_loader_parameters, load_catalog
from toolkit.playbooks import load_playbook
from toolkit.rundir import load_run
from toolkit.runner import run_playbook
from toolkit.targetcore.closure import core_index, files_for_collectors
from toolkit.transports import create_transport

HEALTH = [step.collector for step in load_playbook("health-sweep").steps]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_scenario(tmp_path_factory.mktemp("subset") / "fleet", "seed-catalog", 6) as lab:
        yield lab


class _Unplanned:
    """The same transport without ``plan``: the runner cannot tell it the steps, so it loads the whole core."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def open(self) -> None:
        self._inner.open()

    def run_script(self, script: str, parameters: dict[str, Any], **kwargs: Any) -> Any:
        return self._inner.run_script(script, parameters, **kwargs)

    def close(self) -> None:
        self._inner.close()


_TIMES = {"time_utc", "utc_now", "duration_s", "started_utc", "finished_utc", "clock_offset_s"}


def _data(value: Any) -> Any:
    """An envelope or report without its times of collection (two runs a few seconds apart)."""
    if isinstance(value, dict):
        return {k: _data(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_data(v) for v in value]
    return value


def test_a_health_sweep_loads_less_of_the_core_and_collects_the_same(served, tmp_path: Path) -> None:
    server, hosts = served
    playbook = load_playbook("health-sweep")
    reference = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    runs = {}
    for name, factory in (("planned", create_transport), ("whole", lambda h: _Unplanned(create_transport(h)))):
        before = {h.name: len(server.sessions(h.name)) for h in hosts}
        run_playbook(playbook, hosts, out_dir=tmp_path / name, params={}, concurrency=2, simulated=True,
                     transport_factory=factory, reference=reference)
        loaded = {frozenset(s.core_files) for h in hosts for s in server.sessions(h.name)[before[h.name]:]
                  if s.loader_calls}
        runs[name] = (load_run(tmp_path / name), loaded)
    subset, everything = files_for_collectors(HEALTH), core_index().all_files()
    assert runs["planned"][1] == {subset} and runs["whole"][1] == {everything}
    assert subset < everything
    sent = {name: len(core_loader_parameters(files=files)["CompressedSource"])
            for name, files in (("planned", subset), ("whole", everything))}
    assert sent["planned"] < 0.6 * sent["whole"], sent
    planned, whole = runs["planned"][0], runs["whole"][0]
    assert sorted(planned.hosts) == sorted(whole.hosts) == sorted(h.name for h in hosts)
    for host in hosts:
        envelopes = planned.hosts[host.name].envelopes
        assert sorted(envelopes) == sorted(HEALTH), host.name  # every step ran and gave data
        assert _data(envelopes) == _data(whole.hosts[host.name].envelopes), host.name


@pytest.mark.parametrize("kind", ["winrm", "ssh"])
def test_a_script_outside_the_plan_gets_a_new_session_with_the_whole_core(served, kind: str) -> None:
    server, hosts = served
    host = hosts[0] if kind == "winrm" else replace(hosts[0], transport="ssh")
    catalog = load_catalog()
    before = len(server.sessions(host.name))
    transport = create_transport(host)
    transport.plan(["Get-HostFact", "Get-IisConfig"])
    transport.open()
    try:
        config = transport.run_script(catalog["Get-IisConfig"].script, {}, timeout=60)
        spn = transport.run_script(catalog["Get-IisSpn"].script, {}, timeout=60)  # needs Spn*.cs: not loaded
        again = transport.run_script(catalog["Get-IisConfig"].script, {}, timeout=60)
    finally:
        transport.close()
    for output, collector_id in ((config, "Get-IisConfig"), (spn, "Get-IisSpn"), (again, "Get-IisConfig")):
        assert not output.had_errors and json.loads(output.stdout)["collector"] == collector_id, output.errors
    loaders = [s for s in server.sessions(host.name)[before:] if s.loader_calls]
    assert [frozenset(s.core_files) for s in loaders] == [files_for_collectors(["Get-IisConfig"]),
                                                          core_index().all_files()]
    assert all((s.loader_calls, s.compiles) == (1, 1) for s in loaders)


def test_the_lab_refuses_what_a_subset_session_could_not_run(served) -> None:
    """Without the transport's new session the step would fail like the type lookup on Windows, and a second
    loader of another version in the same session gets the real loader's refusal."""
    from toolkit.lab.session import CORE_LACKS, LabSession

    server, hosts = served
    backend = dict((spec.name, backend) for spec, backend in server.hosts)[hosts[0].name]
    session = LabSession(backend, host_name=hosts[0].name)
    subset = files_for_collectors(["Get-IisConfig"])
    status = json.loads(session.answer(core_loader(), core_loader_parameters(files=subset)).output[0])
    assert status["loaded"] and session.core_files == subset
    catalog = load_catalog()
    assert json.loads(session.answer(catalog["Get-IisConfig"].script, {}).output[0])["collector"] == "Get-IisConfig"
    refused = session.answer(catalog["Get-IisSpn"].script, {})
    assert refused.error and refused.error.startswith(CORE_LACKS) and "Spn.Windows.cs" in refused.error
    second = json.loads(session.answer(core_loader(), core_loader_parameters()).output[0])
    assert not second["loaded"] and "Another version" in second["error"]["message"]
    assert session.compiles == 1
