"""Refuse, on arrival, every artefact whose bytes differ from the SHA-256 the host computed.

The target-side core hashes each blob's bytes before encoding (docs/contracts.md §1.2). On arrival the
controller decodes every blob that carries a digest and compares; a mismatching file is refused: the
list entry holding it (a log file, a trace, a web.config) is dropped, a top-level one (applicationHost.config,
the secedit export) becomes null, and an ``integrity`` error in the envelope's ``errors`` names it. The
rest of the envelope is kept. The runner logs each refusal, and sealing copies them into the custody log's
collection entry.
"""

from __future__ import annotations

from typing import Any

from toolkit.errors import ToolkitError

_REFUSED = object()


def _is_blob(value: Any) -> bool:
    return isinstance(value, dict) and {"encoding", "content", "bytes"} <= value.keys()


def _check(value: Any, where: str, refused: list[dict[str, Any]], holder_path: str | None) -> Any:
    """``value``, or ``_REFUSED`` when it is (or holds) a blob that fails its digest."""
    from toolkit.contract import decode_blob

    if isinstance(value, list):
        value[:] = [item for index, item in enumerate(value)
                    if _check(item, f"{where}[{index}]", refused, None) is not _REFUSED]
        return value
    if not isinstance(value, dict):
        return value
    if _is_blob(value):
        if not isinstance(value.get("sha256"), str):
            return value
        try:
            decode_blob(value, max_bytes=1 << 40)
        except ToolkitError as exc:
            refused.append({"field": where, "host_path": holder_path, "reason": exc.message.rsplit(": ", 1)[-1]})
            return _REFUSED
        return value
    own_path = value.get("path") if isinstance(value.get("path"), str) else None
    for key, item in value.items():
        if _check(item, f"{where}.{key}", refused, own_path) is _REFUSED:
            return _REFUSED
    return value


def refuse_damaged_blobs(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """Drop from ``envelope`` (in place) every file whose blob fails its host-side SHA-256; return what
    was refused as ``{field, host_path, reason}``."""
    data = envelope.get("data")
    refused: list[dict[str, Any]] = []
    if not isinstance(data, dict):
        return refused
    for key in list(data):
        if _check(data[key], f"data.{key}", refused, None) is _REFUSED:
            data[key] = None
    errors = envelope.setdefault("errors", [])
    for item in refused:
        errors.append({"probe": "integrity", "target": item["host_path"] or item["field"], "category": "other",
                       "message": f"refused on arrival: {item['reason']}"})
    return refused
