"""Export a sealed run as a reproducible zip, and open a bundle (directory or zip) for reading.

The zip holds ``manifest.json`` and ``custody.jsonl`` at its root and every file the manifest lists, in
sorted order, each with the same timestamp (1980-01-01 00:00, the zip format's earliest) and mode
0644, deflated: the same run gives the same bytes. ``OUT.zip.sha256`` beside it holds the zip's SHA-256
in ``sha256sum`` format. The export is then recorded in the run directory's custody log (after the zip
was written, so the zip holds the log as it was).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from toolkit.bundle.custody import CUSTODY_FILE, append_entry
from toolkit.bundle.manifest import MANIFEST_FILE, file_digest
from toolkit.bundle.verify import verify_bundle
from toolkit.errors import InputError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
#: Refuse to unpack more than this from a zip handed to `iisfleet report` (a zip bomb stays harmless).
MAX_UNPACKED_BYTES = 64 << 30


def _member(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the mode below is read as one
    info.external_attr = FILE_MODE << 16
    info.file_size = size
    return info


def export_bundle(run_dir: Path, out_zip: Path) -> str:
    """Write ``out_zip`` and ``out_zip.sha256`` from a sealed run directory; return the zip's SHA-256.

    Raises ``InputError`` when the run is not sealed or does not verify (damaged evidence is never
    exported as if it were whole).
    """
    run_dir, out_zip = Path(run_dir), Path(out_zip)
    verification = verify_bundle(run_dir)
    if not verification.ok:
        raise InputError(f"the run does not verify ({len(verification.problems)} problems, first: "
                         f"{verification.problems[0]}); run `iisfleet bundle verify` for the list", path=str(run_dir))
    manifest = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    names = sorted({MANIFEST_FILE, CUSTODY_FILE, *(item["path"] for item in manifest["files"])})
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_zip.name}.", suffix=".tmp", dir=out_zip.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for name in names:
                path = run_dir / PurePosixPath(name)
                size = path.stat().st_size
                with open(path, "rb") as src, archive.open(_member(name, size), "w",
                                                           force_zip64=size >= 1 << 31) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, out_zip)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    digest = file_digest(out_zip)[0]
    out_zip.with_name(out_zip.name + ".sha256").write_text(f"{digest}  {out_zip.name}\n", encoding="utf-8")
    append_entry(run_dir, "export", zip=out_zip.name, zip_sha256=digest, files=len(names))
    return digest


@contextlib.contextmanager
def opened_bundle(path: Path) -> Iterator[Path]:
    """A run directory as it is, or an exported zip unpacked into a temporary folder removed afterwards."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a run directory or a bundle zip: {exc}", path=str(path)) from None
    with archive, tempfile.TemporaryDirectory(prefix="iisfleet-bundle-") as folder:
        root = Path(folder)
        total = 0
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.is_dir():
                continue
            if not parts or info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
                raise InputError(f"unsafe member name {info.filename!r} in the zip", path=str(path))
            total += info.file_size
            if total > MAX_UNPACKED_BYTES:
                raise InputError("the zip unpacks to more than 64 GiB; not a bundle iisfleet wrote", path=str(path))
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        yield root
