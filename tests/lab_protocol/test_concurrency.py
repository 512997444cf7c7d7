"""Several hosts driven at once, each by its own client (pypsrp clients must not be shared)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from .conftest import DOMAIN_USER, PASSWORD, Lab, bootstrap_command, ssh_connect

HOSTS = ["web01", "web02", "web03", "plain"]


def sweep_winrm(lab: Lab, host: str, https: bool) -> list[dict]:
    endpoint = lab.endpoint(host)
    connection = WSMan(
        endpoint["address"],
        port=endpoint["https_port" if https else "http_port"],
        ssl=https,
        username=DOMAIN_USER,
        password=PASSWORD,
        no_proxy=True,
        cert_validation=str(lab.server.ca_cert_path),
    )
    answers = []
    with RunspacePool(connection) as pool:
        for run in range(3):
            ps = PowerShell(pool)
            ps.add_script("# lab-echo slow 0.2\n").add_parameters({"run": run, "host": host})
            answers.append(json.loads(ps.invoke()[0]))
    return answers


def sweep_ssh(lab: Lab, host: str) -> dict:
    client = ssh_connect(lab, host)
    try:
        stdin, stdout, _ = client.exec_command(bootstrap_command(), timeout=10)
        stdin.write(json.dumps({"script": "# lab-echo slow 0.2\n", "parameters": {"host": host}}))
        stdin.channel.shutdown_write()
        return json.loads(stdout.read())
    finally:
        client.close()


def test_hosts_in_parallel_over_winrm_http_https_and_ssh(lab: Lab) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        http = {h: pool.submit(sweep_winrm, lab, h, False) for h in HOSTS}
        https = {h: pool.submit(sweep_winrm, lab, h, True) for h in HOSTS}
        ssh = {h: pool.submit(sweep_ssh, lab, h) for h in HOSTS}
        for futures in (http, https):
            for host, future in futures.items():
                answers = future.result(timeout=60)
                assert [a["parameters"] for a in answers] == [{"run": n, "host": host} for n in range(3)]
                assert {a["host"] for a in answers} == {host}
        for host, future in ssh.items():
            answer = future.result(timeout=60)
            assert answer["host"] == host and answer["parameters"] == {"host": host}
