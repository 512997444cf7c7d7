#!/usr/bin/env bash
# Create .venv and install iisfleet (editable) with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# The compiled log scanner is optional (pip hides the build hook's warning under -q): say so when it is missing.
if ! .venv/bin/python -c "import toolkit.logs._scan" 2>/dev/null; then
  echo "note: the compiled log scanner was not built (no C compiler, or IISFLEET_NO_NATIVE set);" \
       "iisfleet analyze uses the pure-Python engine (same results, about 4x slower)" >&2
fi
