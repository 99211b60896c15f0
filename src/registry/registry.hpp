// The address registry: which pmalloc region, if any, holds an address.
//
// Every region's whole reservation (guards included) is registered while it exists, so a
// lookup can tell "not pmalloc memory" from "pmalloc memory, but a guard page / metadata
// / free space". Used by pool_validate, locate() (is_pmalloc_object, the usercopy checks,
// wr_* validation) and the live-pool walk of the stats. Sealed caches register their
// segments here too (kind cache_segment), so that their handle checks rest on the same
// protected table; pool code sees only regions (find() ignores other kinds).
//
// Design (details in store.hpp and docs/hardening.md):
//  * Protected: the registry lives in its own read-only (sealed where possible) pages and
//    changes only through the kernel (/proc/self/mem), so a memory-corruption bug cannot
//    add, widen or redirect a registration, and hence cannot widen what the checks accept.
//  * Fast: a lookup is a two-level table walk over 1 MiB chunks plus one or two entries,
//    a handful of loads whatever the number of regions (measured in bench/check_bench).
//  * Lock-free reads: lookups never lock (sequence counter, retried on a concurrent
//    update). add/remove serialise on an update lock and cost a few writes through the
//    kernel each (microseconds); they happen when a region is created or released.
// Lock order: a pool lock may be held while calling add/remove (a pool grows by a region
// under its lock), so nothing may wait for a pool lock while holding the update lock;
// for_each holds the update lock while it calls fn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace pmalloc::internal {

struct Region;
struct Segment;

namespace registry {

// What a registration belongs to.
enum class Kind : std::uint8_t { region = 0, cache_segment = 1 };

// One registration: the reservation [begin, end) of `region` (a pool region) or `segment`
// (a sealed cache segment); the other pointer is nullptr.
struct Entry {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
  Region* region = nullptr;
  Segment* segment = nullptr;
  Kind kind = Kind::region;
};

// Registers [begin, begin + size) for `region`. 0, EINVAL (empty range or an address the
// table does not cover), EEXIST (overlaps a registration), ENOMEM (table full), or the
// errno of the failed write (then nothing changed).
[[nodiscard]] int add(const void* begin, std::size_t size, Region* region) noexcept;
// The same for a sealed cache's segment.
[[nodiscard]] int add(const void* begin, std::size_t size, Segment* segment) noexcept;
// Unregisters the reservation that starts at `begin` (no-op when there is none). Never
// fails: should the kernel refuse the writes repeatedly, the process stops (fatal).
void remove(const void* begin) noexcept;
// The region whose reservation contains p, or nullptr (also for other kinds).
Region* find(const void* p) noexcept;
// The cache segment whose reservation contains p, or nullptr.
Segment* find_segment(const void* p) noexcept;
// The registration containing p, of any kind: true and *out filled, or false.
bool lookup(const void* p, Entry* out) noexcept;
// The lowest registration that intersects [first, last] (inclusive bounds, so a range
// that reaches the top of the address space can be asked about): true and *out filled.
bool first_intersecting(std::uintptr_t first, std::uintptr_t last, Entry* out) noexcept;
// Number of registered reservations (of every kind).
std::size_t size() noexcept;
// The registry's generation (inline, for the allocation fast path): registry/generation.hpp.

// Calls fn(region, context) for every registered pool region, in address order, with the
// update lock held: no region can be registered or released meanwhile, so fn may read
// the region's header. fn must not create, grow or destroy pools (that would register or
// release regions) and must not wait for a pool lock (see the lock order above).
void for_each(void (*fn)(Region* region, void* context), void* context) noexcept;

template <class F>
  requires std::is_invocable_v<F&, Region*>
void for_each(F&& fn) noexcept {
  using Fn = std::remove_reference_t<F>;
  for_each([](Region* r, void* c) { (*static_cast<Fn*>(c))(r); },
           const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace registry
}  // namespace pmalloc::internal
