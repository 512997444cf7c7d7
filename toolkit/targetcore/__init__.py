"""The target-side C# core (``ps_scripts/core``) seen from the controller.

- ``source``: the core's source text as one compilation unit, and its version id (what a transport
  sends to a host for ``Add-Type``, and what the host's loader compares).
- ``mono``: compiling that text here with Mono's ``mcs`` (C# 5, .NET Framework 4.5 API, warnings as
  errors) and running programs built with it, for the tests, the benchmarks and the lab.
"""

from toolkit.targetcore.mono import (
    CompileError,
    MonoUnavailable,
    compile_assembly,
    compile_core,
    mono_tools,
)
from toolkit.targetcore.source import REFERENCES, CoreSource, core_source

__all__ = ["REFERENCES", "CompileError", "CoreSource", "MonoUnavailable", "compile_assembly", "compile_core",
           "core_source", "mono_tools"]
