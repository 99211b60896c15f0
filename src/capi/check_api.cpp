// The object checks of include/pmalloc/check.h (hardened usercopy).
//
// Both calls rest on internal::locate(), which answers from the address registry and the
// pool's granule bitmaps: metadata that is write-protected with the data it describes, so
// a memory-corruption bug cannot make a bad range look good. A range that starts outside
// pmalloc memory is still asked about as a whole: one that runs into a pool (a heap
// overflow heading for protected data) is BAD, named after the pool it reaches.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "pmalloc/pmalloc.h"
#include "pool/pool.hpp"
#include "registry/registry.hpp"

using namespace pmalloc::internal;

namespace {

enum class Verdict { none, ok, read_only, bad };

struct Finding {
  Verdict verdict = Verdict::none;
  const Pool* pool = nullptr;
  const void* begin = nullptr;  // the allocation the range starts in (bad/ok), if any
  std::size_t size = 0;
  const char* why = "";
};

// n == 0 is classified as the one address p (see check.h).
Finding classify(const void* p, std::size_t n) noexcept {
  Finding f;
  if (p == nullptr) return f;
  Allocation a;
  const std::size_t probe = n == 0 ? 1 : n;
  switch (locate(p, probe, &a)) {
    case Placement::ok:
      f.verdict = a.read_only ? Verdict::read_only : Verdict::ok;
      f.pool = a.pool;
      f.begin = a.begin;
      f.size = a.size;
      return f;
    case Placement::bad:
      f.verdict = Verdict::bad;
      f.pool = a.pool;
      f.begin = a.begin;
      f.size = a.size;
      f.why = a.begin != nullptr ? "crosses the bounds of allocation" : "is not inside a live allocation";
      return f;
    case Placement::none:
      break;
  }
  // p is not pmalloc memory; the rest of the range might be.
  const auto first = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t last = probe - 1 > UINTPTR_MAX - first ? UINTPTR_MAX : first + (probe - 1);
  registry::Entry e;
  if (probe > 1 && registry::first_intersecting(first, last, &e)) {
    f.verdict = Verdict::bad;
    f.pool = e.region != nullptr ? e.region->pool : nullptr;
    f.why = "runs from outside into pmalloc memory";
  } else if (probe - 1 > UINTPTR_MAX - first) {
    // Wrapping around the address space is never a real copy, but it is not ours to judge
    // unless it touches pmalloc memory, which the lookup above covers up to the top.
    if (registry::first_intersecting(0, probe - 1 - (UINTPTR_MAX - first) - 1, &e)) {
      f.verdict = Verdict::bad;
      f.pool = e.region != nullptr ? e.region->pool : nullptr;
      f.why = "wraps around the address space into pmalloc memory";
    }
  }
  return f;
}

const char* pool_name(const Pool* pool) noexcept {
  if (pool == nullptr || pool_validate(pool) != 0) return "?";
  return pool->name;
}

[[noreturn]] void refuse(const void* p, std::size_t n, bool to_object, const Finding& f) noexcept {
  char line[320];
  const auto b = reinterpret_cast<std::uintptr_t>(p);
  int len = 0;
  if (f.verdict == Verdict::read_only) {
    len = std::snprintf(line, sizeof line,
                        "pmalloc: usercopy: write to [%#lx, %#lx) (%zu bytes) in pool '%s' refused: the memory is "
                        "write-protected\n",
                        static_cast<unsigned long>(b), static_cast<unsigned long>(b + n), n, pool_name(f.pool));
  } else if (f.begin != nullptr) {
    len = std::snprintf(line, sizeof line,
                        "pmalloc: usercopy: %s [%#lx, %#lx) (%zu bytes) in pool '%s' refused: the range %s "
                        "[%p, +%zu)\n",
                        to_object ? "write to" : "read from", static_cast<unsigned long>(b),
                        static_cast<unsigned long>(b + n), n, pool_name(f.pool), f.why, f.begin, f.size);
  } else {
    len = std::snprintf(line, sizeof line,
                        "pmalloc: usercopy: %s [%#lx, %#lx) (%zu bytes) in pool '%s' refused: the range %s\n",
                        to_object ? "write to" : "read from", static_cast<unsigned long>(b),
                        static_cast<unsigned long>(b + n), n, pool_name(f.pool), f.why);
  }
  if (len > 0) {
    // One write(2), so the line is not interleaved with other output.
    const auto want = static_cast<std::size_t>(len) < sizeof line ? static_cast<std::size_t>(len) : sizeof line - 1;
    (void)!::write(STDERR_FILENO, line, want);
  }
  std::abort();
}

}  // namespace

extern "C" {

int is_pmalloc_object(const void* p, size_t n) {
  switch (classify(p, n).verdict) {
    case Verdict::none: return PMALLOC_OBJECT_NONE;
    case Verdict::ok:
    case Verdict::read_only: return PMALLOC_OBJECT_OK;
    case Verdict::bad: return PMALLOC_OBJECT_BAD;
  }
  return PMALLOC_OBJECT_BAD;
}

void pmalloc_usercopy_check(const void* p, size_t n, bool to_object) {
  if (n == 0) return;
  const Finding f = classify(p, n);
  if (f.verdict == Verdict::bad || (to_object && f.verdict == Verdict::read_only)) refuse(p, n, to_object, f);
}

}  // extern "C"
