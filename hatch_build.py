"""Hatchling build hook: compile the optional C accelerator ``toolkit.logs._scan``.

The extension is optional by design: ``toolkit.logs`` falls back to pure Python when ``_scan`` cannot be
imported, so a build that cannot compile it (no C compiler, no Python headers, no setuptools under
``--no-build-isolation``, or ``IISFLEET_NO_NATIVE=1``) must still succeed. It then prints one warning line
to stderr and produces exactly what it produced before this hook existed: a pure-Python (py3-none-any) wheel.

- Standard wheel (``pip wheel .``): compile into a private temporary directory and force-include the
  result as ``toolkit/logs/_scan<EXT_SUFFIX>``; the wheel is tagged for this interpreter and platform.
- Editable install (``pip install -e .``): the package is imported straight from the checkout, so the
  module is compiled *in place*, next to ``_scan.c``. Re-run the install after editing ``_scan.c``.

Compilation goes through setuptools' ``build_ext`` (a build requirement in pyproject.toml) because it
already knows how this interpreter wants extensions built on every platform: compiler and flags from
sysconfig, the CC/CFLAGS/LDSHARED overrides, the include dirs, the EXT_SUFFIX, and MSVC on Windows.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "toolkit.logs._scan"
SOURCE = Path("toolkit", "logs", "_scan.c")
OPT_OUT_ENV = "IISFLEET_NO_NATIVE"

# Optimise and show warnings, minus two -Wextra warnings that the CPython C API idioms trigger by design:
# every C function receives `self` (METH_NOARGS ones also an always-NULL argument) whether it uses it or not,
# and PyModuleDef/PyMethodDef/PyType tables are conventionally initialised with their trailing fields omitted.
UNIX_FLAGS = ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
MSVC_FLAGS = ["/O2", "/W3"]


def _warn(reason: str) -> None:
    # One line, so it stays readable in pip's build log (pip shows backend output with -v or on failure).
    reason = " ".join(reason.split()) or "unknown error"
    print(f"iisfleet: WARNING: not building the optional C extension {MODULE} ({reason}); "
          "installing the pure-Python fallback instead.", file=sys.stderr, flush=True)


class ScanExtensionHook(BuildHookInterface):
    PLUGIN_NAME = "custom"
    _tmp: str | None = None  # scratch directory of the current build, removed in finalize()

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        # Only wheels carry compiled code (the hook is configured on the wheel target; the check keeps it
        # harmless if someone ever wires it to another target). The sdist ships _scan.c and this file instead.
        if self.target_name != "wheel":
            return
        editable = version == "editable"
        root = Path(self.root)

        skip = self._skip_reason(root)
        built = None if skip else self._compile(root)
        if built is None:
            if skip:
                _warn(skip)
            if editable:
                # A module left over from an earlier editable build would shadow the fallback and could be
                # stale against the current _scan.c; the install must match what the warning just said.
                self._remove_in_place(root)
            return  # build_data untouched: the wheel stays pure Python, exactly as before.

        if editable:
            # The editable wheel only puts the checkout on sys.path: the module must sit in the source tree.
            # Copy then rename: os.replace is atomic, and a process that has the old .so mapped keeps its
            # (unlinked) copy instead of crashing on a file rewritten under it.
            target = root / SOURCE.parent / built.name
            staging = target.with_name(f".{target.name}.tmp")
            shutil.copy2(built, staging)
            os.replace(staging, target)
            # An editable wheel holds no compiled code, so its default py3-none-any tag stays correct.
        else:
            # .gitignore keeps any in-place build out of hatchling's file walk; this adds the fresh one.
            build_data["force_include"][str(built)] = f"{SOURCE.parent.as_posix()}/{built.name}"
            build_data["pure_python"] = False  # Root-Is-Purelib: false, installs into platlib
            build_data["infer_tag"] = True  # e.g. cp311-cp311-linux_x86_64 instead of py3-none-any

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        # The force-included file is only read while the wheel is written, which is over by now.
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @staticmethod
    def _skip_reason(root: Path) -> str | None:
        if os.environ.get(OPT_OUT_ENV, "").strip() not in ("", "0"):
            return f"{OPT_OUT_ENV} is set"
        if not (root / SOURCE).is_file():
            return f"{SOURCE.as_posix()} not found"
        return None

    def _compile(self, root: Path) -> Path | None:
        """Build the extension in a fresh temporary directory; return the module file, or None on failure."""
        try:
            # Imported here, not at the top: without setuptools (possible with --no-build-isolation) the build
            # must degrade to pure Python like any other missing tool, not crash on import of this file.
            from setuptools import Distribution, Extension
            from setuptools.command.build_ext import build_ext
        except ImportError as exc:
            _warn(f"setuptools is not available in the build environment: {exc}")
            return None

        self._tmp = tempfile.mkdtemp(prefix="iisfleet-scan-")
        ext = Extension(MODULE, sources=[str(root / SOURCE)],
                        extra_compile_args=MSVC_FLAGS if os.name == "nt" else UNIX_FLAGS)
        cmd = build_ext(Distribution({"name": "iisfleet", "ext_modules": [ext]}))
        # Absolute paths everywhere, so the result does not depend on the directory the frontend runs us from.
        cmd.build_lib = os.path.join(self._tmp, "lib")
        cmd.build_temp = os.path.join(self._tmp, "obj")
        cmd.inplace = False
        try:
            cmd.ensure_finalized()
            cmd.run()
            built = Path(cmd.get_ext_fullpath(MODULE))
        except Exception as exc:  # noqa: BLE001 - any failure (CompileError, LinkError, missing cc...) degrades
            first = str(exc).strip().splitlines()
            _warn(f"{type(exc).__name__}: {first[0] if first else 'no details'}")
            return None
        if not built.is_file():  # defensive: build_ext reported success but produced nothing
            _warn(f"the compiler produced no {built.name}")
            return None
        return built

    @staticmethod
    def _remove_in_place(root: Path) -> None:
        # Only the names this interpreter would import; builds for other Pythons in the same checkout stay.
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            (root / SOURCE.with_suffix(suffix)).unlink(missing_ok=True)
