"""pypsrp's RunspacePool/PowerShell (PSRP over WS-Management) against the lab, over HTTP and HTTPS."""

from __future__ import annotations

import json
import time

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from .conftest import DOMAIN_USER, LOCAL_USER, OTHER_PASSWORD, PASSWORD, Lab, plain_http


def wsman(
    lab: Lab, host: str, *, https: bool = False, user: str = DOMAIN_USER, password: str = PASSWORD, **kwargs
) -> WSMan:
    endpoint = lab.endpoint(host)
    options = dict(auth="negotiate", no_proxy=True, connection_timeout=5, read_timeout=30)
    options.update(kwargs)
    if https:
        options.setdefault("cert_validation", str(lab.server.ca_cert_path))
    return WSMan(
        endpoint["address"],
        port=endpoint["https_port" if https else "http_port"],
        ssl=https,
        username=user,
        password=password,
        **options,
    )


def run_echo(connection: WSMan, parameters: dict, mode: str = "echo") -> PowerShell:
    with RunspacePool(connection) as pool:
        ps = PowerShell(pool)
        ps.add_script(f"# lab-echo {mode}\nparam($Name)\n").add_parameters(parameters)
        ps.invoke()
        return ps


def test_http_ntlm_with_message_encryption_passes_script_and_parameters(lab: Lab) -> None:
    parameters = {
        "SiteName": "Default Web Site",
        "MaxLines": 5000,
        "Recurse": True,
        "Paths": ["C:\\inetpub", "D:\\logs"],
        "Options": {"depth": 2},
    }
    ps = run_echo(wsman(lab, "web01", encryption="always"), parameters)
    assert not ps.had_errors and not ps.streams.error
    answer = json.loads(ps.output[0])
    assert answer["host"] == "web01"
    assert answer["parameters"] == parameters
    script, seen = lab.backends["web01"].calls[-1]
    assert script.startswith("# lab-echo echo") and seen == parameters


@pytest.mark.parametrize(
    "user", [DOMAIN_USER, "lab\\ADMIN", LOCAL_USER, f".\\{LOCAL_USER}", f"WEB02\\{LOCAL_USER}"]
)
def test_ntlm_accepts_the_usual_account_spellings(lab: Lab, user: str) -> None:
    ps = run_echo(wsman(lab, "web02", user=user), {"n": 1})
    assert json.loads(ps.output[0])["parameters"] == {"n": 1}


def test_https_ntlm_with_channel_binding_and_the_lab_ca(lab: Lab) -> None:
    ps = run_echo(wsman(lab, "web01", https=True, negotiate_send_cbt=True), {"tls": True})
    assert json.loads(ps.output[0])["parameters"] == {"tls": True}


def test_https_ntlm_without_channel_binding_is_accepted_like_relaxed_hardening(lab: Lab) -> None:
    ps = run_echo(wsman(lab, "web01", https=True, negotiate_send_cbt=False), {"cbt": False})
    assert json.loads(ps.output[0])["parameters"] == {"cbt": False}


def test_https_basic(lab: Lab) -> None:
    ps = run_echo(wsman(lab, "web03", https=True, auth="basic"), {"basic": 1})
    assert json.loads(ps.output[0])["host"] == "web03"


def test_https_wrong_ca_file_fails_validation(lab: Lab, tmp_path) -> None:
    import requests

    with pytest.raises(requests.exceptions.SSLError):
        run_echo(wsman(lab, "web01", https=True, cert_validation=True), {})


@pytest.mark.parametrize(
    "https,auth", [(False, "negotiate"), (False, "ntlm"), (True, "negotiate"), (True, "basic")]
)
def test_wrong_password_is_http_401(lab: Lab, https: bool, auth: str) -> None:
    with pytest.raises(AuthenticationError):
        run_echo(wsman(lab, "web01", https=https, auth=auth, password=OTHER_PASSWORD), {})
    # ... and the host keeps serving.
    assert run_echo(wsman(lab, "web01"), {"after": 1}).output


def test_account_of_another_host_is_rejected(lab: Lab) -> None:
    with pytest.raises(AuthenticationError):
        run_echo(wsman(lab, "web04", user=LOCAL_USER), {})


def test_terminating_error_fails_the_pipeline(lab: Lab) -> None:
    ps = run_echo(wsman(lab, "web01"), {}, mode="fail")
    assert ps.had_errors
    assert ps.state == PSInvocationState.FAILED
    assert "simulated terminating error on web01" in str(ps.streams.error[0])


def test_non_terminating_error_goes_to_the_error_stream_only(lab: Lab) -> None:
    ps = run_echo(wsman(lab, "web01"), {}, mode="warn")
    assert not ps.had_errors
    assert ps.output and json.loads(ps.output[0])["host"] == "web01"
    assert "simulated non-terminating error" in str(ps.streams.error[0])


def test_unknown_script_is_refused_loudly(lab: Lab) -> None:
    with RunspacePool(wsman(lab, "web01")) as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-ChildItem C:\\")
        ps.invoke()
    assert ps.had_errors and "unknown collector" in str(ps.streams.error[0])


def test_slow_script_long_polls_with_operation_timeout_faults(lab: Lab) -> None:
    connection = wsman(lab, "web01", operation_timeout=1)
    receives = []
    original = connection.receive

    def counting_receive(*args, **kwargs):
        receives.append(time.monotonic())
        return original(*args, **kwargs)

    connection.receive = counting_receive
    with RunspacePool(connection) as pool:
        ps = PowerShell(pool)
        ps.add_script("# lab-echo slow 2.4\n").add_parameters({"x": 1})
        opened = len(receives)
        started = time.monotonic()
        ps.begin_invoke()
        ps.end_invoke()  # poll_invoke swallows the 0x80338029 faults
        elapsed = time.monotonic() - started
    assert json.loads(ps.output[0])["parameters"] == {"x": 1}
    assert 2.3 < elapsed < 5
    assert len(receives) - opened >= 3  # at least two timed-out polls, then the answer


def test_receive_on_a_quiet_pipeline_raises_operation_timeout_fault(lab: Lab) -> None:
    with RunspacePool(wsman(lab, "web01", operation_timeout=1)) as pool:
        ps = PowerShell(pool)
        ps.add_script("# lab-echo slow 3\n")
        ps.begin_invoke()
        pool._receive(ps.id, timeout=1)  # after one timeout budget: the PipelineState(Running) message
        with pytest.raises(WSManFaultError) as caught:
            pool._receive(ps.id, timeout=1)
        assert caught.value.code == 0x80338029
        ps.stop()


def test_pool_features_exchange_keys_is_alive_payload_size_and_many_lines(lab: Lab) -> None:
    connection = wsman(lab, "web02")
    connection.update_max_payload_size()
    assert connection.max_envelope_size == 500 * 1024
    with RunspacePool(connection) as pool:
        pool.exchange_keys()
        assert pool.is_alive()
        for _ in range(2):  # two pipelines on one pool
            ps = PowerShell(pool)
            ps.add_script("# lab-echo lines 3000\n")
            output = ps.invoke()
            assert output[0] == "line 0" and output[-1] == "line 2999" and len(output) == 3000
    assert not pool.is_alive()  # the shell was deleted on close


def test_client_execute_ps_shape_is_recognised(lab: Lab) -> None:
    client = Client(**plain_http(lab, "web03"))
    output, streams, had_errors = client.execute_ps("# lab-echo lines 3\n")
    assert output.splitlines() == ["line 0", "line 1", "line 2"] and not had_errors


def test_execute_ps_with_environment_statements(lab: Lab) -> None:
    client = Client(**plain_http(lab, "web03"))
    output, _streams, had_errors = client.execute_ps("# lab-echo lines 1\n", environment={"LAB": "1"})
    assert output == "line 0" and not had_errors


def test_powershell_context_manager_closes_the_pipeline_with_signal(lab: Lab) -> None:
    with RunspacePool(wsman(lab, "web01")) as pool:
        with PowerShell(pool) as ps:
            ps.add_script("# lab-echo echo\n")
            ps.invoke()
        assert json.loads(ps.output[0])["host"] == "web01"
        # The pool still works after the Signal(terminate) of the closed pipeline.
        again = PowerShell(pool)
        again.add_script("# lab-echo lines 1\n")
        assert again.invoke() == ["line 0"]


def test_wrong_channel_binding_is_rejected(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from pypsrp.negotiate import HTTPNegotiateAuth

    # A TLS-intercepting proxy would present another certificate: the client binds to that one.
    monkeypatch.setattr(
        HTTPNegotiateAuth,
        "_get_cbt_data",
        staticmethod(lambda response: b"tls-server-end-point:" + b"\x42" * 32),
    )
    with pytest.raises(AuthenticationError):
        run_echo(wsman(lab, "web01", https=True, negotiate_send_cbt=True), {})


def test_large_script_and_parameters_span_several_fragments(lab: Lab) -> None:
    # Far above one envelope: pypsrp sends the first fragment with Command and the rest with Send.
    script = "# lab-echo echo\n" + "# collector body line\n" * 20000
    blob = "x" * 300_000
    with RunspacePool(wsman(lab, "web02")) as pool:
        ps = PowerShell(pool)
        ps.add_script(script).add_parameters({"Blob": blob})
        answer = json.loads(ps.invoke()[0])
    assert answer["script_length"] == len(script)
    assert answer["parameters"] == {"Blob": blob}
