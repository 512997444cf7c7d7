"""Read a bundle the same way whether it is a run directory or its exported zip."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path, PurePosixPath

from toolkit.errors import InputError


class BundleSource:
    """The files of a bundle by POSIX path relative to its root."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.is_zip = self.path.is_file()
        self._zip: zipfile.ZipFile | None = None
        if self.is_zip:
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise InputError(f"not a run directory or a bundle zip: {exc}", path=str(self.path)) from None
        elif not self.path.is_dir():
            raise InputError("no such run directory or bundle zip", path=str(self.path))

    def names(self) -> list[str]:
        if self._zip is not None:
            return sorted(n for n in self._zip.namelist() if not n.endswith("/"))
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())

    def exists(self, name: str) -> bool:
        if self._zip is not None:
            return name in self._zip.NameToInfo
        return (self.path / PurePosixPath(name)).is_file()

    def read_bytes(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / PurePosixPath(name)).read_bytes()

    def digest(self, name: str) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        handle = self._zip.open(name) if self._zip is not None else open(self.path / PurePosixPath(name), "rb")
        with handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
