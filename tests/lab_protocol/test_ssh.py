"""paramiko against the lab's simulated Windows OpenSSH: bootstrap, cmd.exe semantics, host keys."""

from __future__ import annotations

import json

import paramiko
import pytest

from .conftest import DOMAIN_USER, LOCAL_USER, OTHER_PASSWORD, PASSWORD, Lab, bootstrap_command, encoded
from .conftest import ssh_connect as connect


def execute(client: paramiko.SSHClient, command: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    channel_in, out, err = client.exec_command(command, timeout=10)
    if stdin is not None:
        channel_in.write(stdin)
        channel_in.channel.shutdown_write()
    data, errors = out.read(), err.read()
    return out.channel.recv_exit_status(), data, errors


def test_banner_looks_like_windows_openssh(lab: Lab) -> None:
    client = connect(lab)
    try:
        assert client.get_transport().remote_version == "SSH-2.0-OpenSSH_for_Windows_8.1"
    finally:
        client.close()


def test_bootstrap_over_ssh_runs_script_with_parameters(lab: Lab) -> None:
    document = {
        "script": "# lab-echo echo\nparam($Site, $Max)\n",
        "parameters": {"Site": "Intranet", "Max": 7},
    }
    client = connect(lab)
    try:
        code, out, err = execute(client, bootstrap_command(), json.dumps(document).encode())
    finally:
        client.close()
    assert code == 0 and err == b""
    lines = out.decode("utf-8").splitlines()
    assert json.loads(lines[0])["parameters"] == {"Site": "Intranet", "Max": 7}


def test_bootstrap_terminating_error_and_bad_input(lab: Lab) -> None:
    client = connect(lab)
    try:
        failed = execute(client, bootstrap_command(), json.dumps({"script": "# lab-echo fail\n"}).encode())
        garbage = execute(client, bootstrap_command(), b"not json")
    finally:
        client.close()
    assert (
        failed[0] == 1 and failed[2].startswith(b"#< CLIXML") and b"simulated terminating error" in failed[2]
    )
    assert garbage[0] == 1 and garbage[2].startswith(b"#< CLIXML")


def test_cmd_exe_limit_applies_to_encoded_command_but_not_to_stdin(lab: Lab) -> None:
    script = "# lab-echo echo\n" + "# padding\n" * 450  # ~4.5 KB: too long once encoded
    command = "powershell.exe -NoProfile -NonInteractive -EncodedCommand " + encoded(script)
    assert len(command) > 8191
    client = connect(lab)
    try:
        too_long = execute(client, command)
        via_stdin = execute(client, bootstrap_command(), json.dumps({"script": script}).encode())
    finally:
        client.close()
    assert too_long == (1, b"", b"The command line is too long.\r\n")
    assert via_stdin[0] == 0 and json.loads(via_stdin[1])["script_length"] == len(script)


def test_command_minus_reads_script_from_stdin(lab: Lab) -> None:
    client = connect(lab)
    try:
        code, out, _ = execute(client, "powershell -NoProfile -Command -", b"# lab-echo lines 2\n")
    finally:
        client.close()
    assert code == 0 and out == b"line 0\r\nline 1\r\n"


def test_public_key_and_local_account_logons(lab: Lab) -> None:
    client = connect(lab, username=LOCAL_USER, password=None, pkey=lab.client_key)
    try:
        assert execute(client, "hostname") == (0, b"WEB01\r\n", b"")
    finally:
        client.close()


@pytest.mark.parametrize("user,password", [(DOMAIN_USER, OTHER_PASSWORD), ("nobody", PASSWORD)])
def test_wrong_credentials_are_refused(lab: Lab, user: str, password: str) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(lab, username=user, password=password).close()


def test_known_hosts_lists_every_listening_host_with_its_port(lab: Lab) -> None:
    text = lab.server.known_hosts_path.read_text()
    for endpoint in lab.server.endpoints().values():
        entry = f"[{endpoint['address']}]:{endpoint['ssh_port']} ecdsa-sha2-nistp256 "
        assert entry in text


def test_non_terminating_error_is_clixml_with_exit_code_0(lab: Lab) -> None:
    client = connect(lab)
    try:
        code, out, err = execute(
            client, bootstrap_command(), json.dumps({"script": "# lab-echo warn\n"}).encode()
        )
    finally:
        client.close()
    assert code == 0 and json.loads(out)["host"] == "web01"
    assert err.startswith(b"#< CLIXML") and b"simulated non-terminating error" in err
