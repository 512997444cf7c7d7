"""``verify_bundle``: every file against the manifests, the custody chain, nothing missing or extra.

Each problem is named: which file, and whether its content changed (a flipped byte), it is missing, it
was added, or which custody entry was edited or where the chain breaks. Works on a run directory and on
an exported zip alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.bundle.custody import CUSTODY_FILE, GENESIS, entry_hash, read_entries
from toolkit.bundle.manifest import MANIFEST_FILE, RUN_MANIFEST_SCHEMA, UNSEALED_TOP, iter_blobs
from toolkit.bundle.source import BundleSource
from toolkit.errors import InputError, ToolkitError

#: Custody actions that (re)seal the run and record the manifest's hash.
SEALING_ACTIONS = ("collection", "resumption")


@dataclass
class Problem:
    #: modified | missing | extra | artefact | manifest | custody-edited | custody-chain | zip-digest
    kind: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@dataclass
class Verification:
    bundle: str
    files_checked: int = 0
    artefacts_checked: int = 0
    custody_entries: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "ok": self.ok, "files_checked": self.files_checked,
                "artefacts_checked": self.artefacts_checked, "custody_entries": self.custody_entries,
                "problems": [asdict(p) for p in self.problems]}


def _json(source: BundleSource, name: str) -> Any:
    try:
        return json.loads(source.read_bytes(name).decode("utf-8"))
    except (OSError, ValueError, KeyError):
        return None


def _is_sealed_path(name: str) -> bool:
    return name.split("/", 1)[0] not in UNSEALED_TOP and not name.rsplit("/", 1)[-1].endswith(".tmp")


def _check_files(source: BundleSource, manifest: dict[str, Any], result: Verification) -> set[str]:
    """Hash every listed file; return the names that match their manifest entry."""
    intact: set[str] = set()
    listed = {}
    for item in manifest.get("files") or []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            listed[item["path"]] = item
    for name, item in sorted(listed.items()):
        if not source.exists(name):
            result.problems.append(Problem("missing", name, "listed in the manifest but not in the bundle"))
            continue
        digest, size = source.digest(name)
        result.files_checked += 1
        if digest == item.get("sha256") and size == item.get("size"):
            intact.add(name)
        elif size != item.get("size"):
            result.problems.append(Problem("modified", name, f"size {size} differs from the sealed {item.get('size')}"))
        else:
            result.problems.append(Problem("modified", name, "content changed (same size: altered bytes); "
                                           f"sha256 {digest} differs from the sealed {item.get('sha256')}"))
    for name in source.names():
        if _is_sealed_path(name) and name not in listed:
            result.problems.append(Problem("extra", name, "in the bundle but not in the manifest"))
    return intact


def _check_artefacts(source: BundleSource, intact: set[str], manifest: dict[str, Any],
                     result: Verification) -> None:
    """Decode every artefact whose host-side SHA-256 the manifest records and compare (intact files only:
    a changed file is already named)."""
    from toolkit.contract import decode_blob

    for host in manifest.get("hosts") or []:
        host_manifest = _json(source, host.get("manifest", "")) if isinstance(host, dict) else None
        if not isinstance(host_manifest, dict) or host.get("manifest") not in intact:
            continue
        by_file: dict[str, list[dict[str, Any]]] = {}
        for artefact in host_manifest.get("artefacts") or []:
            by_file.setdefault(artefact.get("file"), []).append(artefact)
        for name, artefacts in by_file.items():
            if name not in intact:
                continue
            envelope = _json(source, name) or {}
            envelope_data = envelope.get("data") if isinstance(envelope, dict) else None
            blobs = {where: blob for where, _holder, blob in iter_blobs(envelope_data)}
            for artefact in artefacts:
                if not artefact.get("sha256"):
                    continue
                result.artefacts_checked += 1
                blob = blobs.get(artefact["field"])
                if blob is None:
                    result.problems.append(Problem("artefact", name, f"{artefact['field']} is missing"))
                    continue
                try:
                    decode_blob(dict(blob, sha256=artefact["sha256"]), max_bytes=1 << 40)
                except ToolkitError as exc:
                    result.problems.append(Problem("artefact", name, f"{artefact.get('host_path') or artefact['field']}: "
                                                   f"{exc.message.rsplit(': ', 1)[-1]}"))


def _check_custody(source: BundleSource, manifest_digest: str | None, result: Verification) -> None:
    if not source.exists(CUSTODY_FILE):
        result.problems.append(Problem("custody-chain", CUSTODY_FILE, "the custody log is missing"))
        return
    entries = read_entries(source.read_bytes(CUSTODY_FILE).decode("utf-8", errors="replace"))
    result.custody_entries = len(entries)
    previous: str | None = GENESIS
    previous_seq: object = 0
    for index, entry in enumerate(entries, start=1):
        where = f"{CUSTODY_FILE} entry {index}"
        if not isinstance(entry, dict):
            result.problems.append(Problem("custody-edited", where, "not a JSON object"))
            previous = previous_seq = None
            continue
        if entry.get("sha256") != entry_hash(entry):
            result.problems.append(Problem("custody-edited", where,
                                           f"its content does not match its hash (action {entry.get('action')!r})"))
        if previous is not None and entry.get("prev_sha256") != previous:
            result.problems.append(Problem("custody-chain", where, "does not hold the previous entry's hash "
                                           "(an entry before it was removed, inserted or reordered)"))
        expected_seq = previous_seq + 1 if isinstance(previous_seq, int) else index
        if entry.get("seq") != expected_seq:
            result.problems.append(Problem("custody-chain", where, f"numbered {entry.get('seq')!r} after "
                                           f"{previous_seq!r}: an entry is missing or out of order"))
        previous_seq = entry.get("seq")
        previous = entry.get("sha256") if isinstance(entry.get("sha256"), str) else None
    first = entries[0] if entries else None
    # the manifest in force is the one the last sealing recorded: the collection, or a later resumption
    sealings = [e for e in entries if isinstance(e, dict) and e.get("action") in SEALING_ACTIONS]
    if not isinstance(first, dict) or first.get("action") != "collection":
        result.problems.append(Problem("custody-chain", f"{CUSTODY_FILE} entry 1", "the first entry is not the collection"))
    elif manifest_digest is not None and (sealings[-1].get("details") or {}).get("manifest_sha256") != manifest_digest:
        result.problems.append(Problem("manifest", MANIFEST_FILE, "changed after sealing: its hash differs from "
                                       f"the one the {sealings[-1].get('action')} entry of the custody log recorded"))


def _check_detached_digest(path: Path, result: Verification) -> None:
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return
    from toolkit.bundle.manifest import file_digest

    recorded = sidecar.read_text(encoding="utf-8", errors="replace").split(maxsplit=1)
    if not recorded or recorded[0].lower() != file_digest(path)[0]:
        result.problems.append(Problem("zip-digest", path.name, f"does not match {sidecar.name}"))


def verify_bundle(path: Path) -> Verification:
    """Check a sealed run directory or an exported zip. Raises ``InputError`` when ``path`` is no bundle
    at all (no manifest); every other fault is a ``Problem`` in the result."""
    source = BundleSource(path)
    try:
        result = Verification(bundle=str(path))
        manifest = _json(source, MANIFEST_FILE)
        if not isinstance(manifest, dict) or manifest.get("schema") != RUN_MANIFEST_SCHEMA:
            if not source.exists(MANIFEST_FILE) and not source.exists(CUSTODY_FILE):
                raise InputError(f"not a sealed bundle (no {MANIFEST_FILE}): runs sealed by iisfleet carry one",
                                 path=str(path))
            result.problems.append(Problem("manifest", MANIFEST_FILE, "missing or not an iisfleet.bundle/1 document"))
            manifest, digest = {}, None
        else:
            digest = source.digest(MANIFEST_FILE)[0]
        intact = _check_files(source, manifest, result)
        _check_artefacts(source, intact, manifest, result)
        _check_custody(source, digest, result)
        if source.is_zip:
            _check_detached_digest(Path(path), result)
        return result
    finally:
        source.close()
