"""The package foundation: the bundled-file loader, secret masking, the CLI entry points."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
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


def _can_compile_extensions() -> bool:
    """Whether a wheel built here must contain the C extension (the build hook falls back when it cannot)."""
    if os.environ.get("IISFLEET_NO_NATIVE", "").strip() not in ("", "0"):
        return False
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "").split()
    if not cc:  # e.g. Windows/MSVC: no way to probe here, so do not demand the extension
        return False
    # What the hook needs: a compiler that runs and finds the Python headers (gcc/clang syntax check only).
    try:
        probe = subprocess.run([*cc, "-x", "c", "-fsyntax-only", f"-I{sysconfig.get_path('include')}", "-"],
                               input="#include <Python.h>\n", capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return probe.returncode == 0


@pytest.mark.slow
def test_wheel_ships_collectors_and_playbooks_and_finds_them_installed(tmp_path: Path) -> None:
    """Build the real wheel, install it apart from the checkout, and load the bundled files from it."""
    repo, dist = Path(__file__).resolve().parents[1], tmp_path / "dist"

    def pip_wheel(*isolation: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(dist)]
        return subprocess.run([*command, str(repo)], capture_output=True, text=True, timeout=300)

    # Build in this venv only when it has the whole backend: hatchling, plus setuptools, which the build hook
    # uses to compile toolkit.logs._scan (without it the hook would quietly produce a pure-Python wheel).
    build = None
    if all(importlib.util.find_spec(name) for name in ("hatchling", "setuptools")):
        build = pip_wheel("--no-build-isolation")
    if build is None or (build.returncode != 0 and "hatchling" in build.stderr):  # isolate
        build = pip_wheel()
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("iisfleet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "toolkit/ps_scripts/Get-IisConfig.ps1" in names and "toolkit/ps_scripts/Get-IisConfig.yml" in names
    assert "toolkit/playbooks/triage-401.yml" in names
    # The target-side C# core travels with the package (sent to hosts), and so does the lab's harness.
    assert "toolkit/ps_scripts/core/Json.cs" in names and "toolkit/lab/targethost/Harness.cs" in names
    # The optional C extension: shipped (in a platform-tagged wheel) whenever this machine can compile it;
    # otherwise the hook must have fallen back to a pure-Python py3-none-any wheel.
    native = f"toolkit/logs/_scan{sysconfig.get_config_var('EXT_SUFFIX')}"
    if _can_compile_extensions():
        assert native in names, f"{wheel.name} lacks {native}; `pip wheel -v .` shows the build hook's warning"
    has_native = native in names
    assert wheel.name.endswith("-py3-none-any.whl") is not has_native, wheel.name

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = ("from toolkit.resources import ps_scripts_dir, playbooks_dir\n"
             "from toolkit.collectors import load_catalog\n"
             "from toolkit.playbooks import load_playbook\n"
             "print(ps_scripts_dir()); print(playbooks_dir())\n"
             "print(len(load_catalog()), load_playbook('triage-401').name)\n"
             "from toolkit.targetcore import core_source; from toolkit.lab.model.corehost import harness_sources\n"
             "print(len(core_source().version), len(harness_sources()) > 0)\n")
    if has_native:
        probe += "import toolkit.logs._scan as scan; print(scan.__file__)\n"
    # Run from outside the checkout with only the installed copy on the path (dependencies from this venv).
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    scripts, playbooks, summary, core, *scan = out.stdout.strip().splitlines()
    assert scripts.startswith(str(target)) and playbooks.startswith(str(target))
    # the installed copy finds every collector of the checkout
    assert summary == f"{len(list((repo / 'ps_scripts').glob('Get-*.ps1')))} triage-401" and core == "16 True"
    if has_native:
        assert scan == [str(target / native)], scan
