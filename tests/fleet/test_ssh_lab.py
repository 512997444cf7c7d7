"""The SSH transport with the real paramiko client against the lab's simulated Windows OpenSSH."""

from __future__ import annotations

import json
from dataclasses import replace

import paramiko
import pytest
from fleet_helpers import ECHO_ID, ECHO_SCRIPT, StubPlaybook, StubStep
from lab_fixtures import ssh_host

from toolkit.errors import TransportError
from toolkit.rundir import load_run
from toolkit.runner import run_playbook
from toolkit.transports import create_transport


def _run(host, params=None, timeout=10.0):
    transport = create_transport(host)
    try:
        transport.open()
        return transport.run_script(ECHO_SCRIPT, params or {"Message": "hi"}, timeout=timeout)
    finally:
        transport.close()


def test_password_logon_and_utf8_parameters_as_json(lab) -> None:
    output = _run(ssh_host(lab, "good"), {"Message": "Grüße ✓ 'quoted' \"too\"", "Count": 3})
    assert not output.had_errors and output.errors == ()
    assert json.loads(output.stdout)["data"] == {"message": "Grüße ✓ 'quoted' \"too\"", "count": 3}
    backend = dict((s.name, b) for s, b in lab.hosts)["good"]
    assert backend.calls[-1] == {"Message": "Grüße ✓ 'quoted' \"too\"", "Count": 3}


def _with_key(host, key_file, password=None):
    return replace(host, credential=replace(host.credential, password=password, key_file=str(key_file)))


def test_key_logon(lab, tmp_path) -> None:
    assert '"count":1' in _run(_with_key(ssh_host(lab, "good"), lab.client_key_path)).stdout
    # a key the host does not know is refused as auth
    stranger = paramiko.ECDSAKey.generate(bits=256)
    stranger.write_private_key_file(str(tmp_path / "id_stranger"))
    with pytest.raises(TransportError) as caught:
        _run(_with_key(ssh_host(lab, "good"), tmp_path / "id_stranger"))
    assert caught.value.category == "auth"
    # an encrypted key without a passphrase is a configuration problem, said before connecting
    stranger.write_private_key_file(str(tmp_path / "id_locked"), password="key-passphrase-1")
    with pytest.raises(TransportError) as caught:
        _run(_with_key(ssh_host(lab, "good"), tmp_path / "id_locked"))
    assert caught.value.category == "config"


def test_wrong_password_and_auth_fault_are_auth(lab) -> None:
    for host in (ssh_host(lab, "good", password="wrong-password-5"), ssh_host(lab, "authfail")):
        with pytest.raises(TransportError) as caught:
            _run(host)
        assert caught.value.category == "auth"


def test_unknown_host_key_is_refused_by_default(lab, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError) as caught:
        _run(ssh_host(lab, "good", known_hosts=str(empty)))
    assert caught.value.category == "tls"
    assert "known_hosts" in caught.value.explanation
    assert '"count":1' in _run(ssh_host(lab, "good", known_hosts=str(empty), host_key_checking=False)).stdout
    assert empty.read_text() == ""  # an unchecked key is never saved


def test_changed_host_key_is_refused(lab, tmp_path) -> None:
    endpoint = lab.endpoints()["good"]
    other = paramiko.ECDSAKey.generate(bits=256)
    known = tmp_path / "known_hosts"
    known.write_text(f"[{endpoint['address']}]:{endpoint['ssh_port']} {other.get_name()} {other.get_base64()}\n")
    with pytest.raises(TransportError) as caught:
        _run(ssh_host(lab, "good", known_hosts=str(known)))
    assert caught.value.category == "tls"
    assert "does NOT match" in caught.value.explanation


def test_refused_port_is_connect(lab) -> None:
    with pytest.raises(TransportError) as caught:
        _run(ssh_host(lab, "refused"))
    assert caught.value.category == "connect"


def test_script_error_arrives_as_readable_text(lab) -> None:
    output = _run(ssh_host(lab, "scripterr"))
    assert output.had_errors
    assert any("Cannot find path" in e for e in output.errors)
    assert not any("CLIXML" in e or "<Objs" in e for e in output.errors)


def test_slow_script_times_out(lab) -> None:
    transport = create_transport(ssh_host(lab, "slow"))
    transport.open()
    try:
        with pytest.raises(TransportError) as caught:
            transport.run_script(ECHO_SCRIPT, {"Message": "slow"}, timeout=1.0)
        assert caught.value.category == "timeout"
        assert '"message":"fast"' in transport.run_script(ECHO_SCRIPT, {"Message": "fast"}, timeout=10).stdout
    finally:
        transport.close()


def test_fleet_sweep_over_ssh(lab, tmp_path, catalog) -> None:
    names = ["good", "good2", "latency", "authfail", "refused", "garbage", "reset"]
    hosts = [ssh_host(lab, n) for n in names]
    playbook = StubPlaybook("ssh-sweep", [StubStep(ECHO_ID, {"Count": 5}, timeout=10)])
    summary = run_playbook(playbook, hosts, out_dir=tmp_path / "run", params={}, concurrency=4, catalog=catalog)
    got = {h.host: (h.status, h.error.category if h.error else None) for h in summary.hosts}
    assert got == {"good": ("ok", None), "good2": ("ok", None), "latency": ("ok", None),
                   "authfail": ("failed", "auth"), "refused": ("failed", "connect"),
                   "garbage": ("failed", "contract"), "reset": ("failed", "connect")}
    run = load_run(tmp_path / "run")
    assert run.hosts["good2"].envelopes[ECHO_ID]["data"]["count"] == 5
    assert run.hosts["good2"].transport == "ssh"
