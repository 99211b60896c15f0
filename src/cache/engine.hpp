// Internals shared by the cache's life-cycle code (cache.cpp) and its allocation paths
// (alloc.cpp): slot reservations in the hints, slab list upkeep, checked translation of
// hint positions into protected addresses. Every function here expects the cache lock
// (CacheState::lock) to be held unless it says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cache/hints.hpp"
#include "cache/layout.hpp"

namespace pmalloc::internal {

// A reserved (or, after the write, live) slot: where it is in the cache.
struct SlotRef {
  std::uint32_t segment;
  std::size_t slab;
  std::size_t slot;
};

inline SlabHint& hint_of(CacheState& st, const SlotRef& r) noexcept { return st.segments[r.segment].slabs[r.slab]; }
inline std::uint64_t* hint_bits(CacheState& st, const Geometry& g, std::uint32_t seg, std::size_t slab) noexcept {
  return st.segments[seg].bits.get() + slab * g.header_words;
}

// The protected segment and slab address of a position taken from the hints, bounds
// checked against protected metadata only. A position outside the cache means the hints
// were corrupted: the process is stopped rather than writing anywhere.
Segment* checked_segment(const CacheDesc* c, std::uint32_t seg) noexcept;
std::byte* checked_slab(const CacheDesc* c, const SlotRef& r) noexcept;
inline const std::byte* slot_address(const CacheDesc* c, const std::byte* slab, std::size_t slot) noexcept {
  return slab + c->geo.first_slot_offset + slot * c->geo.slot_size;
}

// Reserves `want` slots (ascending within each slab, slab by slab), mapping slabs or
// adding segments when needed. 0, or an errno value with nothing reserved.
[[nodiscard]] int reserve_slots(CacheDesc* c, std::size_t want, SlotRef* out) noexcept;
// Gives reserved slots back (init failed, the write failed, or a free completed).
void release_slots(CacheDesc* c, const SlotRef* refs, std::size_t n) noexcept;
// Records that reserved slots now hold live objects.
void commit_slots(CacheDesc* c, const SlotRef* refs, std::size_t n) noexcept;

// Creates the hints of a segment just added. 0 or ENOMEM.
[[nodiscard]] int hints_add_segment(CacheDesc* c, const Segment* s) noexcept;

// Debug builds: checks the invariants of one slab (cache lock held).
void debug_check_slab(const CacheDesc* c, std::uint32_t seg, std::size_t slab) noexcept;

#ifdef PMALLOC_DEBUG_CHECKS
inline constexpr bool kCacheDebugChecks = true;
#else
inline constexpr bool kCacheDebugChecks = false;
#endif

}  // namespace pmalloc::internal
