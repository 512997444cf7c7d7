"""The WinRM transport with the real pypsrp client against the lab's WinRM listeners."""

from __future__ import annotations

import time

import pytest
from fleet_helpers import ECHO_SCRIPT
from lab_fixtures import winrm_host

from toolkit.errors import TransportError
from toolkit.transports import create_transport


def _run(host, params=None, timeout=10.0):
    transport = create_transport(host)
    try:
        transport.open()
        return transport.run_script(ECHO_SCRIPT, params or {"Message": "hi"}, timeout=timeout)
    finally:
        transport.close()


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_session_is_reused_for_several_scripts(lab, scheme) -> None:
    transport = create_transport(winrm_host(lab, "good", scheme=scheme))
    transport.open()
    try:
        outputs = [transport.run_script(ECHO_SCRIPT, {"Message": f"m{i}", "Count": i}, timeout=10) for i in range(3)]
    finally:
        transport.close()
    assert ['"message":"m0","count":0' in outputs[0].stdout, '"count":2' in outputs[2].stdout] == [True, True]
    assert not any(o.had_errors or o.errors for o in outputs)


def test_parameters_travel_as_data_not_script_text(lab) -> None:
    hostile = "'; Remove-Item C:\\ -Recurse; '"
    output = _run(winrm_host(lab, "good"), {"Message": hostile})
    backend = dict((s.name, b) for s, b in lab.hosts)["good"]
    assert backend.calls[-1] == {"Message": hostile}
    assert "Remove-Item" in output.stdout  # echoed back as a value, unchanged


def test_wrong_password_is_auth(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(winrm_host(lab, "good", password="not-the-password-9"))
    assert caught.value.category == "auth"
    assert "WinRM" in caught.value.explanation


def test_auth_failure_fault_is_auth(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(winrm_host(lab, "authfail"))
    assert caught.value.category == "auth"


def test_refused_port_is_connect(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(winrm_host(lab, "refused"))
    assert caught.value.category == "connect"
    assert "listener is not running" in caught.value.explanation


def test_unknown_ca_is_tls_and_verify_off_connects(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(winrm_host(lab, "unknownca"))
    assert caught.value.category == "tls"
    assert "--ca-bundle" in caught.value.explanation
    assert '"count":1' in _run(winrm_host(lab, "unknownca", cert_validation=False)).stdout


def test_lab_ca_is_needed_to_verify(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(winrm_host(lab, "good", ca_bundle=None))  # system trust store only
    assert caught.value.category == "tls"
    assert _run(winrm_host(lab, "good", cert_validation=False)).stdout


def test_latency_is_tolerated(lab) -> None:
    started = time.monotonic()
    assert '"count":1' in _run(winrm_host(lab, "latency")).stdout
    assert time.monotonic() - started > 0.3  # the latency really applied


def test_reset_mid_exchange_is_connect_after_one_retry(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(winrm_host(lab, "reset", scheme="http"))
    assert caught.value.category == "connect"


def test_unencrypted_http_is_refused_with_explanation(lab) -> None:
    host = winrm_host(lab, "good", scheme="http", auth="ntlm", encryption="never")
    with pytest.raises(TransportError) as caught:
        _run(host)
    assert caught.value.category == "protocol"
    assert "refuses unencrypted traffic" in caught.value.explanation
    # the same settings work where the listener allows it
    assert _run(winrm_host(lab, "plainok", scheme="http", auth="ntlm", encryption="never")).stdout


def test_basic_over_http_needs_explicit_opt_in(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(winrm_host(lab, "plainok", scheme="http", auth="basic"))
    assert caught.value.category == "config"
    assert _run(winrm_host(lab, "plainok", scheme="http", auth="basic", allow_insecure_basic=True)).stdout
    assert _run(winrm_host(lab, "good", scheme="https", auth="basic")).stdout


def test_slow_script_times_out_and_the_session_stays_usable(lab) -> None:
    transport = create_transport(winrm_host(lab, "slow"))
    transport.open()
    try:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            transport.run_script(ECHO_SCRIPT, {"Message": "slow"}, timeout=1.5)
        assert caught.value.category == "timeout"
        assert time.monotonic() - started < 5
        assert '"message":"fast"' in transport.run_script(ECHO_SCRIPT, {"Message": "fast"}, timeout=10).stdout
    finally:
        transport.close()


def test_terminating_and_non_terminating_errors_are_reported(lab) -> None:
    failed = _run(winrm_host(lab, "scripterr"))
    assert failed.had_errors and "Cannot find path" in " ".join(failed.errors)
    warned = _run(winrm_host(lab, "writeerr"))
    assert not warned.had_errors and "denied" in " ".join(warned.errors)


def test_max_envelope_size(lab) -> None:
    transport = create_transport(winrm_host(lab, "good"))
    transport.open()
    try:
        assert transport.max_envelope_size() >= 150 * 1024
    finally:
        transport.close()


def test_proxy_environment_is_ignored_for_loopback(lab, monkeypatch) -> None:
    # requests would otherwise send lab traffic to the (dead) proxy: the notes' pitfall 7
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert '"count":1' in _run(winrm_host(lab, "good", scheme="http")).stdout
    assert '"count":1' in _run(winrm_host(lab, "good", scheme="https")).stdout


def test_wsman_options_from_the_inventory(lab) -> None:
    from toolkit.transports.winrm import WinRMTransport

    host = winrm_host(lab, "good", operation_timeout=20, read_timeout=10, negotiate_hostname_override="web01.lab.test",
                      configuration_name="JEA.IisRead")
    kwargs = WinRMTransport(host).wsman_kwargs()
    assert kwargs["read_timeout"] > kwargs["operation_timeout"] == 20
    assert kwargs["cert_validation"] == str(lab.ca_cert_path)
    assert kwargs["no_proxy"] is True and kwargs["ssl"] is True
    assert kwargs["negotiate_hostname_override"] == "web01.lab.test"
    assert WinRMTransport(winrm_host(lab, "good", cert_validation=False)).wsman_kwargs()["cert_validation"] is False
    with pytest.raises(TransportError, match="certificate authentication needs HTTPS"):
        WinRMTransport(winrm_host(lab, "good", scheme="http", auth="certificate")).wsman_kwargs()



@pytest.mark.parametrize("failure", ["dropped", "quota"])
def test_one_rebuild_and_retry_after_a_drop_or_quota_fault(lab, monkeypatch, failure) -> None:
    import requests
    from pypsrp.exceptions import WSManFaultError

    from toolkit.transports.winrm import WinRMTransport

    transport = create_transport(winrm_host(lab, "good", scheme="http"))
    transport.open()
    first_pool = transport._pool
    real_invoke = WinRMTransport._invoke
    calls = []

    def flaky(self, script, parameters, deadline, *more):
        calls.append(self._pool)
        if len(calls) == 1:  # the server drops us (or refuses a shell) once, after the session was opened
            if failure == "dropped":
                raise requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
            raise WSManFaultError(2150859173, "m", "The WS-Management service cannot process the request. This "
                                  "user has exceeded the maximum number of concurrent shells allowed", None, None, None)
        return real_invoke(self, script, parameters, deadline, *more)

    monkeypatch.setattr(WinRMTransport, "_invoke", flaky)
    try:
        output = transport.run_script(ECHO_SCRIPT, {"Message": "again"}, timeout=10)
    finally:
        transport.close()
    assert '"message":"again"' in output.stdout
    assert len(calls) == 2 and calls[0] is first_pool and calls[1] is not first_pool  # a fresh session
