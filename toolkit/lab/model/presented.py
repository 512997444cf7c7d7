"""What a simulated host's files look like to the target-side core: Windows paths mapped to local folders.

Drive ``files/C`` is ``C:\\``, ``files/UNC`` is ``\\\\``. When the fleet's time is shifted (docs/lab-fleet.md,
"Time"), log folders are presented as IIS would have written them ``shift`` later: every ``*.log`` of a
folder is rewritten once (``toolkit.lab.model.logs.rebucket_daily``), and every Failed Request Tracing file
``fr*.xml`` gets its ``SystemTime`` stamps moved by ``shift``, into a private temporary folder, which is
mounted over the original folder. The core then reads files whose contents, names and sizes match the
presented clock; nothing of the host's own files is changed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

from toolkit.lab.model import logs as logmod

#: Environment variables as a host with system drive C: expands them.
HOST_VARIABLES = {"SystemDrive": "C:", "SystemRoot": "C:\\Windows", "windir": "C:\\Windows",
                  "ProgramData": "C:\\ProgramData", "ProgramFiles": "C:\\Program Files"}


class PresentedFiles:
    def __init__(self, root: Path, shift: dt.timedelta) -> None:
        self.root = root
        self.shift = shift
        self._lock = threading.Lock()
        self._mounts: list[tuple[str, str]] | None = None
        self._certificates: tuple[str, list[str]] | None = None

    def mounts(self) -> list[tuple[str, str]]:
        with self._lock:
            if self._mounts is None:
                self._mounts = self._build()
            return list(self._mounts)

    def certificates(self, host_dir: Path, bindings: Any) -> tuple[str, list[str]]:
        """The host's certificate stores re-issued ``shift`` later, in a private folder, and HTTP.sys's SSL
        table naming them (``toolkit.lab.certstore.present``); made once."""
        from toolkit.lab.certstore import present

        with self._lock:
            if self._certificates is None:
                scratch = Path(tempfile.mkdtemp(prefix="iisfleet-lab-certstore-"))
                weakref.finalize(self, shutil.rmtree, scratch, True)
                self._certificates = (str(scratch), present(host_dir, bindings, self.shift, scratch))
            return self._certificates[0], list(self._certificates[1])

    def _build(self) -> list[tuple[str, str]]:
        mounts: list[tuple[str, str]] = []
        if not self.root.is_dir():
            return mounts
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir():
                continue
            if entry.name.upper() == "UNC":
                mounts.append(("\\\\", str(entry)))
            elif len(entry.name) == 1 and entry.name.isalpha():
                mounts.append((f"{entry.name.upper()}:\\", str(entry)))
        if self.shift:
            mounts += self._shifted_log_folders()
        return mounts

    def _shifted_log_folders(self) -> list[tuple[str, str]]:
        scratch = Path(tempfile.mkdtemp(prefix="iisfleet-lab-presented-"))
        weakref.finalize(self, shutil.rmtree, scratch, True)
        mounts = []
        for number, (current, dirs, names) in enumerate(sorted(os.walk(self.root))):
            logs = sorted(name for name in names if name.lower().endswith(".log"))
            traces = sorted(name for name in names if name.lower().startswith("fr") and name.lower().endswith(".xml"))
            if not logs and not traces:
                continue
            folder = Path(current)
            raw = [(name, (folder / name).read_bytes().decode("utf-8-sig", "replace")) for name in logs]
            target = scratch / str(number)
            target.mkdir()
            for name, text in logmod.rebucket_daily(raw, self.shift):
                (target / name).write_bytes(text.encode("utf-8"))
            for name in traces:
                text = shift_system_times((folder / name).read_bytes().decode("utf-8", "replace"), self.shift)
                (target / name).write_bytes(text.encode("utf-8"))
            # Everything else in the folder stays visible through the mount, unchanged.
            for name in [*dirs, *(n for n in names if n not in logs and n not in traces)]:
                os.symlink(folder / name, target / name)
            mounts.append((_windows_path(folder.relative_to(self.root).parts), str(target)))
        return mounts


def shift_system_times(text: str, shift: dt.timedelta) -> str:
    """Move every ``SystemTime="...Z"`` stamp of a FREB trace by ``shift`` (sub-second digits kept)."""
    def move(match: re.Match[str]) -> str:
        raw = match.group(2)
        try:
            when = dt.datetime.fromisoformat(raw[:19]) + shift
        except ValueError:
            return match.group(0)
        return f'{match.group(1)}{when.strftime("%Y-%m-%dT%H:%M:%S")}{raw[19:]}"'
    return re.sub(r'(SystemTime=")([0-9T:.\-]+Z)"', move, text)


def _windows_path(parts: tuple[str, ...]) -> str:
    if parts and parts[0].upper() == "UNC":
        return "\\\\" + "\\".join(parts[1:])
    return f"{parts[0].upper()}:\\" + "\\".join(parts[1:])
