"""`--limit` patterns, driven by fixtures/limits.yml (add a case there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from toolkit.errors import UsageError
from toolkit.inventory import load_inventory

FIXTURES = Path(__file__).parent / "fixtures"

_SPEC = yaml.safe_load((FIXTURES / "limits.yml").read_text())


@pytest.mark.parametrize("case", _SPEC["cases"], ids=lambda c: str(c["limit"]))
def test_limit(case: dict[str, Any]) -> None:
    inventory = load_inventory(FIXTURES / _SPEC["inventory"], environ={})
    if "error" in case:
        with pytest.raises(UsageError, match=case["error"].replace("(", r"\(").replace(")", r"\)")):
            inventory.match(case["limit"])
    else:
        assert [h.name for h in inventory.match(case["limit"])] == case["hosts"]
