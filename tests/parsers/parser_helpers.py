"""Shared helpers for the parser tests (imported as a plain module, like tests/fleet/fleet_helpers.py): fixture folders, the shared conformance files, and a tiny
path language for expected.yml files (``anonymous.source.line``, ``handlers[0].name``, ``len(rules)``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "parsers"
#: Public samples whose licence does not allow copying them into the repository are read in place.
SHARED_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"


def shared_file(relative: str) -> Path:
    """A file under ../shared/conformance, or skip the test when the checkout does not have it."""
    path = SHARED_CONFORMANCE / relative
    if not path.is_file():
        pytest.skip(f"shared conformance file not available: {relative}")
    return path


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def case_dirs(kind: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / kind).iterdir() if p.is_dir() and (p / "expected.yml").is_file())


_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def resolve(obj: Any, expression: str) -> Any:
    """Evaluate ``a.b[0].c`` or ``len(a.b)`` against records (attributes, mappings, sequences)."""
    if expression.startswith("len(") and expression.endswith(")"):
        return len(resolve(obj, expression[4:-1]))
    current = obj
    for part in expression.split("."):
        match = _STEP.fullmatch(part)
        if not match:
            raise AssertionError(f"bad expression {expression!r}")
        name, indexes = match.groups()
        current = current[name] if isinstance(current, dict) else getattr(current, name)
        for index in re.findall(r"\[(\d+)\]", indexes):
            current = current[int(index)]
    return current


def normalise(value: Any) -> Any:
    if isinstance(value, tuple):
        return [normalise(v) for v in value]
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def check_expectations(obj: Any, expect: dict[str, Any], label: str) -> None:
    for expression, wanted in expect.items():
        got = normalise(resolve(obj, expression))
        assert got == wanted, f"{label}: {expression} is {got!r}, expected {wanted!r}"
