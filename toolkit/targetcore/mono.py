"""Compile and run C# here with Mono, the way a Windows host's ``Add-Type`` would compile it.

``mcs -langversion:5`` accepts C# 5 only (what Windows PowerShell's in-box compiler takes), and the
program is compiled against Mono's *reference* assemblies for .NET Framework 4.5 (``4.5-api``), so an
API newer than 4.5 fails here as it would on a Server 2012 R2 host. Warnings are errors.

Builds are cached by the hash of their inputs in a per-user temporary folder, so a test session, the
lab and the benchmarks compile each distinct source once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from toolkit.errors import ToolkitError
from toolkit.targetcore.source import REFERENCES, core_source

#: What the README and CI install to get these tools (Debian package names).
MONO_PACKAGES = "mono-mcs mono-runtime mono-devel"
_API_DIR = Path("/usr/lib/mono/4.5-api")
COMPILER_FLAGS = ("-langversion:5", "-sdk:4.5", "-warnaserror", "-nostdlib", f"-lib:{_API_DIR}",
                  "-r:mscorlib.dll", "-optimize+", "-nologo")


class MonoUnavailable(ToolkitError):
    """Mono's compiler, runtime or the .NET 4.5 reference assemblies are not installed here."""

    category = "config"


class CompileError(ToolkitError):
    """mcs rejected the source; ``output`` holds its messages (file and line thanks to ``#line``)."""

    category = "config"

    def __init__(self, message: str, *, output: str) -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class MonoTools:
    mcs: str
    mono: str


def mono_tools() -> MonoTools:
    """The tools, or MonoUnavailable saying what is missing and how to install it."""
    mcs, mono = shutil.which("mcs"), shutil.which("mono")
    missing = [name for name, path in (("mcs", mcs), ("mono", mono)) if path is None]
    if not (_API_DIR / "mscorlib.dll").is_file():
        missing.append(f"the .NET 4.5 reference assemblies ({_API_DIR})")
    if missing or mcs is None or mono is None:
        raise MonoUnavailable(f"Mono is not usable here: missing {', '.join(missing)}; "
                              f"install it with `apt-get install {MONO_PACKAGES}`")
    return MonoTools(mcs=mcs, mono=mono)


def cache_dir() -> Path:
    """Per-user build cache (``IISFLEET_TARGETCORE_CACHE`` overrides it)."""
    override = os.environ.get("IISFLEET_TARGETCORE_CACHE")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(override) if override else Path(tempfile.gettempdir()) / f"iisfleet-targetcore-{uid}"


def compile_assembly(sources: Sequence[tuple[str, str]], *, name: str,
                     target: Literal["library", "exe"] = "library",
                     references: Sequence[str] = REFERENCES) -> Path:
    """Compile (file name, text) pairs into one assembly; return its path (cached by content).

    Texts that do not start with a ``#line`` directive get one, so messages name the file.
    """
    tools = mono_tools()
    texts = [text if text.startswith("#line") else f'#line 1 "{file}"\n{text}\n#line default\n'
             for file, text in sources]
    flags = [*COMPILER_FLAGS, *(f"-r:{ref}" for ref in references), f"-target:{target}"]
    digest = hashlib.sha256("\0".join([*flags, *texts]).encode("utf-8")).hexdigest()[:24]
    suffix = ".exe" if target == "exe" else ".dll"
    output = cache_dir() / digest / f"{name}{suffix}"
    if output.is_file():
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as scratch:
        source_path = Path(scratch, f"{name}.cs")
        source_path.write_text("\n".join(texts), encoding="utf-8")
        built = Path(scratch, output.name)
        result = subprocess.run([tools.mcs, *flags, f"-out:{built}", str(source_path)],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0 or not built.is_file():
            messages = (result.stdout + result.stderr).strip()
            raise CompileError(f"mcs rejected {name}: {messages.splitlines()[0] if messages else 'no output'}",
                               output=messages)
        os.replace(built, output)  # atomic: a concurrent session sees the whole file or none
    return output


def compile_core() -> Path:
    """The bundled core as a library (what Add-Type would load on a host)."""
    source = core_source()
    return compile_assembly([("core.cs", source.text)], name=f"IisFleet.Target.{source.version}")


def mono_command(program: Path, *args: str) -> list[str]:
    """The command line that runs a compiled program under Mono."""
    return [mono_tools().mono, "--gc=sgen", str(program), *args]
