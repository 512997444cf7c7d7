"""What ``iisfleet analyze`` reads from a sealed bundle (a run directory with manifest.json and custody.jsonl,
or its exported zip, already unpacked by :func:`toolkit.bundle.opened_bundle`).

Per host folder ``hosts/<host>/`` (the folder name decodes to the server name, ``toolkit.rundir``):

* raw artefacts (docs/coord RAW_ARTEFACTS layout): ``artefacts/w3c/...`` and ``artefacts/httperr/...`` log
  files, ``artefacts/evtx/*.evtx`` event logs exported on the host;
* the collectors' log excerpts, ``Get-IisW3CLog.json`` / ``Get-IisHttpErrLog.json`` (each file's excerpt blob),
  used only for a host without raw logs of that kind, so a line is never counted twice.

Excerpts are written to ``scratch`` (a folder the caller removes) under ``<host>/<kind>/<file name>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from toolkit.errors import InputError

LOG_KINDS = {"w3c": "Get-IisW3CLog", "httperr": "Get-IisHttpErrLog"}


@dataclass
class BundleInputs:
    logs: list[tuple[Path, str]] = field(default_factory=list)  # (file or folder, server)
    event_files: list[Path] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def is_bundle(path: Path) -> bool:
    """A sealed run directory, or a zip (an exported bundle is the only zip analyze reads)."""
    import zipfile

    from toolkit.bundle.custody import CUSTODY_FILE
    from toolkit.bundle.manifest import MANIFEST_FILE

    if path.is_dir():
        return (path / MANIFEST_FILE).is_file() and (path / CUSTODY_FILE).is_file()
    return path.is_file() and path.suffix.lower() == ".zip" and zipfile.is_zipfile(path)


def bundle_inputs(root: Path, scratch: Path) -> BundleInputs:
    from toolkit.contract import decode_blob
    from toolkit.rundir import host_from_dir_name

    found = BundleInputs()
    hosts_root = root / "hosts"
    for folder in sorted(p for p in hosts_root.iterdir() if p.is_dir()) if hosts_root.is_dir() else []:
        server = host_from_dir_name(folder.name)
        found.hosts.append(server)
        raw = folder / "artefacts"
        for kind, collector in LOG_KINDS.items():
            if (raw / kind).is_dir() and any(p.is_file() and not p.name.endswith((".partial", ".refused", ".state"))
                                             for p in (raw / kind).rglob("*")):
                found.logs.append((raw / kind, server))
                continue
            envelope_path = folder / f"{collector}.json"
            if not envelope_path.is_file():
                continue
            try:
                envelope = json.loads(envelope_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read {collector}'s answer: {exc}", path=str(envelope_path)) from None
            target = scratch / folder.name / kind
            for index, item in enumerate((envelope.get("data") or {}).get("files") or []):
                blob = item.get("excerpt") if isinstance(item, dict) else None
                if not blob:
                    continue
                name = PureWindowsPath(str(item.get("path") or f"excerpt{index}.log")).name or f"excerpt{index}.log"
                target.mkdir(parents=True, exist_ok=True)
                (target / f"{index:04d}").mkdir(exist_ok=True)  # one folder each: the file keeps its IIS name
                (target / f"{index:04d}" / name).write_bytes(decode_blob(blob))
            if target.is_dir():
                found.logs.append((target, server))
        if (raw / "evtx").is_dir():
            found.event_files.extend(sorted(p for p in (raw / "evtx").rglob("*.evtx") if p.is_file()))
    return found
