// The live-pool list, life-cycle events and the PMALLOC_STATS exit report (see lifecycle.hpp).
#include "pool/lifecycle.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/error.hpp"
#include "core/log.hpp"
#include "pmalloc/pmalloc.h"
#include "registry/registry.hpp"

namespace pmalloc::internal {
namespace {

struct Collector {
  std::vector<Pool*> pools;
  bool failed = false;
};

// Registry callback: keeps the pool of every region that holds its pool's descriptor.
// Only region fields are read, which are fixed before a region is registered.
void collect(Region* r, void* context) noexcept {
  auto* c = static_cast<Collector*>(context);
  const auto* d = reinterpret_cast<const std::byte*>(r->pool);
  if (r->pool == nullptr || d < r->meta || d >= r->data) return;
  try {
    c->pools.push_back(r->pool);
  } catch (const std::bad_alloc&) {
    c->failed = true;
  }
}

std::size_t protected_bytes(const Pool* pool) noexcept {
  std::size_t n = 0;
  for (const Region* r = pool->first; r != nullptr; r = r->next) n += r->protected_bytes;
  return n;
}

// PMALLOC_STATS: "1", "table" (or anything else that is not "", "0" or "json") prints the
// table, "json" the JSON document, to stderr when the process exits normally. The variable
// is read at exit, so setenv() while the program runs works too.
void print_at_exit() noexcept {
  if (!log::env_flag("PMALLOC_STATS")) return;
  const char* v = std::getenv("PMALLOC_STATS");
  pmalloc_stats_print(stderr, std::strcmp(v, "json") == 0 ? "json" : "table");
}

// Registered by a static initializer, which runs when the library is loaded (shared
// library) or, for a static library, because pool.cpp always pulls this file in.
const bool g_exit_report_armed = std::atexit(print_at_exit) == 0;

}  // namespace

std::shared_mutex& lifecycle_lock() noexcept {
  static auto* lock = new std::shared_mutex;  // never destroyed: used by exit handlers
  return *lock;
}

int for_each_live_pool(void (*fn)(Pool* pool, void* context), void* context) noexcept {
  Collector c;
  registry::for_each(collect, &c);
  if (c.failed) return ENOMEM;
  for (Pool* p : c.pools) fn(p, context);
  return 0;
}

const char* flags_name(unsigned flags, char* buf, std::size_t size) noexcept {
  static constexpr struct {
    unsigned bit;
    const char* name;
  } kNames[] = {{PMALLOC_WR, "WR"}, {PMALLOC_AUTO, "AUTO"}, {PMALLOC_SEAL, "SEAL"}, {PMALLOC_NO_GUARD, "NO_GUARD"}};
  if (size == 0) return buf;
  buf[0] = '\0';
  std::size_t n = 0;
  auto append = [&](const char* s) {
    const int w = std::snprintf(buf + n, size - n, "%s%s", n == 0 ? "" : "|", s);
    if (w > 0) n = std::min(size - 1, n + static_cast<std::size_t>(w));
  };
  if ((flags & PMALLOC_WR) == 0) append("RO");
  for (const auto& f : kNames) {
    if ((flags & f.bit) != 0) append(f.name);
  }
  return buf;
}

void note_created(const Pool* pool) noexcept {
  (void)g_exit_report_armed;
  if (!log::verbose()) return;
  char flags[64];
  log::line("pool '%s' created at %p, flags %s", pool->name, static_cast<const void*>(pool),
            flags_name(pool->flags, flags, sizeof flags));
}

void note_protected(const Pool* pool, int error) noexcept {
  if (!log::verbose()) return;
  if (error != 0) {
    log::line("pool '%s' protect failed (errno %d): %s", pool->name, error, last_error());
    return;
  }
  bool sealed = false;
  for (const Region* r = pool->first; r != nullptr; r = r->next) sealed |= r->sealed_bytes != 0;
  log::line("pool '%s' protected: %zu data bytes read-only in %zu region(s)%s", pool->name,
            protected_bytes(pool), pool->regions, sealed ? ", sealed" : "");
}

void note_destroying(const Pool* pool) noexcept {
  if (!log::verbose()) return;
  std::size_t live = 0;
  std::size_t allocations = 0;
  for (const Region* r = pool->first; r != nullptr; r = r->next) {
    live += r->live_bytes;
    allocations += r->live_allocations;
  }
  log::line("pool '%s' destroyed: %zu live bytes in %zu allocation(s), %zu region(s)", pool->name, live,
            allocations, pool->regions);
}

}  // namespace pmalloc::internal
