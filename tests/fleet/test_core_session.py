"""The C# core is loaded once per session (WinRM runspace pool, SSH connection), through the real
transports against the lab, which keeps the same per-session state a Windows host does: a script that
calls the core in a session where the loader never ran gets the wrapper's ``environment`` envelope, and
the host's language mode decides whether the core can load at all.
"""

from __future__ import annotations

import json

import pytest
from fleet_helpers import ECHO_SCRIPT, echo_collector
from lab_fixtures import DEFAULT_ENDPOINT_LANGUAGE, ssh_host, start_lab, winrm_host

from toolkit.lab.backend import ProtocolFaults

from toolkit.contract import validate_envelope
from toolkit.errors import HostError, TransportError
from toolkit.transports import create_transport

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The fleet lab plus hosts whose default endpoint is ConstrainedLanguage / NoLanguage."""
    extra = {name: (ProtocolFaults(), "ok") for name in DEFAULT_ENDPOINT_LANGUAGE}
    extra["streamer"] = (ProtocolFaults(), "stream-stall")
    server = start_lab(tmp_path_factory.mktemp("core-lab"), base_octet=61, extra=extra)
    try:
        yield server
    finally:
        server.stop()


#: Test-Echo, but naming a core type: to the transports it is a script that needs the core.
CORE_SCRIPT = ECHO_SCRIPT + "# returns [IisFleet.Target.Core]::Version in a real wrapper\n"


def _host(lab, name: str, kind: str):
    return winrm_host(lab, name) if kind == "winrm" else ssh_host(lab, name)


def _new_sessions(lab, name: str, before: int) -> list:
    return lab.sessions(name)[before:] if lab.sessions(name) else []


@pytest.mark.parametrize("kind", ["winrm", "ssh"])
def test_the_core_is_compiled_once_per_session_and_only_when_needed(lab, kind: str) -> None:
    name = "good2"
    transport = create_transport(_host(lab, name, kind))
    transport.open()
    try:
        plain = transport.run_script(ECHO_SCRIPT, {"Message": "plain"}, timeout=10)
        assert transport.core_status is None  # nothing that needs the core ran yet
        outputs = [transport.run_script(CORE_SCRIPT, {"Message": f"m{i}"}, timeout=10) for i in range(3)]
        status = transport.core_status
    finally:
        transport.close()
    assert '"message":"plain"' in plain.stdout
    assert [f'"message":"m{i}"' in o.stdout for i, o in enumerate(outputs)] == [True] * 3
    assert status is not None and status.loaded and status.compiled and status.error is None
    sessions = [s for s in lab.sessions(name) if s.loader_calls]
    assert sessions, "the lab saw no loader"
    session = sessions[-1]
    assert (session.loader_calls, session.compiles) == (1, 1)
    if kind == "winrm":
        # every pipeline asked for a local scope, so a collector's variables do not outlive it in the pool
        assert session.scopes and all(flag is True for _, flag in session.scopes), session.scopes


def test_a_new_runspace_pool_loads_the_core_again(lab) -> None:
    compiled = []
    for _ in range(2):
        transport = create_transport(winrm_host(lab, "good2"))
        transport.open()
        try:
            transport.run_script(CORE_SCRIPT, {}, timeout=10)
            compiled.append(transport.core_status.compiled)
        finally:
            transport.close()
    assert compiled == [True, True]


def test_an_ssh_step_that_times_out_ends_its_process_and_the_next_loads_again(lab) -> None:
    transport = create_transport(ssh_host(lab, "slow"))
    transport.open()
    try:
        with pytest.raises(TransportError) as caught:
            transport.run_script(CORE_SCRIPT, {"Message": "slow"}, timeout=1.5)
        assert caught.value.category == "timeout"
        after = transport.run_script(CORE_SCRIPT, {"Message": "fast"}, timeout=10)
        assert transport.core_status is not None and transport.core_status.compiled
    finally:
        transport.close()
    assert '"message":"fast"' in after.stdout
    loaded = [s for s in lab.sessions("slow") if s.compiles]
    assert len(loaded) >= 2 and all(s.compiles == 1 for s in loaded)


@pytest.mark.parametrize("kind", ["winrm", "ssh"])
def test_constrained_language_gives_a_structured_environment_error(lab, kind: str) -> None:
    transport = create_transport(_host(lab, "constrained", kind))
    transport.open()
    try:
        output = transport.run_script(CORE_SCRIPT, {}, timeout=10)
        status = transport.core_status
    finally:
        transport.close()
    # The loader ran and said why it could not compile; the collector answered with the structured error,
    # which the contract turns into a host error of category environment (never a parse error).
    assert status is not None and not status.loaded and "ConstrainedLanguage" in (status.error or "")
    envelope = json.loads(output.stdout)
    (error,) = envelope["errors"]
    assert (error["probe"], error["category"], error["target"]) == ("environment", "environment",
                                                                   "ConstrainedLanguage")
    assert envelope["data"] == {}
    with pytest.raises(HostError) as caught:
        validate_envelope(output.stdout, collector=echo_collector(), host="constrained")
    assert caught.value.category == "environment" and "ConstrainedLanguage" in caught.value.message


def test_a_no_language_endpoint_is_an_environment_problem_not_a_parse_error(lab) -> None:
    transport = create_transport(winrm_host(lab, "nolanguage"))
    transport.open()
    try:
        with pytest.raises(HostError) as caught:
            transport.run_script(CORE_SCRIPT, {}, timeout=10)
    finally:
        transport.close()
    assert caught.value.category == "environment" and "NoLanguage" in caught.value.message


def test_a_core_script_in_a_session_without_the_loader_fails_like_windows(lab) -> None:
    # Drive the lab's session directly, skipping the transport's loader: the wrapper's probe answers.
    from toolkit.lab.session import CORE_NOT_LOADED, CORE_NOT_LOADED_TARGET, LabSession

    backend = dict((s.name, b) for s, b in lab.hosts)["good"]
    session = LabSession(backend, host_name="good")
    answer = session.answer(CORE_SCRIPT, {})
    envelope = json.loads(answer.output[0])
    assert envelope["errors"][0]["message"] == CORE_NOT_LOADED and envelope["data"] == {}
    assert envelope["errors"][0]["target"] == CORE_NOT_LOADED_TARGET
    with pytest.raises(HostError) as caught:
        validate_envelope(answer.output[0], collector=echo_collector(), host="good")
    assert caught.value.category == "environment"
    assert session.answer(ECHO_SCRIPT, {}).output  # scripts that need no core are unaffected


def test_a_step_that_times_out_keeps_the_parts_that_had_arrived(lab, tmp_path, catalog) -> None:
    """A streaming collector stopped by its step timeout: the parts it had finished are stored (and say the
    rest was not read); the step is still a timeout."""
    from dataclasses import replace

    from fleet_helpers import ECHO_ID, StubPlaybook, StubStep

    from toolkit.rundir import load_run
    from toolkit.runner import run_playbook

    host = replace(ssh_host(lab, "streamer"), time_budget=30)
    playbook = StubPlaybook("stream", [StubStep(ECHO_ID, {"Message": "m", "Count": 3}, timeout=2.0)])
    summary = run_playbook(playbook, [host], out_dir=tmp_path / "run", params={}, concurrency=1, catalog=catalog)
    (result,) = summary.hosts
    assert result.steps[0].status == "failed" and result.steps[0].error.category == "timeout"
    record = load_run(tmp_path / "run").hosts["streamer"]
    envelope = record.envelopes[ECHO_ID]
    assert envelope["parts"] == 2 and envelope["data"] == {"message": "m", "count": 3}
    assert any(e["category"] == "timeout" and e["probe"] == "parts" for e in envelope["errors"])


def _packed(text: str) -> str:
    import base64
    import gzip

    return base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")


@pytest.mark.parametrize("broken", ["plain text", "not gzip", "truncated", "another text"])
def test_the_lab_loads_the_core_only_from_a_correct_compressed_source(lab, broken: str) -> None:
    """The lab unpacks the loader's CompressedSource as GZipStream would and compares it with the core, so
    an encoding that a Windows host could not turn back into the core fails here too."""
    from toolkit.collectors import core_loader, core_loader_parameters
    from toolkit.lab.session import LabSession
    from toolkit.targetcore import core_source

    backend = dict((s.name, b) for s, b in lab.hosts)["good"]
    good = core_loader_parameters()
    session = LabSession(backend, host_name="good")
    status = json.loads(session.answer(core_loader(), dict(good)).output[0])
    assert status["loaded"] and status["compiled"] and session.compiles == 1
    text = core_source().text
    wrong = {"plain text": text, "not gzip": good["CompressedSource"][::-1],
             "truncated": good["CompressedSource"][: len(good["CompressedSource"]) // 2],
             "another text": _packed(text + "// one more line\n")}[broken]
    fresh = LabSession(backend, host_name="good")
    answer = fresh.answer(core_loader(), {**good, "CompressedSource": wrong})
    assert answer.error and "another source" in answer.error and fresh.compiles == 0
