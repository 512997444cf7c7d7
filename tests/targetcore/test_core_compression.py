"""The core travels to the loader gzip-compressed and base64-encoded (issue 17). A real host unpacks it with
``Convert.FromBase64String`` + ``GZipStream`` + ``StreamReader(UTF8)``: the same .NET Framework 4.5 calls
run here under Mono on what the controller sends, and must give back the core's exact text.
"""

from __future__ import annotations

import subprocess

import pytest

from toolkit.collectors import core_loader, core_loader_parameters
from toolkit.targetcore import MonoUnavailable, compile_assembly, core_source
from toolkit.targetcore.mono import mono_command

#: What ``_core_loader.ps1`` does before Add-Type, as C#: base64 on stdin, the unpacked text on stdout.
UNPACK_PROGRAM = """
namespace Probe {
    internal static class Unpack {
        private static void Main() {
            string encoded = System.Console.In.ReadToEnd().Trim();
            byte[] compressed = System.Convert.FromBase64String(encoded);
            var memory = new System.IO.MemoryStream(compressed);
            var gzip = new System.IO.Compression.GZipStream(memory, System.IO.Compression.CompressionMode.Decompress);
            using (var reader = new System.IO.StreamReader(gzip, System.Text.Encoding.UTF8)) {
                var output = new System.IO.StreamWriter(System.Console.OpenStandardOutput(), new System.Text.UTF8Encoding(false));
                output.Write(reader.ReadToEnd());
                output.Flush();
            }
        }
    }
}
"""


def test_dotnet_gzipstream_unpacks_what_the_controller_sends_to_the_exact_core() -> None:
    try:
        program = compile_assembly([("Unpack.cs", UNPACK_PROGRAM)], name="unpack", target="exe")
    except MonoUnavailable as exc:
        pytest.skip(f"{exc} (.ci/run tried to install it and printed a warning when it could not)")
    encoded = core_loader_parameters()["CompressedSource"]
    result = subprocess.run(mono_command(program), input=encoded.encode("ascii"), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert result.stdout.decode("utf-8") == core_source().text


def test_the_loader_gets_the_core_compressed_and_unpacks_it_before_add_type() -> None:
    parameters = core_loader_parameters()
    assert "Source" not in parameters and parameters["Version"] == core_source().version
    # the point of the exercise: a fraction of the plain text (measured: about a fifth)
    assert len(parameters["CompressedSource"]) < len(core_source().text.encode("utf-8")) / 3
    loader = core_loader()
    assert loader.index("GZipStream") < loader.index("Add-Type -TypeDefinition $source")


@pytest.mark.parametrize("source, expected", [
    ('    a = "http://x"; // c\n', 'a = "http://x";\n'),
    ("x = '\\''; /* a\n b */ y\n", "x = '\\'';\ny\n"),
    ('v = @"a\n  // kept\n ""q"" "; z  \n', 'v = @"a\n  // kept\n ""q"" "; z\n'),
    ('  #line 1 "A.cs"\n\tint  x; /**/ int y;\n', '#line 1 "A.cs"\nint  x;   int y;\n'),
    ("c = '\"'; s = \"/*\"; // */\n", "c = '\"'; s = \"/*\";\n"),
])
def test_compact_drops_comments_and_edge_whitespace_but_never_literals_or_line_breaks(source, expected) -> None:
    from toolkit.targetcore.source import compact

    assert compact(source) == expected


def test_the_shipped_core_keeps_every_line_of_the_files_as_written() -> None:
    from toolkit.targetcore.source import assemble, read_core_files

    files = list(read_core_files())
    # compiler messages name file and line through #line: each file keeps its line count
    for name, text in files:
        shipped = core_source().text.split(f'#line 1 "{name}"\n', 1)[1].split("#line default", 1)[0]
        assert shipped.count("\n") == text.rstrip().count("\n") + 1, name
    assert assemble(files).version == core_source().version
    assert "//" not in "".join(line for line in core_source().text.splitlines() if '"' not in line)
