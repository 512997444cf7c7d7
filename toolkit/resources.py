"""The one loader for bundled files: ``ps_scripts/`` and ``playbooks/``.

In a wheel both folders are shipped inside the package (see ``pyproject.toml``); in a source checkout
or an editable install they sit at the repository root. Nothing else in iisfleet knows where they live.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _bundled(folder: str) -> Traversable:
    packaged = resources.files("toolkit").joinpath(folder)
    if packaged.is_dir():
        return packaged
    checkout = _REPO_ROOT / folder
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"bundled folder {folder!r} is missing from this installation")


def ps_scripts_dir() -> Traversable:
    """The folder of bundled collectors (``Get-*.ps1`` + sidecar ``Get-*.yml``)."""
    return _bundled("ps_scripts")


def playbooks_dir() -> Traversable:
    """The folder of bundled playbooks (``*.yml``)."""
    return _bundled("playbooks")
