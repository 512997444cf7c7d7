"""Seal a run directory: one manifest per host, one for the run, and the first custody entry.

Every file of the run (``run.json``, ``log.jsonl``, every ``hosts/<host>/*.json``) is listed with its
SHA-256 and size. ``report/`` is left out: it is derived output that ``iisfleet report --write-all``
rewrites at will, and any report can be rebuilt from the sealed evidence. Each host manifest also lists
the artefacts inside that host's envelopes (a log excerpt, a web.config, a trace) with the host-side
path, the size and the SHA-256 the target computed before sending (docs/contracts.md §1.2).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.bundle.custody import CUSTODY_FILE, append_entry, controller_identity
from toolkit.rundir import write_json_atomic

MANIFEST_FILE = "manifest.json"
#: Host manifests live apart from hosts/<host>/, whose *.json files are the collector envelopes.
HOST_MANIFEST_DIR = "manifests"
RUN_MANIFEST_SCHEMA = "iisfleet.bundle/1"
HOST_MANIFEST_SCHEMA = "iisfleet.bundle-host/1"
#: Not part of the sealed evidence: the seal itself and derived output.
UNSEALED_TOP = frozenset({MANIFEST_FILE, CUSTODY_FILE, "report"})
_IDENTITY_KEYS = ("computer_name", "fqdn", "domain", "os_caption", "os_version", "os_build")


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def sealed_paths(run_dir: Path) -> list[str]:
    """Every file the manifests cover, as sorted POSIX paths relative to ``run_dir``."""
    found = []
    for path in run_dir.rglob("*"):
        relative = path.relative_to(run_dir)
        if relative.parts[0] in UNSEALED_TOP or not path.is_file() or path.name.endswith(".tmp"):
            continue
        found.append(relative.as_posix())
    return sorted(found)


def iter_blobs(value: Any, where: str = "data") -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(field path, the object holding the blob, the blob) for each blob in an envelope's data."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_blobs(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and {"encoding", "content", "bytes"} <= item.keys():
                yield f"{where}.{key}", value, item
            else:
                yield from iter_blobs(item, f"{where}.{key}")


def blob_artefacts(collector: str, data: Any) -> Iterator[dict[str, Any]]:
    """Each blob in an envelope's data, with the host-side path of the object holding it."""
    for where, holder, blob in iter_blobs(data):
        host_path = holder.get("path")
        yield {"collector": collector, "field": where, "host_path": host_path if isinstance(host_path, str) else None,
               "bytes": blob.get("bytes"), "truncated": bool(blob.get("truncated", False)),
               "sha256": blob.get("sha256") if isinstance(blob.get("sha256"), str) else None}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _events(run_dir: Path) -> list[dict[str, Any]]:
    log_path = run_dir / "log.jsonl"
    found = []
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line of a killed run
            if isinstance(event, dict):
                found.append(event)
    return found


def _host_times(events: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    times: dict[str, dict[str, str]] = {}
    for event in events:
        if event.get("event") in ("host_started", "host_finished", "host_skipped"):
            key = "started_utc" if event["event"] == "host_started" else "finished_utc"
            times.setdefault(str(event.get("host")), {})[key] = event.get("time_utc")
    return times


def _identity(host_doc: dict[str, Any], fact: Any) -> dict[str, Any]:
    address = str(host_doc.get("address") or "")
    try:
        ip = str(ipaddress.ip_address(address))
    except ValueError:
        ip = None  # a name: not resolved here, so sealing never waits on DNS
    identity: dict[str, Any] = {"address": address, "ip": ip, "transport": host_doc.get("transport")}
    data = fact.get("data") if isinstance(fact, dict) else None
    for key in _IDENTITY_KEYS:
        identity[key] = data.get(key) if isinstance(data, dict) else None
    return identity


def _raw_artefacts(run_dir: Path, folder: Path) -> list[dict[str, Any]]:
    """Every raw file the host streamed (toolkit.artefacts), from the receiver's index: host path, size,
    the host's and the controller's SHA-256, times, owner, and whether it arrived whole."""
    from toolkit.artefacts import ARTEFACT_DIR, read_index

    artefact_dir = folder / ARTEFACT_DIR
    listed = []
    for record in read_index(artefact_dir).values():
        listed.append({"path": (artefact_dir / record["path"]).relative_to(run_dir).as_posix(),
                       **{key: record.get(key) for key in ("kind", "host_path", "size", "sha256", "controller_sha256",
                                                            "created_utc", "modified_utc", "accessed_utc", "owner",
                                                            "status", "reason")}})
    return sorted(listed, key=lambda item: item["path"])


def _host_manifest(run_dir: Path, folder: Path, times: dict[str, dict[str, str]]) -> dict[str, Any]:
    host_doc = _read_json(folder / "host.json")
    host_doc = host_doc if isinstance(host_doc, dict) else {}
    files, artefacts = [], []
    for path in sorted(folder.glob("*.json")):
        digest, size = file_digest(path)
        files.append({"path": path.relative_to(run_dir).as_posix(), "sha256": digest, "size": size})
        if path.name != "host.json":
            envelope = _read_json(path)
            if isinstance(envelope, dict):
                artefacts.extend(dict(a, file=files[-1]["path"])
                                 for a in blob_artefacts(path.stem, envelope.get("data")))
    name = str(host_doc.get("host", folder.name))
    return {"schema": HOST_MANIFEST_SCHEMA, "host": name,
            "identity": _identity(host_doc, _read_json(folder / "Get-HostFact.json")),
            "status": host_doc.get("status"), "started_utc": times.get(name, {}).get("started_utc"),
            "finished_utc": times.get(name, {}).get("finished_utc"), "files": files, "artefacts": artefacts,
            "raw_artefacts": _raw_artefacts(run_dir, folder)}


def seal_run(run_dir: Path) -> dict[str, Any]:
    """Write every host manifest and the run manifest, then the custody log's ``collection`` entry.

    Returns the run manifest. Called when the run has written its last file; again when ``run --resume``
    finished it, which appends a ``resumption`` entry recording the new manifest's hash (the chain goes on).
    """
    run_dir = Path(run_dir)
    meta = _read_json(run_dir / "run.json")
    meta = meta if isinstance(meta, dict) else {}
    events = _events(run_dir)
    times = _host_times(events)
    refused = [{key: event.get(key) for key in ("host", "collector", "field", "host_path", "reason")}
               for event in events if event.get("event") == "integrity_refused"]
    hosts = []
    hosts_root = run_dir / "hosts"
    for folder in sorted(p for p in hosts_root.iterdir() if p.is_dir()) if hosts_root.is_dir() else []:
        host_manifest = _host_manifest(run_dir, folder, times)
        name = host_manifest["host"]
        host_manifest["refused"] = [item for item in refused if item["host"] == name]
        manifest_path = run_dir / HOST_MANIFEST_DIR / f"{folder.name}.json"
        write_json_atomic(manifest_path, host_manifest)
        hosts.append({"host": name, "manifest": manifest_path.relative_to(run_dir).as_posix(),
                      "identity": host_manifest["identity"]})
    files = []
    for relative in sealed_paths(run_dir):
        digest, size = file_digest(run_dir / relative)
        files.append({"path": relative, "sha256": digest, "size": size})
    manifest = {"schema": RUN_MANIFEST_SCHEMA, "collector": "iisfleet", "iisfleet_version": __version__,
                "playbook": meta.get("playbook"), "parameters": meta.get("parameters"),
                "inventory": meta.get("inventory"), "simulated": meta.get("simulated"),
                "status": meta.get("status"), "started_utc": meta.get("started_utc"),
                "finished_utc": meta.get("finished_utc"), **controller_identity(),
                "hosts": hosts, "files": files}
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)
    digest, _size = file_digest(run_dir / MANIFEST_FILE)
    action = "resumption" if (run_dir / CUSTODY_FILE).is_file() else "collection"
    append_entry(run_dir, action, manifest_sha256=digest, files=len(files), hosts=len(hosts),
                 playbook=meta.get("playbook"), refused=refused)
    return manifest
