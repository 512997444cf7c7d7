"""Coverage-guided fuzzing of one target with atheris (libFuzzer): ``python tests/fuzz/fuzz.py TARGET [libFuzzer
options] [CORPUS_DIR ...]``. Targets are in ``targets.py``; the checked-in seeds are ``corpus/<TARGET>/``.

Examples (docs/security.md, "Fuzzing", has the figures of the long runs)::

    python tests/fuzz/fuzz.py sddl -runs=5000 -seed=1 tests/fuzz/corpus/sddl     # short, deterministic
    python tests/fuzz/fuzz.py envelope -max_total_time=600 /tmp/envelope-corpus  # the 10-minute run

A finding is written as ``crash-<sha1>`` in the current folder (libFuzzer's default): add it to
``corpus/<TARGET>/`` with the fix so the default test suite replays it forever.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).parent))

with atheris.instrument_imports(include=["toolkit"]):
    import targets  # noqa: E402  (the toolkit modules the targets import are instrumented)
    import toolkit.collectors  # noqa: F401,E402
    import toolkit.contract  # noqa: F401,E402
    import toolkit.diagnose  # noqa: F401,E402
    import toolkit.facts  # noqa: F401,E402
    import toolkit.logs  # noqa: F401,E402
    import toolkit.parsers.events  # noqa: F401,E402
    import toolkit.parsers.freb  # noqa: F401,E402
    import toolkit.parsers.iisconfig  # noqa: F401,E402
    import toolkit.parsers.sddl  # noqa: F401,E402
    import toolkit.parsers.secedit  # noqa: F401,E402
    import toolkit.parsers.setspn  # noqa: F401,E402
    import toolkit.report  # noqa: F401,E402
    import toolkit.textsafe  # noqa: F401,E402


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: fuzz.py TARGET [libFuzzer options] [CORPUS ...]; targets: {', '.join(targets.TARGETS)}")
    target = targets.TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
