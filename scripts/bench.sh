#!/usr/bin/env bash
# Builds the benchmark report runner in a Release build (no invariant checker, no
# sanitizers) and runs it: writes docs/benchmarks.md and docs/plots/*.png.
#   scripts/bench.sh            full run (a few minutes on 2 cores)
#   scripts/bench.sh --quick    fewer sizes and repetitions (about a minute)
# Further arguments go to report_compare (see --help). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh bench
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DPMALLOC_BUILD_TESTS=OFF \
  -DPMALLOC_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-bench --target report_compare
exec ./build-bench/bench/report/report_compare "$@"
