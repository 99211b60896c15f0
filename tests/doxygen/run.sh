#!/usr/bin/env bash
# Usage: run.sh <source dir> <output dir> <doxygen or "">
# Runs doxygen on the repository's Doxyfile, writing to <output dir>; fails on any
# warning (WARN_AS_ERROR in the Doxyfile); exit 77 (ctest: skipped) without doxygen.
set -euo pipefail
src=$1 out=$2 doxygen=${3:-}
if [ -z "$doxygen" ] || [ ! -x "$doxygen" ]; then
  doxygen=$(command -v doxygen || true)
fi
if [ -z "$doxygen" ]; then
  echo "docs.doxygen: SKIPPED - doxygen is not installed (apt-get install doxygen, or scripts/deps.sh test)"
  exit 77
fi
rm -rf "$out"
mkdir -p "$out"
cd "$src"
# The Doxyfile's own settings, with the output redirected; WARN_AS_ERROR=FAIL_ON_WARNINGS
# makes doxygen list every warning and then exit non-zero.
{ cat Doxyfile; echo "OUTPUT_DIRECTORY = $out"; } | "$doxygen" - 2>"$out/warnings.log" || {
  echo "docs.doxygen: doxygen reported warnings (treated as errors):"
  cat "$out/warnings.log"
  exit 1
}
if [ -s "$out/warnings.log" ]; then
  echo "docs.doxygen: warnings:"
  cat "$out/warnings.log"
  exit 1
fi
[ -f "$out/html/index.html" ] || { echo "docs.doxygen: no html/index.html produced"; exit 1; }
echo "docs.doxygen: API reference built without warnings: $out/html/index.html"
