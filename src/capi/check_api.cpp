// The object checks of include/pmalloc/check.h (hardened usercopy).
//
// Both calls rest on internal::locate(), which answers from the address registry and the
// pool's granule bitmaps: metadata that is write-protected with the data it describes, so
// a memory-corruption bug cannot make a bad range look good. Sealed-cache objects and
// execmem allocations are pmalloc memory too: their own directories answer for them
// (cache_locate, execmem::locate). A range that starts outside pmalloc memory is still
// asked about as a whole: one that runs into a pool (a heap overflow heading for protected
// data) is BAD, named after the pool it reaches.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "cache/cache.hpp"
#include "cache/layout.hpp"
#include "execmem/execmem.hpp"
#include "execmem/kind.hpp"
#include "pmalloc/pmalloc.h"
#include "pool/pool.hpp"
#include "registry/registry.hpp"

using namespace pmalloc::internal;

namespace {

enum class Verdict { none, ok, read_only, bad };

struct Finding {
  Verdict verdict = Verdict::none;
  const Pool* pool = nullptr;
  const char* kind = nullptr;   // "pool" (nullptr), "sealed cache" or "execmem"
  const char* owner = nullptr;  // the cache's name or the execmem type, for those
  const void* begin = nullptr;  // the allocation the range starts in (bad/ok), if any
  std::size_t size = 0;
  const char* why = "";
};

// A range from outside ran into the registration e: BAD, named after its owner.
void reached(const registry::Entry& e, Finding* f) noexcept {
  f->verdict = Verdict::bad;
  if (e.region != nullptr) f->pool = e.region->pool;
  if (e.segment != nullptr) {
    f->kind = "sealed cache";
    f->owner = e.segment->cache != nullptr ? e.segment->cache->name : "?";
  }
}

// n == 0 is classified as the one address p (see check.h).
Finding classify(const void* p, std::size_t n) noexcept {
  Finding f;
  if (p == nullptr) return f;
  const std::size_t probe = n == 0 ? 1 : n;
  // One lookup tells pool memory, cache memory and neither apart.
  registry::Entry entry;
  const bool registered = registry::lookup(p, &entry);
  Allocation a;
  switch (registered ? locate(entry, p, probe, &a) : Placement::none) {
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
  // Sealed caches: their objects are read-only from the first moment.
  CacheObject co;
  switch (registered && entry.segment != nullptr ? cache_locate(p, probe, &co) : CachePlacement::none) {
    case CachePlacement::ok:
      f.verdict = Verdict::read_only;
      f.kind = "sealed cache";
      f.owner = co.cache != nullptr ? co.cache->name : "?";
      f.begin = co.begin;
      f.size = co.size;
      return f;
    case CachePlacement::bad:
      f.verdict = Verdict::bad;
      f.kind = "sealed cache";
      f.owner = co.cache != nullptr ? co.cache->name : "?";
      f.why = "is not inside one live object";
      return f;
    case CachePlacement::none:
      break;
  }
  // execmem (its own directory): text and read-only data are written only through
  // execmem_update_copy.
  execmem::Found ef;
  switch (registered ? execmem::Placement::none : execmem::locate(p, probe, &ef)) {
    case execmem::Placement::ok:
      f.verdict = ef.writable ? Verdict::ok : Verdict::read_only;
      f.kind = "execmem";
      f.owner = execmem::kind_name(ef.kind);
      f.begin = ef.begin;
      f.size = ef.size;
      return f;
    case execmem::Placement::bad:
      f.verdict = Verdict::bad;
      f.kind = "execmem";
      f.owner = execmem::kind_name(ef.kind);
      f.why = "is not inside one live allocation";
      return f;
    case execmem::Placement::none:
      break;
  }
  // p is not pmalloc memory; the rest of the range might be.
  const auto first = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t last = probe - 1 > UINTPTR_MAX - first ? UINTPTR_MAX : first + (probe - 1);
  registry::Entry e;
  if (probe > 1 && registry::first_intersecting(first, last, &e)) {
    reached(e, &f);
    f.why = "runs from outside into pmalloc memory";
  } else if (probe - 1 > UINTPTR_MAX - first) {
    // Wrapping around the address space is never a real copy, but it is not ours to judge
    // unless it touches pmalloc memory, which the lookup above covers up to the top.
    if (registry::first_intersecting(0, probe - 1 - (UINTPTR_MAX - first) - 1, &e)) {
      reached(e, &f);
      f.why = "wraps around the address space into pmalloc memory";
    }
  }
  return f;
}

// Where the range is, for the message: pool 'name', sealed cache 'name' or execmem 'text'.
void describe(const Finding& f, char* buf, std::size_t size) noexcept {
  const char* kind = f.kind != nullptr ? f.kind : "pool";
  const char* name = f.owner;
  if (name == nullptr) name = f.pool != nullptr && pool_validate(f.pool) == 0 ? f.pool->name : "?";
  std::snprintf(buf, size, "%s '%s'", kind, name);
}

[[noreturn]] void refuse(const void* p, std::size_t n, bool to_object, const Finding& f) noexcept {
  char where[96];
  describe(f, where, sizeof where);
  char line[384];
  const auto b = reinterpret_cast<std::uintptr_t>(p);
  const auto e = b + n;  // for the message only (may wrap)
  const char* op = to_object ? "write to" : "read from";
  int len = 0;
  if (f.verdict == Verdict::read_only) {
    len = std::snprintf(line, sizeof line,
                        "pmalloc: usercopy: write to [%#lx, %#lx) (%zu bytes) in %s refused: the memory is "
                        "write-protected\n",
                        static_cast<unsigned long>(b), static_cast<unsigned long>(e), n, where);
  } else if (f.begin != nullptr) {
    len = std::snprintf(line, sizeof line,
                        "pmalloc: usercopy: %s [%#lx, %#lx) (%zu bytes) in %s refused: the range %s [%p, +%zu)\n", op,
                        static_cast<unsigned long>(b), static_cast<unsigned long>(e), n, where, f.why, f.begin, f.size);
  } else {
    len = std::snprintf(line, sizeof line, "pmalloc: usercopy: %s [%#lx, %#lx) (%zu bytes) in %s refused: the range %s\n",
                        op, static_cast<unsigned long>(b), static_cast<unsigned long>(e), n, where, f.why);
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
