"""A read-only, case-insensitive view of one host's ``files/`` tree under Windows path names.

``files/C/inetpub/wwwroot/web.config`` is ``C:\\inetpub\\wwwroot\\web.config``; ``files/UNC/fs01/content/x``
is ``\\\\fs01\\content\\x``. Windows compares paths case-insensitively, so lookups do too.
"""

from __future__ import annotations

import os
from pathlib import Path


def normalise(windows_path: str) -> str:
    """Canonical lower-case key: backslashes, no trailing separator, ``%SystemDrive%`` expanded."""
    text = expand(windows_path).replace("/", "\\")
    while text.endswith("\\") and len(text) > 3:
        text = text[:-1]
    return text.lower()


def expand(windows_path: str) -> str:
    """Expand the environment variables IIS configs use (as the host would, for a C: system drive)."""
    replacements = {"%systemdrive%": "C:", "%systemroot%": "C:\\Windows", "%windir%": "C:\\Windows"}
    lowered = windows_path.lower()
    for token, value in replacements.items():
        while token in lowered:
            index = lowered.index(token)
            windows_path = windows_path[:index] + value + windows_path[index + len(token):]
            lowered = windows_path.lower()
    return windows_path


class HostFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, tuple[str, Path]] = {}  # key -> (display path, local path)
        self._dirs: dict[str, str] = {}  # key -> display path
        if root.is_dir():
            for current, dirnames, filenames in os.walk(root):
                rel = Path(current).relative_to(root).parts
                display = self._display(rel)
                if display:
                    self._dirs[display.lower()] = display
                for name in filenames:
                    path = f"{display}\\{name}" if display else name
                    self._files[path.lower()] = (path, Path(current) / name)

    @staticmethod
    def _display(parts: tuple[str, ...]) -> str:
        if not parts:
            return ""
        if parts[0].upper() == "UNC":
            return "\\\\" + "\\".join(parts[1:]) if len(parts) > 1 else ""
        head = f"{parts[0].upper()}:"
        return head + "\\" + "\\".join(parts[1:]) if len(parts) > 1 else head + "\\"

    def file(self, windows_path: str) -> tuple[str, Path] | None:
        """(path as stored, local path) of a file, or None."""
        return self._files.get(normalise(windows_path))

    def is_dir(self, windows_path: str) -> bool:
        key = normalise(windows_path)
        return key in self._dirs or (len(key) == 3 and key.endswith(":\\") and key in self._dirs)

    def exists(self, windows_path: str) -> bool:
        return self.file(windows_path) is not None or self.is_dir(windows_path)

    def files_under(self, windows_dir: str, *, max_depth: int | None = None) -> list[tuple[str, Path]]:
        """Files below a folder (depth 0 = directly in it), sorted by path."""
        prefix = normalise(windows_dir).rstrip("\\") + "\\"
        found = []
        for key, (display, local) in self._files.items():
            if key.startswith(prefix):
                depth = key[len(prefix):].count("\\")
                if max_depth is None or depth <= max_depth:
                    found.append((display, local))
        return sorted(found)

    def subdirs(self, windows_dir: str) -> list[str]:
        prefix = normalise(windows_dir).rstrip("\\") + "\\"
        return sorted(display for key, display in self._dirs.items()
                      if key.startswith(prefix) and "\\" not in key[len(prefix):])
