"""`iisfleet lab serve --domain-controller` then `iisfleet run` with a Kerberos credential: the real KDC's
ticket logs on to the lab's WinRM; a wrong SPN fails with the KDC's own reason (marker ``samba``).

Runs the CLI as an admin would: generate a fleet, serve it with its domain (a Samba AD DC seeded from the
fleet's domain: section, machine-wide lock taken by the serve command itself), kinit the fleet's domain
account, run a playbook with ``kerberos: true``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.samba, pytest.mark.slow]
pytest.importorskip("gssapi", reason="python-gssapi is not installed (it needs libkrb5-dev to build)")
REPO = Path(__file__).parents[2]
IISFLEET = [sys.executable, "-m", "toolkit"]


def test_kerberos_run_against_a_served_lab_with_its_domain(tmp_path) -> None:
    from toolkit.lab.addc import available

    why = available()
    if why:
        pytest.skip(f"Samba AD DC not available here: {why}")
    fleet = tmp_path / "fleet"
    subprocess.run(IISFLEET + ["lab", "generate", "--scenario", "seed-catalog", str(fleet)], cwd=REPO, check=True,
                   capture_output=True, timeout=120)
    log = open(tmp_path / "serve.log", "w")
    serve = subprocess.Popen(IISFLEET + ["lab", "serve", str(fleet), "--port-base", "0", "--no-ssh",
                                         "--domain-controller"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 240  # includes waiting for another run's DC to go away (the lock)
        while "Press Ctrl-C" not in (tmp_path / "serve.log").read_text():
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "lab serve did not come up"
            time.sleep(0.5)
        model = yaml.safe_load((fleet / "fleet.yml").read_text())
        user = model["credentials"]["username"].split("\\")[-1]
        realm = model["domain"]["name"].upper()
        import re

        krb5_conf = re.search(r"KRB5_CONFIG=(\S+krb5\.conf)", (tmp_path / "serve.log").read_text()).group(1)
        env = {**os.environ, "KRB5_CONFIG": krb5_conf,
               "KRB5CCNAME": f"FILE:{tmp_path / 'ccache'}"}
        subprocess.run(["kinit", f"{user}@{realm}"], input=model["credentials"]["password"] + "\n", text=True,
                       env=env, check=True, capture_output=True, timeout=30)
        served = yaml.safe_load((fleet / "inventory.yml").read_text())["hosts"]["web01"]
        inventory = tmp_path / "kerberos.yml"
        inventory.write_text(yaml.safe_dump({
            "simulated": True,
            "defaults": {"transport": "winrm", "credential": "kerb",
                         "winrm": {"scheme": "http", "auth": "kerberos", "negotiate_service": "HTTP"}},
            "credentials": {"kerb": {"username": f"{user}@{realm}", "kerberos": True}},
            "hosts": {
                "web01": {"address": served["address"], "winrm": {
                    "port": served["winrm"]["port"], "negotiate_hostname_override": "web01.contoso.com"}},
                "wrongspn": {"address": served["address"], "winrm": {
                    "port": served["winrm"]["port"], "negotiate_hostname_override": "nosuch.contoso.com"}}}}))
        run = subprocess.run(IISFLEET + ["run", "health-sweep", "-i", str(inventory), "-o", str(tmp_path / "run"),
                                         "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        import json

        summary = json.loads(run.stdout)
        hosts = {h["host"]: h for h in summary["hosts"]}
        assert hosts["web01"]["status"] == "ok", hosts["web01"]
        assert hosts["wrongspn"]["status"] == "failed"
        error = json.dumps(hosts["wrongspn"])
        assert '"auth"' in error and "Server not found in Kerberos database" in error
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        log.close()
    assert "lab stopped" in (tmp_path / "serve.log").read_text()
