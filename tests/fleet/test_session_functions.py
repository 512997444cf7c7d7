"""Over WinRM the core loader also defines every bundled wrapper as a session function, once per runspace
pool; each bundled step is then a command call with its parameters, and no wrapper text crosses the wire
again (issue 17). Real parts: the lab's WinRM server and host model, the real transport."""

from __future__ import annotations

import json

import pytest
from lab_fixtures import served_scenario

from toolkit.collectors import load_catalog
from toolkit.contract import validate_envelope
from toolkit.transports import create_transport


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_scenario(tmp_path_factory.mktemp("functions") / "fleet", "healthy", 1) as (server, hosts):
        yield server, hosts[0]


STEPS = (("Get-HostFact", {}), ("Get-IisConfig", {"MaxWebConfigDepth": 2}), ("Get-IisSpn", {}))


def test_bundled_steps_are_function_calls_after_one_loader(served) -> None:
    server, host = served
    catalog = load_catalog()
    before = len(server.sessions(host.name))
    transport = create_transport(host)
    transport.open()
    try:
        outputs = [transport.run_script(catalog[cid].script, params, timeout=60) for cid, params in STEPS]
        status = transport.core_status
    finally:
        transport.close()
    for (cid, _), output in zip(STEPS, outputs):
        envelope = validate_envelope(output.stdout, collector=catalog[cid], host=host.name)
        assert envelope["collector"] == cid and not output.errors
    assert status is not None and status.functions and status.loaded
    (session,) = server.sessions(host.name)[before:]
    # one loader, then every step answered through the function the loader defined (never a script)
    assert (session.loader_calls, session.compiles, session.function_calls) == (1, 1, len(STEPS))


def test_the_same_collectors_over_ssh_still_go_as_scripts(served) -> None:
    from dataclasses import replace

    server, host = served
    catalog = load_catalog()
    ssh = replace(host, transport="ssh")
    transport = create_transport(ssh)
    transport.open()
    try:
        output = transport.run_script(catalog["Get-IisSpn"].script, {}, timeout=60)
        status = transport.core_status
    finally:
        transport.close()
    assert json.loads(output.stdout)["collector"] == "Get-IisSpn"
    assert status is not None and status.loaded and not status.functions
    assert server.sessions(host.name)[-1].function_calls == 0


def test_a_loader_given_other_functions_is_refused(served) -> None:
    from toolkit.collectors import compress_core_text, core_loader, core_loader_parameters
    from toolkit.lab.session import LabSession

    server, host = served
    backend = dict((spec.name, backend) for spec, backend in server.hosts)[host.name]
    session = LabSession(backend, host_name=host.name)
    changed = core_loader_parameters(functions=True)
    changed["CompressedFunctions"] = compress_core_text("function global:Get-IisFleetCollectorHostFact { 'x' }\n")
    answer = session.answer(core_loader(), changed)
    assert answer.error and "session functions" in answer.error and session.functions == {}
    assert session.answer("Get-IisFleetCollectorHostFact", {}).error  # not defined: the lab knows no such script


def _run_steps(host, monkeypatch) -> tuple[list, int]:
    """The STEPS on a new session; their outputs and the SOAP bytes the controller sent (before sealing)."""
    from pypsrp.wsman import _TransportHTTP

    sent = []
    original = _TransportHTTP.send

    def counting(self, message, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(len(message))
        return original(self, message, **kwargs)

    monkeypatch.setattr(_TransportHTTP, "send", counting)
    catalog = load_catalog()
    transport = create_transport(host)
    transport.open()
    try:
        outputs = [transport.run_script(catalog[cid].script, params, timeout=60) for cid, params in STEPS]
    finally:
        transport.close()
    monkeypatch.setattr(_TransportHTTP, "send", original)
    return outputs, sum(sent)


def test_session_functions_false_sends_the_scripts_and_costs_more_bytes(served, monkeypatch) -> None:
    from dataclasses import replace

    server, host = served
    as_scripts = replace(host, winrm=replace(host.winrm, session_functions=False))
    with_functions, functions_bytes = _run_steps(host, monkeypatch)
    with_scripts, scripts_bytes = _run_steps(as_scripts, monkeypatch)
    assert server.sessions(host.name)[-1].function_calls == 0
    catalog = load_catalog()
    for (cid, _), a, b in zip(STEPS, with_functions, with_scripts):
        first = validate_envelope(a.stdout, collector=catalog[cid], host=host.name)
        second = validate_envelope(b.stdout, collector=catalog[cid], host=host.name)
        # the same answer either way (but for the host's clock reading)
        assert {k: v for k, v in first["data"].items() if k != "utc_now"} == \
            {k: v for k, v in second["data"].items() if k != "utc_now"}, cid
    # one loader carrying all nine wrappers compressed beats three wrappers sent as text plus the bare loader
    assert functions_bytes < scripts_bytes, (functions_bytes, scripts_bytes)
