"""The package foundation: the bundled-file loader, secret masking, the CLI entry points."""

from __future__ import annotations

import subprocess
import sys

from toolkit.resources import playbooks_dir, ps_scripts_dir
from toolkit.secrets import MASK, Secret, contains_known_secret, has_known_secrets, redact


def test_bundled_folders_are_found_from_a_checkout() -> None:
    assert ps_scripts_dir().is_dir()
    assert playbooks_dir().is_dir()


def test_secret_masks_itself_everywhere() -> None:
    secret = Secret("hunter2-but-longer")
    assert str(secret) == MASK
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-but-longer"
    assert redact("login failed for pw=hunter2-but-longer") == f"login failed for pw={MASK}"



def test_known_secrets_are_found_in_text_and_in_utf8_or_utf16_bytes() -> None:
    Secret("canary-Foundation-31")
    assert has_known_secrets()
    assert contains_known_secret("x=canary-Foundation-31;")
    assert contains_known_secret(b"<a password='canary-Foundation-31'/>")
    assert contains_known_secret("Password = canary-Foundation-31\r\n".encode("utf-16-le"))  # secedit exports
    assert not contains_known_secret("canary-Foundation-3")
    assert not contains_known_secret(b"canary-Foundation-3 and nothing else")


def test_python_dash_m_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "toolkit", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("iisfleet ")
