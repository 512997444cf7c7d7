"""The bundled collectors as the lab sees them: id → (version, exact script text).

Uses ``toolkit.collectors.load_catalog()`` when it is importable; otherwise reads ``ps_scripts/*.ps1``
with the same rule (id = file name, version from the ``# collector-id: <Id>/<n>`` marker line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from toolkit.resources import ps_scripts_dir

MARKER = re.compile(r"^[ \t]*#[ \t]*collector-id:[ \t]*([A-Za-z0-9_.-]+)/([0-9]+)[ \t]*$", re.MULTILINE)


def normalise_text(text: str) -> str:
    """Compare scripts the way transports may alter them: CRLF → LF, a BOM and trailing space dropped."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").strip()


@dataclass(frozen=True)
class BundledCollector:
    id: str
    version: int
    script: str
    collector: Any = None  # toolkit.collectors.Collector when available (used to bind parameters)


def find_marker(script: str) -> tuple[str, int] | None:
    match = MARKER.search(normalise_text(script))
    return (match.group(1), int(match.group(2))) if match else None


def load_bundled() -> dict[str, BundledCollector]:
    try:
        from toolkit.collectors import load_catalog  # type: ignore[attr-defined]
    except ImportError:
        load_catalog = None
    if load_catalog is not None:
        return {cid: BundledCollector(id=cid, version=int(c.version), script=c.script, collector=c)
                for cid, c in load_catalog().items()}
    bundled: dict[str, BundledCollector] = {}
    for entry in ps_scripts_dir().iterdir():
        if not entry.name.endswith(".ps1") or entry.name.startswith("_"):
            continue
        text = entry.read_text(encoding="utf-8-sig")
        marker = find_marker(text)
        cid = entry.name[:-4]
        if marker and marker[0] == cid:
            bundled[cid] = BundledCollector(id=cid, version=marker[1], script=text)
    return bundled
