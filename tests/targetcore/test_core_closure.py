"""Only the part of the core a session needs travels (issue 17): the closure of a collector's core files,
worked out from the C# source (toolkit/targetcore/closure.py), compiles as Add-Type would compile it, holds
the entry points its wrapper calls, and needs every file it has. (The Mono tests take ``core_dll``, the
whole core, for its skip-only-without-Mono rule.)

The rule cases are small C# sources an admin or developer can add to; the Mono cases run on the bundled
core and every bundled collector and playbook, so a new cross-file call the closure misses fails here
rather than as a compile error on a host.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from toolkit.collectors import load_catalog
from toolkit.resources import ps_scripts_dir
from toolkit.targetcore import CompileError, compile_assembly, core_source
from toolkit.targetcore.closure import CoreIndex, core_index, files_for_collectors, files_for_script, script_entries
from toolkit.targetcore.mono import mono_command
from toolkit.targetcore.source import REFERENCES

NS = "namespace IisFleet.Target {{ {} }}\n"

#: A small core: Core.cs (always in), a non-partial chain A -> B, a partial type P in three parts where
#: P2 calls P1's helper unqualified, a generic delegate type, and an extension method (called without naming
#: its class).
SMALL_CORE = {
    "Core.cs": NS.format("public static partial class Core { public const string Schema = \"s\"; }"),
    "A.cs": NS.format("public static class A { public static int Run() { return B.Twice(1); } }"),
    "B.cs": NS.format("public static class B { public static int Twice(int x) { return x * 2; } }"),
    "C.cs": NS.format("public static class C { public static string Text = \"B.Twice and A in a string\"; }"),
    "P1.cs": NS.format("public static partial class P { internal static int Helper() { return A.Run(); } "
                       "public static int One() { return 1; } }"),
    "P2.cs": NS.format("public static partial class P { public static int Two() { return Helper() + 1; } }"),
    "P3.cs": NS.format("public static partial class P { public static System.Collections.Generic.IEnumerable<int> "
                       "Three() { yield return 3; } }"),
    "Uses.cs": NS.format("public static class Uses { public static System.Type Of() { return typeof(P); } }"),
    "D.cs": NS.format("public delegate void Callback<T>(T value);"),
    "E.cs": NS.format("public static class E { public static Callback<int> Make() { return null; } }"),
    "Ext.cs": NS.format("public static class Ext { public static int Half(this int x) { return x / 2; } }"),
}


@pytest.mark.parametrize("script, expected", [
    ("[IisFleet.Target.A]::Run()", {"A.cs", "B.cs"}),  # A needs B; a string naming B needs nothing
    ("[IisFleet.Target.C]::Text", {"C.cs"}),
    ("[IisFleet.Target.P]::One()", {"P1.cs", "A.cs", "B.cs"}),  # one part, and what that part needs
    ("[IisFleet.Target.P]::Two()", {"P2.cs", "P1.cs", "A.cs", "B.cs"}),  # P2 calls P1's Helper unqualified
    ("[IisFleet.Target.P]::Three()", {"P3.cs"}),  # IEnumerable<int> is a return type, not a member
    ("[IisFleet.Target.P]::Nothing()", {"P1.cs", "P2.cs", "P3.cs", "A.cs", "B.cs"}),  # unknown member: all parts
    ("# see IisFleet.Target.P in a comment", {"P1.cs", "P2.cs", "P3.cs", "A.cs", "B.cs"}),  # no member: all parts
    ("[IisFleet.Target.Uses]::Of()", {"Uses.cs", "P1.cs", "P2.cs", "P3.cs", "A.cs", "B.cs"}),  # typeof(P): all
    ("[IisFleet.Target.E]::Make()", {"E.cs", "D.cs"}),  # a delegate type is a type too
    ("Write-Output 'no core type'", set()),
    ("[IisFleet.Target.Unknown]::X()", set(SMALL_CORE)),  # a name the core does not declare: everything
])
def test_the_closure_follows_types_and_partial_members(script: str, expected: set[str]) -> None:
    index = CoreIndex(SMALL_CORE.items())
    assert index.script_files(script) == frozenset(expected | {"Core.cs", "Ext.cs"})


def test_the_bundled_closure_leaves_out_code_a_health_sweep_never_calls() -> None:
    health = files_for_collectors(_playbook_collectors("health-sweep"))
    triage = files_for_collectors(_playbook_collectors("triage-401"))
    everything = core_index().all_files()
    assert not {"LogScan.cs", "LogCollectors.cs", "FrebCollector.cs", "ContentAclCollector.cs",
                "RawArtefactCollector.cs", "RawArtefacts.Windows.cs"} & health
    assert "RawArtefactCollector.cs" not in triage and {"LogScan.cs", "FrebCollector.cs"} <= triage
    assert files_for_collectors(load_catalog()) == everything
    assert files_for_collectors(["Not-ACollector"]) == everything  # unknown: the whole core
    # a subset is its own version; the whole set is the core as it always was
    assert core_source(health).version != core_source().version != core_source(triage).version
    assert core_source(everything) == core_source()
    assert core_source(health).files == tuple(sorted(health))


def _playbook_collectors(name: str) -> list[str]:
    document = yaml.safe_load((ps_scripts_dir().parent / "playbooks" / f"{name}.yml").read_text(encoding="utf-8"))
    return [step["collector"] for step in document["steps"]]


def _playbooks() -> list[str]:
    return sorted(path.stem for path in (ps_scripts_dir().parent / "playbooks").glob("*.yml"))


def _compile(files) -> object:
    source = core_source(files)
    return compile_assembly([("core.cs", source.text)], name=f"IisFleet.Target.{source.version}")


#: Loads each subset (arguments ``<dll>|<type>|<member>``) and says which named type or member it lacks.
ENTRY_PROBE = """
using System;
using System.Reflection;
public static class EntryProbe
{
    public static int Main(string[] args)
    {
        foreach (string arg in args)
        {
            string[] part = arg.Split('|');
            Type type = Assembly.LoadFrom(part[0]).GetType("IisFleet.Target." + part[1]);
            if (type == null || (part[2].Length > 0 && type.GetMember(part[2]).Length == 0))
                Console.WriteLine("missing " + arg);
        }
        return 0;
    }
}
"""


def test_each_collectors_core_compiles_and_holds_the_entry_points_its_wrapper_calls(core_dll) -> None:
    checks: list[str] = []
    for collector_id, collector in load_catalog().items():
        files = files_for_collectors([collector_id])
        assert files == files_for_script(collector.script)
        dll = _compile(files)  # CompileError names the file and line
        checks += [f"{dll}|{type_name}|{member or ''}" for type_name, member in script_entries(collector.script)]
    spn_only = _compile(files_for_collectors(["Get-IisSpn"]))
    planted = f"{spn_only}|WindowsCollectors|RawArtefact"  # the probe must be able to say "missing"
    probe = compile_assembly([("EntryProbe.cs", ENTRY_PROBE)], name="EntryProbe", target="exe",
                             references=REFERENCES)
    result = subprocess.run(mono_command(probe, *checks, planted), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"missing {planted}"]


@pytest.mark.parametrize("playbook", _playbooks())
def test_each_playbooks_core_compiles(core_dll, playbook: str) -> None:
    _compile(files_for_collectors(_playbook_collectors(playbook)))


def test_every_file_of_every_closure_is_needed(core_dll) -> None:
    """For each bundled collector, leaving any one file out of its closure breaks the compile; except the
    files its wrapper names (without them the rest compiles but lacks the entry point: the test above) and
    Core.cs, which is always sent (the loader's identity). So the closure is minimal at file granularity;
    e.g. Get-IisSpn reaches ConfigCollector.cs only through SpnCollector's calls."""
    index = core_index()
    for collector_id, collector in load_catalog().items():
        files = files_for_collectors([collector_id])
        named = {name for type_name, member in script_entries(collector.script)
                 for name in index.entry_files(type_name, member)}
        for left_out in sorted(files - named - index.always):
            with pytest.raises(CompileError):
                _compile(files - {left_out})
