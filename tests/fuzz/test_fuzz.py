"""The fuzz suite's short run (docs/security.md, "Fuzzing"): every checked-in corpus file replays clean through
its target, and a bounded, seeded atheris run per target finds nothing. The long runs are documented in
docs/security.md with their figures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from targets import TARGETS

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
#: Executions per target in the default suite: a few seconds each on the 2-core CI machine.
SHORT_RUNS = {"w3c_differential": 150, "envelope": 400, "w3c_excerpt": 300}
DEFAULT_RUNS = 1500


def _corpus_files() -> list[tuple[str, Path]]:
    return [(path.parent.name, path) for path in sorted(CORPUS.glob("*/*")) if path.is_file()]


def test_every_target_has_a_corpus() -> None:
    assert sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) == sorted(TARGETS)


@pytest.mark.parametrize(("target", "path"), _corpus_files(), ids=lambda v: v if isinstance(v, str) else v.name)
def test_corpus_replays_clean(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


def _atheris_missing() -> str | None:
    try:
        import atheris  # noqa: F401
    except ImportError as exc:  # the dev extra installs it; only a failed install gets here
        return f"atheris did not install ({exc}); the corpus replay above still runs"
    return None


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_short_seeded_fuzz_run_finds_nothing(target: str, tmp_path: Path) -> None:
    missing = _atheris_missing()
    if missing:
        pytest.skip(missing)
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS / target, corpus)  # new units go to the copy, never into the repository
    runs = SHORT_RUNS.get(target, DEFAULT_RUNS)
    result = subprocess.run(
        [sys.executable, str(HERE / "fuzz.py"), target, f"-runs={runs}", "-seed=1", "-max_len=65536",
         "-timeout=20", "-rss_limit_mb=1024", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    found = sorted(p.name for p in tmp_path.glob("crash-*")) + sorted(p.name for p in tmp_path.glob("timeout-*"))
    assert result.returncode == 0 and not found, f"{found}\n{result.stderr[-4000:]}"


#: Findings of the long W3C differential runs (docs/security.md, "Fuzzing"), with the 401 counts
#: docs/analyze.md's rule gives (total, terminal, handshake).
W3C_FINDINGS = {
    # A success of the same client follows two 401s, but a line in between (time "04010:00:00", read as
    # 04:10:00) moved the log hours past their window: terminal. The pure-Python engine called them
    # handshakes: it only saw line times sampled every 16 KiB.
    "handshake-window-moved-past.log": (2, 2, 0),
    # 401s carried across directives, a cut-short line hours ahead between them and their success: the
    # malformed line is never read, so they are handshakes. The line times sampled to bound a window's
    # search were read from malformed lines too (both engines, for 401s carried into the next segment).
    "handshake-malformed-line-sampled.log": (5, 1, 4),
}


@pytest.mark.parametrize("name", sorted(W3C_FINDINGS))
def test_w3c_findings_both_engines_follow_the_handshake_rule(name: str) -> None:
    from targets import _analyse_bytes

    data = (CORPUS / "w3c_differential" / name).read_bytes()
    TARGETS["w3c_differential"](data)  # the engines agree
    counts = _analyse_bytes(data, False)["status_401"]
    assert (counts["total"], counts["terminal"], counts["handshake"]) == W3C_FINDINGS[name]
