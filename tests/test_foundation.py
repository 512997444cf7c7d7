"""The package foundation: the bundled-file loader, secret masking, the CLI entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_wheel_ships_collectors_and_playbooks_and_finds_them_installed(tmp_path: Path) -> None:
    """Build the real wheel, install it apart from the checkout, and load the bundled files from it."""
    repo = Path(__file__).resolve().parents[1]
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(repo)], capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "hatchling" in build.stderr:  # no build backend in this venv: isolate
        build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                                str(tmp_path / "dist"), str(repo)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("iisfleet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "toolkit/ps_scripts/Get-IisConfig.ps1" in names and "toolkit/ps_scripts/Get-IisConfig.yml" in names
    assert "toolkit/playbooks/triage-401.yml" in names

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = ("from toolkit.resources import ps_scripts_dir, playbooks_dir\n"
             "from toolkit.collectors import load_catalog\n"
             "from toolkit.playbooks import load_playbook\n"
             "print(ps_scripts_dir()); print(playbooks_dir())\n"
             "print(len(load_catalog()), load_playbook('triage-401').name)\n")
    # Run from outside the checkout with only the installed copy on the path (dependencies from this venv).
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    scripts, playbooks, summary = out.stdout.strip().splitlines()
    assert scripts.startswith(str(target)) and playbooks.startswith(str(target))
    assert summary == "9 triage-401"
