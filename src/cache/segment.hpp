// Cache segments: reserve, lay out, map slabs read-only (and seal them), release; and the
// process-wide registry of segments (address -> Segment) used to validate handles and to
// answer "is this cache memory?".
//
// A segment's meta page is written in place exactly once, while it is still private to
// the creating thread, and is read-only (sealed with PMALLOC_SEAL) before the segment is
// published; later changes (the mapped-slab frontier) go through the writer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cache/layout.hpp"

namespace pmalloc::internal {

// Reserves a segment for `slab_count` slabs of g.slab_bytes. When `desc` is non-null this
// is the cache's first segment: *desc is copied into the meta page, completed (self,
// segments[0], segment_count) and *desc_out points at the copy. `cache` is the owner
// otherwise. The segment is registered; nothing else is linked.
[[nodiscard]] int segment_create(const Geometry& g, std::size_t slab_count, unsigned flags, bool seal,
                                 CacheDesc* cache, std::uint32_t index, const CacheDesc* desc, Segment** out,
                                 CacheDesc** desc_out) noexcept;

// Maps slabs [slabs_committed, upto) read-only (rounded up to the commit step, within
// capacity), seals them when the cache seals, and advances the protected frontier
// through the writer. 0 or an errno value (then the frontier is unchanged). *prepared
// (kept by the caller, initially 0) remembers slabs already mapped and sealed by an
// attempt whose frontier update failed.
[[nodiscard]] int segment_map_slabs(const CacheDesc* c, Segment* s, std::size_t upto, std::size_t* prepared) noexcept;

// Returns the pages of slabs [first, first + count) to the OS (they stay mapped
// read-only and read as zeros).
[[nodiscard]] int segment_discard_slabs(const Segment* s, std::size_t first, std::size_t count) noexcept;

// Unregisters and unmaps the segment, except its sealed part. Returns the bytes that had
// to stay mapped.
std::size_t segment_release(Segment* s) noexcept;

// The segment whose reservation holds p, or nullptr.
Segment* segment_find(const void* p) noexcept;

}  // namespace pmalloc::internal
