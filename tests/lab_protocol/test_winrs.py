"""The WinRS cmd shell path: pypsrp WinRS/Process and pywinrm ``Session.run_ps``/``run_cmd``."""

from __future__ import annotations

import json

import pytest
import winrm
from pypsrp.client import Client
from pypsrp.shell import Process, WinRS
from pypsrp.wsman import WSMan

from .conftest import DOMAIN_USER, OTHER_PASSWORD, PASSWORD, Lab, bootstrap_command, encoded, plain_http


def connection(lab: Lab, host: str = "web01") -> WSMan:
    return WSMan(**plain_http(lab, host))


def test_encoded_command_runs_and_returns_oem_stdout(lab: Lab) -> None:
    with WinRS(connection(lab)) as shell:
        process = Process(
            shell,
            "powershell.exe",
            ["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded("# lab-echo lines 2\n")],
        )
        process.invoke()
    assert process.rc == 0
    assert process.stdout == b"line 0\r\nline 1\r\n"
    assert process.stderr == b""


def test_bootstrap_reads_json_from_stdin(lab: Lab) -> None:
    document = {"script": "# lab-echo echo\nparam($Site)\n", "parameters": {"Site": "Default Web Site"}}
    with WinRS(connection(lab)) as shell:
        process = Process(shell, bootstrap_command())
        process.begin_invoke()
        process.send(json.dumps(document).encode(), end=True)
        process.end_invoke()
    assert process.rc == 0, process.stderr
    assert json.loads(process.stdout.decode("utf-8"))["parameters"] == {"Site": "Default Web Site"}


def test_terminating_error_is_clixml_on_stderr_with_exit_code_1(lab: Lab) -> None:
    with WinRS(connection(lab)) as shell:
        process = Process(shell, "powershell.exe", ["-EncodedCommand", encoded("# lab-echo fail\n")])
        process.invoke()
    assert process.rc == 1
    assert process.stderr.startswith(b"#< CLIXML\r\n")
    assert "simulated terminating error on web01" in Client.sanitise_clixml(process.stderr.decode())


def test_cmd_line_limit_and_unknown_commands(lab: Lab) -> None:
    long_script = "# lab-echo echo\n" + "#" * 4000  # ~11,000 characters once encoded
    with WinRS(connection(lab)) as shell:
        too_long = Process(shell, "powershell.exe", ["-EncodedCommand", encoded(long_script)])
        too_long.invoke()
        unknown = Process(shell, "ipconfig.exe", ["/all"])
        unknown.invoke()
    assert too_long.rc == 1 and too_long.stderr == b"The command line is too long.\r\n"
    assert unknown.rc == 9009 and b"is not recognized as an internal or external command" in unknown.stderr


def test_pywinrm_run_ps_over_ntlm_with_encryption(lab: Lab) -> None:
    endpoint = lab.endpoint("web02")
    session = winrm.Session(
        f"http://{endpoint['address']}:{endpoint['http_port']}/wsman",
        auth=(DOMAIN_USER, PASSWORD),
        transport="ntlm",
        ca_trust_path=str(lab.server.ca_cert_path),
        message_encryption="always",
    )
    result = session.run_ps("# lab-echo lines 2\n")
    assert result.status_code == 0
    assert result.std_out == b"line 0\r\nline 1\r\n"
    failed = session.run_ps("# lab-echo fail\n")
    assert failed.status_code == 1 and b"simulated terminating error" in failed.std_err


def test_pywinrm_basic_over_https_with_lab_ca(lab: Lab) -> None:
    endpoint = lab.endpoint("web02")
    session = winrm.Session(
        f"https://{endpoint['address']}:{endpoint['https_port']}/wsman",
        auth=(DOMAIN_USER, PASSWORD),
        transport="basic",
        server_cert_validation="validate",
        ca_trust_path=str(lab.server.ca_cert_path),
    )
    result = session.run_cmd("hostname")
    assert result.status_code == 0 and result.std_out == b"WEB02\r\n"


def test_pywinrm_wrong_password(lab: Lab) -> None:
    endpoint = lab.endpoint("web02")
    session = winrm.Session(
        f"http://{endpoint['address']}:{endpoint['http_port']}/wsman",
        auth=(DOMAIN_USER, OTHER_PASSWORD),
        transport="ntlm",
        ca_trust_path=str(lab.server.ca_cert_path),
    )
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        session.run_ps("# lab-echo echo\n")
