#!/usr/bin/env bash
# Quick start, command 2: install what is missing, then build and run every test tier:
#   1. the full suite (warnings as errors, invariant checker after every operation);
#   2. the suite under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on);
#   3. the suite under ThreadSanitizer;
#   4. the libFuzzer harness (fuzz/; clang, ASan+UBSan) for PMALLOC_FUZZ_SECONDS (60) seconds.
# Each tier ends with ctest's summary; the run ends with a recap of every tier (its result,
# ctest's count line and any failed tests), so the tail of a CI log names what failed.
# PMALLOC_TIERS="fuzz default asan tsan" selects tiers.
# The same configurations are in CMakePresets.json (cmake --preset asan, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
jobs=$(nproc)
# The fuzz tier runs first, so that the last tier's ctest summary sits right above the recap.
tiers=${PMALLOC_TIERS:-"fuzz default asan tsan"}
status=0
recap=()  # one block per tier, printed at the end

# The sanitizer tiers skip the tests that only re-check packaging (install + external
# consumer builds, Doxygen): they exercise no library code the default tier does not.
sanitizer_skip='^(consumers|docs)[.]'
# Protection tests expect a forked child to die of SIGSEGV; the sanitizers' own SEGV
# handlers would turn that death into a report and exit(1). Leave SIGSEGV/SIGBUS to the
# kernel (and to the tests' own handlers); everything else the sanitizers check stays on.
export ASAN_OPTIONS="handle_segv=0:handle_sigbus=0:detect_leaks=1:${ASAN_OPTIONS:-}"
export TSAN_OPTIONS="handle_segv=0:handle_sigbus=0:${TSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

run_tier() {  # name, build dir, ctest exclude regex ('' for none), cmake args...
  local name=$1 dir=$2 exclude=$3
  shift 3
  echo "=== tier: $name"
  cmake -S . -B "$dir" -G Ninja -DPMALLOC_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  local log="$dir/ctest.log" result=passed
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900 ${exclude:+-E "$exclude"}) 2>&1 | tee "$log" ||
    { result=FAILED; status=1; }
  local failed
  failed=$(sed -n '/^The following tests FAILED:/,$p' "$log")
  recap+=("tier $name: $result
$(grep -E '^[0-9]+% tests passed' "$log" || echo "(no ctest summary)")${failed:+
$failed}")
}

run_fuzz() {  # clang builds the harness only (with -Werror off: the gcc tiers enforce warnings)
  local dir=build-fuzz corpus
  echo "=== tier: fuzz"
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPMALLOC_BUILD_FUZZ=ON \
    -DPMALLOC_WERROR=OFF -DPMALLOC_SANITIZE="address;undefined" -DPMALLOC_BUILD_TESTS=OFF -DPMALLOC_BUILD_BENCH=OFF \
    -DPMALLOC_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$dir" -j "$jobs" --target pool_fuzz
  corpus=$(mktemp -d)  # new inputs go here; the seeds in fuzz/corpus/pool stay untouched
  if "$dir/fuzz/pool_fuzz" -max_total_time="${PMALLOC_FUZZ_SECONDS:-60}" -print_final_stats=1 "$corpus" fuzz/corpus/pool \
      >"$dir/fuzz.log" 2>&1; then
    tail -n 6 "$dir/fuzz.log"
    recap+=("tier fuzz: passed
$(grep -E '^stat::number_of_executed_units' "$dir/fuzz.log")")
  else
    tail -n 80 "$dir/fuzz.log"
    status=1
    recap+=("tier fuzz: FAILED
$(grep -E '^(INFO: Seed:|pool_fuzz:|==[0-9]+==ERROR|SUMMARY|Base64:)' "$dir/fuzz.log" | head -n 8)")
  fi
  rm -rf "$corpus"
}

for t in $tiers; do
  case $t in
    default) run_tier default build-test '' -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPMALLOC_DEBUG_CHECKS=ON ;;
    asan) run_tier asan+ubsan build-asan "$sanitizer_skip" -DCMAKE_BUILD_TYPE=Debug -DPMALLOC_SANITIZE="address;undefined" \
            -DPMALLOC_BUILD_BENCH=OFF -DPMALLOC_BUILD_EXAMPLES=OFF ;;
    tsan) run_tier tsan build-tsan "$sanitizer_skip" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPMALLOC_SANITIZE=thread \
            -DPMALLOC_BUILD_BENCH=OFF -DPMALLOC_BUILD_EXAMPLES=OFF ;;
    fuzz) run_fuzz ;;
    *) echo "unknown tier $t" >&2; exit 2 ;;
  esac
done
echo "=== recap"
printf '%s\n' "${recap[@]}"
exit $status
