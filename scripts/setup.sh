#!/usr/bin/env bash
# Create .venv and install iisfleet (editable) with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# Kerberos (python-gssapi) compiles against libkrb5-dev; without it everything else still works.
if ! .venv/bin/python -c "import gssapi, krb5" 2>/dev/null; then
  if ! .venv/bin/python -m pip install -q -e '.[kerberos]' >/dev/null 2>&1; then
    echo "note: python-gssapi could not be built (is libkrb5-dev installed?); Kerberos logons from the" \
         "ticket cache and the Kerberos tests are unavailable" >&2
  fi
fi
# The compiled log scanner is optional (pip hides the build hook's warning under -q): say so when it is missing.
if ! .venv/bin/python -c "import toolkit.logs._scan" 2>/dev/null; then
  echo "note: the compiled log scanner was not built (no C compiler, or IISFLEET_NO_NATIVE set);" \
       "iisfleet analyze uses the pure-Python engine (same results, about 4x slower)" >&2
fi
# The lab and the target-core tests run the C# core under Mono (see README): install it when we can.
if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1 || [ ! -f /usr/lib/mono/4.5-api/mscorlib.dll ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # A fresh machine has no package lists yet: without an update the install finds nothing.
    { apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null &&
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends mono-mcs mono-runtime mono-devel >/dev/null; } \
      || echo "note: could not install Mono; the lab cannot answer the log collectors and their tests skip" >&2
  else
    echo "note: Mono is not installed (apt-get install mono-mcs mono-runtime mono-devel);" \
         "the lab cannot answer the log collectors and their tests skip" >&2
  fi
fi
