"""The compiled scanner (toolkit/logs/_scan.c) built with AddressSanitizer and UndefinedBehaviorSanitizer, run over
the W3C fuzz corpus, the sample logs and the hostile repro inputs, compared with the pure-Python engine
(issue 13). Marked ``slow``: CI runs it within its budget (it takes about a minute)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "toolkit" / "logs" / "_scan.c"

DRIVER = r"""
import importlib.util, sys
from pathlib import Path
path, repo = sys.argv[1], Path(sys.argv[2])
spec = importlib.util.spec_from_file_location("toolkit.logs._scan", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["toolkit.logs._scan"] = module
from toolkit.logs import engine
assert engine._native is module, "the sanitized scanner is not the one in use"
sys.path.insert(0, str(repo / "tests" / "fuzz"))
import targets
inputs = sorted((repo / "tests" / "fuzz" / "corpus" / "w3c_differential").iterdir())
inputs += sorted((repo / "toolkit" / "logs" / "samples").rglob("*.log"))
inputs += sorted((repo / "tests" / "fixtures" / "hostile" / "bom").rglob("*.log"))
count = 0
for item in inputs:
    data = item.read_bytes()
    for cut in (len(data), len(data) // 2, len(data) // 3 + 1, 1):  # whole files and cut-short ones
        targets.w3c_differential(data[:cut])
        count += 1
print(f"sanitized scanner ran {count} inputs")
"""


def _compiler() -> str | None:
    return shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc") \
        or shutil.which("gcc")


@pytest.mark.slow
def test_scanner_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    compiler = _compiler()
    if compiler is None:
        pytest.skip("no C compiler installed (the compiled scanner is not built either)")
    libasan = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not libasan or not Path(libasan).is_file():
        pytest.skip(f"{compiler} has no AddressSanitizer runtime (libasan) installed")
    target = tmp_path / f"_scan{sysconfig.get_config_var('EXT_SUFFIX')}"
    build = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(target)],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    env = {**os.environ, "LD_PRELOAD": libasan, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1", "IISFLEET_NO_NATIVE": "",
           "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", DRIVER, str(target), str(REPO)], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-6000:])
    assert "sanitized scanner ran" in run.stdout
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
