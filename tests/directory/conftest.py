"""A real Samba AD DC for the directory tests (one per test module, shared by its tests marked samba).

The DC's ports and winbindd socket are machine-wide, so the fixture holds an exclusive flock on
/run/lock/iisfleet-samba-dc.lock while its DC lives: two pytest runs on one machine take turns instead
of colliding. Module scope keeps that lock short (the few seconds a module's tests need), not the whole
length of another run's session. A provision template is cached under the temp directory (provision
~9 s, copy ~0.1 s), so each module's DC is up and seeded in about 4 s.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

DOMAIN_SPEC = Path(__file__).parents[1] / "fixtures" / "directory" / "domain.yml"
PASSWORD = "Lab!Passw0rd-1"


class LabDomain:
    def __init__(self, dc, seeded: dict) -> None:
        self.dc = dc
        self.seeded = seeded
        self.ip = dc.spec.ip
        self.realm = dc.spec.realm
        self.netbios = dc.spec.netbios
        self.dns = dc.spec.dns_domain
        self.dc_fqdn = dc.spec.dc_fqdn
        self.ca = str(dc.ca_file)
        self.dir = dc.dir

    def kinit(self, user: str, password: str = PASSWORD, *, name: str | None = None) -> str:
        """A ticket cache for ``user`` (MIT kinit, like an admin would); returns its FILE: name."""
        cache = f"FILE:{self.dir / ('krb5cc_' + (name or user))}"
        env = dict(os.environ, KRB5_CONFIG=str(self.dc.krb5_conf), KRB5CCNAME=cache)
        done = subprocess.run(["kinit", f"{user}@{self.realm}"], input=password + "\n", text=True, env=env,
                              capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"kinit {user}: {done.stderr.strip()}")
        return cache


@pytest.fixture(scope="module")
def lab_domain() -> Iterator[LabDomain]:
    from toolkit.lab.addc import SambaDC, available, exclusive_lock

    why = available()
    if why:
        pytest.skip(f"Samba AD DC not available here: {why}")
    root = Path(tempfile.gettempdir()) / "iisfleet-samba"
    root.mkdir(exist_ok=True)
    with exclusive_lock():
        workdir = Path(tempfile.mkdtemp(prefix="dc-", dir=root))
        workdir.rmdir()  # SambaDC wants to create it
        dc = SambaDC(workdir, template_root=root / "templates")
        dc.start()
        try:
            seeded = dc.seed(yaml.safe_load(DOMAIN_SPEC.read_text()))
            old = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5CCNAME")}
            os.environ["KRB5_CONFIG"] = str(dc.krb5_conf)
            yield LabDomain(dc, seeded)
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        finally:
            dc.stop()
