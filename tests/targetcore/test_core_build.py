"""The core compiles as Add-Type would compile it on a host: C# 5, .NET Framework 4.5 API, warnings as errors.

The negative cases prove the check can fail: each adds one construct a Windows PowerShell 5.1 host would
reject (or that would only work on a newer framework) and expects mcs to refuse it.
"""

from __future__ import annotations

import pytest

from toolkit.targetcore import CompileError, compile_assembly, core_source
from toolkit.targetcore.source import WINDOWS_ONLY_SUFFIX, assemble


def test_core_compiles_and_reports_its_version(core_host) -> None:
    source = core_source()
    assert source.files == tuple(sorted(source.files)) and "Json.cs" in source.files
    assert core_host.ping()["version"] == source.version


def test_version_changes_with_any_file_and_not_with_line_endings() -> None:
    files = [("A.cs", "namespace IisFleet.Target { }\n"), ("B.cs", "// b\n")]
    base = assemble(files)
    assert assemble([(n, t.replace("\n", "\r\n").replace("\r\n", "\n")) for n, t in files]).version == base.version
    assert assemble([files[0], ("B.cs", "// c\n")]).version != base.version
    assert f'Version = "{base.version}"' in base.text


@pytest.mark.parametrize("snippet, code", [
    ('string Greet(string n) { return $"hi {n}"; }', "CS1644"),  # C# 6 string interpolation
    ("int Length(string s) { return s?.Length ?? 0; }", "CS1644"),  # C# 6 null-conditional
    ("int[] None() { return System.Array.Empty<int>(); }", "CS0117"),  # .NET 4.6 API, absent from 4.5
    ("void Unused() { int unused = 1; }", "CS0219"),  # a warning, made an error
])
def test_the_check_rejects_what_a_host_would_reject(core_dll, snippet: str, code: str) -> None:
    extra = f"namespace IisFleet.Target {{ internal sealed class Probe {{ {snippet} }} }}\n"
    with pytest.raises(CompileError) as failure:
        compile_assembly([("core.cs", core_source().text), ("Probe.cs", extra)], name="probe")
    assert code in failure.value.output and "Probe.cs" in failure.value.output


def test_windows_only_files_are_named_so() -> None:
    # Code that needs Windows lives only in *.Windows.cs files (docs/collectors.md lists them).
    windows_only = ("System.Diagnostics.Eventing.Reader", "Microsoft.Win32.Registry", "System.Security.AccessControl")
    for name in core_source().files:
        if name.endswith(WINDOWS_ONLY_SUFFIX):
            continue
        text = (core_source().text.split(f'#line 1 "{name}"', 1)[1]).split("#line default", 1)[0]
        for namespace in windows_only:
            assert namespace not in text, f"{name} uses {namespace}: move it into a {WINDOWS_ONLY_SUFFIX} file"
