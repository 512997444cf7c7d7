"""The target side's structured refusal becomes a host error of category `environment` naming the fix."""

from __future__ import annotations

import json

import pytest

from toolkit.collectors import load_catalog
from toolkit.contract import validate_envelope
from toolkit.errors import HostError


def _refusal(target: str, message: str = "the session cannot run this") -> str:
    return json.dumps({"schema": "iisfleet.collector/1", "collector": "Get-IisConfig",
                       "version": load_catalog()["Get-IisConfig"].version, "host": "WEB01",
                       "time_utc": "2026-12-04T19:00:00Z", "data": {},
                       "errors": [{"probe": "environment", "target": target, "category": "environment",
                                   "message": message}]})


@pytest.mark.parametrize("target, fix_words", [
    ("ConstrainedLanguage", "policy"),
    ("NoLanguage", "jea: true"),
    ("not-elevated", "LocalAccountTokenFilterPolicy"),
    ("no-security-log", "Event Log Readers"),
    ("PowerShell-version", "Management Framework 5.1"),
    ("core-not-loaded", "hosts check"),
    ("something-new", "hosts check"),
])
def test_each_refusal_names_its_fix(target, fix_words) -> None:
    with pytest.raises(HostError) as caught:
        validate_envelope(_refusal(target), collector=load_catalog()["Get-IisConfig"], host="web01")
    assert caught.value.category == "environment"
    assert target in caught.value.message
    assert fix_words in (caught.value.explanation or "")


def test_host_text_in_a_refusal_is_capped_and_flattened() -> None:
    with pytest.raises(HostError) as caught:
        validate_envelope(_refusal("x" * 500 + "\n\x1b[31m", "line one\nline two " + "y" * 1000),
                          collector=load_catalog()["Get-IisConfig"], host="web01")
    assert "\n" not in caught.value.message and "\x1b" not in caught.value.message
    assert len(caught.value.message) < 450
