"""A real Samba AD DC for the directory tests (one per test run, shared by the tests marked samba).

The DC's ports and winbindd socket are machine-wide, so the DC holds an exclusive flock on
/run/lock/iisfleet-samba-dc.lock while it lives: two pytest runs on one machine take turns instead of
colliding. It is stopped, and the lock released, right after the last test of this directory (not at
the end of the whole session), so another run waits only for these tests. A provision template is
cached under the temp directory (provision ~9 s, copy ~0.1 s): the DC is up and seeded in about 4 s.
"""

from __future__ import annotations

import contextlib
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


class _DomainController:
    """The lab DC of this test session: started on first use, stopped (and the machine-wide lock released) as
    soon as the last test of this directory has run, not at the end of the whole session."""

    def __init__(self) -> None:
        self.stack: contextlib.ExitStack | None = None
        self.domain: LabDomain | None = None
        self.saved_env: dict[str, str | None] = {}

    def get(self) -> LabDomain:
        if self.domain is not None:
            return self.domain
        from toolkit.lab.addc import SambaDC, available, exclusive_lock

        why = available()
        if why:
            pytest.skip(f"Samba AD DC not available here: {why}")
        root = Path(tempfile.gettempdir()) / "iisfleet-samba"
        root.mkdir(exist_ok=True)
        stack = contextlib.ExitStack()
        stack.enter_context(exclusive_lock())
        try:
            workdir = Path(tempfile.mkdtemp(prefix="dc-", dir=root))
            workdir.rmdir()  # SambaDC wants to create it
            dc = SambaDC(workdir, template_root=root / "templates")
            stack.callback(dc.stop)
            dc.start()
            seeded = dc.seed(yaml.safe_load(DOMAIN_SPEC.read_text()))
        except BaseException:
            stack.close()
            raise
        self.saved_env = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5CCNAME")}
        os.environ["KRB5_CONFIG"] = str(dc.krb5_conf)
        self.stack, self.domain = stack, LabDomain(dc, seeded)
        return self.domain

    def close(self) -> None:
        if self.stack is None:
            return
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stack, self.stack, self.domain = self.stack, None, None
        stack.close()


_CONTROLLER = _DomainController()
_HERE = Path(__file__).parent


def pytest_runtest_teardown(item, nextitem) -> None:
    """After this directory's last test, stop the DC so other test runs on the machine get the lock."""
    if nextitem is None or Path(str(nextitem.fspath)).parent != _HERE:
        _CONTROLLER.close()


@pytest.fixture(scope="session")
def lab_domain() -> Iterator[LabDomain]:
    yield _CONTROLLER.get()
    _CONTROLLER.close()
