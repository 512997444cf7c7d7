"""Refuse, on arrival, every artefact whose bytes differ from the SHA-256 the host computed.

The target-side core hashes each blob's bytes before encoding (docs/contracts.md §1.2). On arrival the
controller decodes every blob that carries a digest and compares; a mismatching file is refused: the
list entry holding it (a log file, a trace, a web.config) is dropped, a top-level one (applicationHost.config,
the secedit export) becomes null, and an ``integrity`` error in the envelope's ``errors`` names it. The
rest of the envelope is kept. The runner logs each refusal, and sealing copies them into the host manifest
and the custody log's collection entry.

Only a digest mismatch is per file. A blob whose *shape* lies (a declared size over the cap or different
from what it decodes to, bad base64 or gzip, a compression bomb) is a hostile or broken answer, not a
damaged file: ``ContractError`` propagates and the whole envelope is refused, as for any contract failure
(tests/security/test_hostile_fleet.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

_REFUSED = object()


def _is_blob(value: Any) -> bool:
    return isinstance(value, dict) and {"encoding", "content", "bytes"} <= value.keys()


def blob_digest_matches(blob: dict[str, Any]) -> bool:
    """Whether a blob's decoded bytes hash to its ``sha256``. Raises ``ContractError`` for every other
    fault (shape, size, encoding), which the caller must treat as fatal for the envelope."""
    from toolkit.contract import iter_blob

    digest = hashlib.sha256()
    for piece in iter_blob({key: value for key, value in blob.items() if key != "sha256"}):
        digest.update(piece)
    return digest.hexdigest() == blob["sha256"]


def _check(value: Any, where: str, refused: list[dict[str, Any]], holder_path: str | None) -> Any:
    """``value``, or ``_REFUSED`` when it is (or holds) a blob that fails its digest."""
    if isinstance(value, list):
        value[:] = [item for index, item in enumerate(value)
                    if _check(item, f"{where}[{index}]", refused, None) is not _REFUSED]
        return value
    if not isinstance(value, dict):
        return value
    if _is_blob(value):
        if isinstance(value.get("sha256"), str) and not blob_digest_matches(value):
            refused.append({"field": where, "host_path": holder_path,
                            "reason": "blob content does not match its sha256; it was damaged on the way"})
            return _REFUSED
        return value
    own_path = value.get("path") if isinstance(value.get("path"), str) else None
    for key, item in value.items():
        if _check(item, f"{where}.{key}", refused, own_path) is _REFUSED:
            return _REFUSED
    return value


def refuse_damaged_blobs(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """Drop from ``envelope`` (in place) every file whose blob fails its host-side SHA-256; return what
    was refused as ``{field, host_path, reason}``.

    Raises:
        ContractError: a blob that lies about its size or does not decode (the envelope is refused).
    """
    data = envelope.get("data")
    refused: list[dict[str, Any]] = []
    if not isinstance(data, dict):
        return refused
    for key in list(data):
        if _check(data[key], f"data.{key}", refused, None) is _REFUSED:
            data[key] = None
    errors = envelope.setdefault("errors", [])
    for item in refused:
        errors.append(integrity_error(item["host_path"] or item["field"], f"refused on arrival: {item['reason']}"))
    return refused


def integrity_error(target: str, message: str) -> dict[str, Any]:
    """The envelope ``errors[]`` item naming one refused file (docs/contracts.md §1.1, probe ``integrity``)."""
    return {"probe": "integrity", "target": target, "category": "other", "message": message}
