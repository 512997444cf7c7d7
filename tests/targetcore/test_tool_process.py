"""ToolProcess (the core's way of running setspn and secedit) under Mono, with /bin/sh standing in for the
Windows tools: the exit code and both streams come back, and a tool that hangs is killed at its deadline
even while it keeps its output open (the old synchronous read waited for that output forever)."""

from __future__ import annotations

import subprocess

from toolkit.targetcore import compile_assembly, core_source
from toolkit.targetcore.mono import mono_command

PROGRAM = r"""
namespace IisFleet.Tests
{
    using System;
    using IisFleet.Target;

    public static class RunTool
    {
        public static int Main(string[] args)
        {
            try
            {
                ToolResult result = ToolProcess.Run("/bin/sh", args[0], null, int.Parse(args[1]), "the tool");
                Console.Write("exit=" + result.ExitCode + "|out=" + result.Output + "|err=" + result.Error);
            }
            catch (TimeoutException error)
            {
                Console.Write("timeout: " + error.Message);
            }
            return 0;
        }
    }
}
"""


def _run(core_dll, arguments: str, timeout_ms: int) -> str:
    del core_dll  # the fixture skips, saying why, when Mono is not installed
    program = compile_assembly([("core.cs", core_source().text), ("RunTool.cs", PROGRAM)], name="runtool",
                               target="exe")
    done = subprocess.run(mono_command(program, arguments, str(timeout_ms)), capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout


def test_exit_code_and_both_streams_come_back(core_dll) -> None:
    output = _run(core_dll, '-c "echo listed; echo refused >&2; exit 3"', 20000)
    assert output == "exit=3|out=listed\n|err=refused\n"


def test_a_tool_that_hangs_with_its_output_open_is_killed_at_the_deadline(core_dll) -> None:
    # Without the deadline this would print "exit=0|out=started" after the tool's 60 s.
    output = _run(core_dll, '-c "echo started; exec sleep 60"', 1500)
    assert output == "timeout: the tool did not finish within 1 s"
