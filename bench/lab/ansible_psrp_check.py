"""Optional: Ansible's ``psrp`` connection plugin (ansible-core + pypsrp) against lab hosts.

Usage: .venv/bin/python bench/lab/ansible_psrp_check.py [--hosts 5] [--ansible /path/to/bin/ansible]

Starts a LabServer (HTTP with NTLM + message encryption, and HTTPS with the lab CA), writes an INI
inventory and runs the ``raw`` module through the psrp connection. ``win_ping`` needs Ansible's
PowerShell exec wrapper, which the lab's echo backend deliberately does not model. ansible-core is not a
project dependency: install it anywhere (e.g. a throw-away venv with ansible-core and pypsrp) and point
``--ansible`` at its ``ansible`` executable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from toolkit.lab.backend import LabHostSpec  # noqa: E402
from toolkit.lab.server import LabServer  # noqa: E402
from toolkit.lab.ssh.powershell_standin import EchoBackend  # noqa: E402

USER, PASSWORD = "LAB\\ansible", "Ansible-Passw0rd!"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--ansible", default=shutil.which("ansible") or "")
    args = parser.parse_args()
    if not args.ansible or not Path(args.ansible).exists():
        print("ansible not found: pass --ansible /path/to/venv/bin/ansible (pip install ansible-core pypsrp)")
        return 2

    with tempfile.TemporaryDirectory() as state:
        specs = [
            (
                LabHostSpec(
                    name=f"ans{i:02d}",
                    address=f"127.81.0.{i + 1}",
                    fqdn=f"ans{i:02d}.lab.test",
                    http_port=0,
                    https_port=0,
                    ssh_port=0,
                    users={USER: PASSWORD},
                ),
                EchoBackend(f"ans{i:02d}"),
            )
            for i in range(args.hosts)
        ]
        with LabServer(specs, state_dir=Path(state), ssh=False) as lab:
            lines = ["[lab]"]
            for index, (name, endpoint) in enumerate(sorted(lab.endpoints().items())):
                https = index % 2 == 1  # half over HTTPS with CA validation, half over encrypted HTTP
                lines.append(
                    f"{name} ansible_host={endpoint['address']} "
                    f"ansible_psrp_port={endpoint['https_port'] if https else endpoint['http_port']} "
                    f"ansible_psrp_protocol={'https' if https else 'http'}"
                    + (f" ansible_psrp_ca_cert={lab.ca_cert_path}" if https else "")
                )
            lines += [
                "[lab:vars]",
                "ansible_connection=psrp",
                "ansible_psrp_auth=negotiate",
                f"ansible_user={USER}",
                f"ansible_password={PASSWORD}",
                "ansible_psrp_ignore_proxy=true",
            ]
            inventory = Path(state) / "inventory.ini"
            inventory.write_text("\n".join(lines) + "\n")
            env = dict(
                os.environ,
                ANSIBLE_HOST_KEY_CHECKING="False",
                ANSIBLE_FORKS="5",
                ANSIBLE_NOCOLOR="1",
                ANSIBLE_DEPRECATION_WARNINGS="False",
            )
            started = time.perf_counter()
            # -o: one line per host, "<host> | CHANGED | rc=0 | (stdout) <text>"
            run = subprocess.run(
                [args.ansible, "-i", str(inventory), "lab", "-o", "-m", "raw", "-a", "# lab-echo echo"],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            elapsed = time.perf_counter() - started
    ok = 0
    for line in run.stdout.splitlines():
        match = re.match(r"^(\S+) \| (\w+) \| rc=(\d+) \| \(stdout\) (.*)$", line)
        if match is None:
            print(line[:300])
            continue
        host, status, rc, stdout = match.groups()
        try:
            answer = json.loads(stdout.replace("\\n", "\n").strip())
        except ValueError:
            answer = {}
        good = rc == "0" and answer.get("host") == host
        ok += good
        print(f"{host}: {status} rc={rc} {'OK' if good else stdout[:200]}")
    if run.returncode not in (0, 2) or run.stderr.strip():
        print(run.stderr[-2000:])
    print(json.dumps({"hosts": args.hosts, "ok": ok, "wall_s": round(elapsed, 2)}))
    return 0 if ok == args.hosts else 1


if __name__ == "__main__":
    sys.exit(main())
