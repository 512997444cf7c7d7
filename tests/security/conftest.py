"""Hostile-input tests share the fleet tests' in-memory transport and stand-in playbooks."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "fleet"))
sys.path.insert(0, str(HERE))
