#!/usr/bin/env bash
# Quick start, command 2: install what is missing, then build and run every test tier:
#   1. the full suite (warnings as errors, invariant checker after every operation);
#   2. the suite under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on);
#   3. the suite under ThreadSanitizer.
# Each tier ends with ctest's summary. PMALLOC_TIERS="default asan tsan" selects tiers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
jobs=$(nproc)
tiers=${PMALLOC_TIERS:-"default asan tsan"}
status=0

# The sanitizer tiers skip the tests that only re-check packaging (install + external
# consumer builds, Doxygen): they exercise no library code the default tier does not.
sanitizer_skip='^(consumers|docs)[.]'

run_tier() {  # name, build dir, ctest exclude regex ('' for none), cmake args...
  local name=$1 dir=$2 exclude=$3
  shift 3
  echo "=== tier: $name"
  cmake -S . -B "$dir" -G Ninja -DPMALLOC_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900 ${exclude:+-E "$exclude"}) || status=1
}

for t in $tiers; do
  case $t in
    default) run_tier default build-test '' -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPMALLOC_DEBUG_CHECKS=ON ;;
    asan) run_tier asan+ubsan build-asan "$sanitizer_skip" -DCMAKE_BUILD_TYPE=Debug -DPMALLOC_SANITIZE="address;undefined" \
            -DPMALLOC_BUILD_BENCH=OFF -DPMALLOC_BUILD_EXAMPLES=OFF ;;
    tsan) run_tier tsan build-tsan "$sanitizer_skip" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPMALLOC_SANITIZE=thread \
            -DPMALLOC_BUILD_BENCH=OFF -DPMALLOC_BUILD_EXAMPLES=OFF ;;
    *) echo "unknown tier $t" >&2; exit 2 ;;
  esac
done
exit $status
