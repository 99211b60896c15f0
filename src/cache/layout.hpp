// What a sealed object cache is made of, and which parts of it are protected.
//
// Glossary (see docs/cache.md):
//   slot     - the place of one object: object_size bytes, rounded up to the alignment.
//   slab     - a run of pages (one page for small objects) that holds a *slab header*
//              (one bit per slot: "live") followed by the slots, packed densely.
//   segment  - one contiguous reservation, laid out as
//                  [guard][meta page: Segment (+ CacheDesc in the first)][slab 0][slab 1]...[guard]
//              Slabs are mapped read-only from the front, in steps (`slabs_committed`).
//   hints    - the cache's writable bookkeeping (src/cache/hints.hpp): which slabs have
//              free slots, slots reserved for an init in progress, counters, the lock.
//
// Protection: the meta page and every mapped slab page are read-only from the moment
// they exist (never read-write; sealed with PMALLOC_SEAL when possible). The bytes that
// decide *where* the writer writes (descriptor, segment headers: addresses, geometry,
// bounds) and the truth about which slots are live (the slab headers) are all in
// protected pages and change only through the writer. The hints live in ordinary memory
// because they change on every call; they are only ever used to *choose*, never trusted:
// before the library writes a slot it re-checks the slot's live bit in the protected slab
// header (and stops the process if the hints claimed a live slot was free), and before it
// returns a slab to the OS it re-checks that the slab header has no live bit. A corrupted
// hint can therefore waste memory or fail calls, but cannot make the library overwrite a
// live object or write outside the cache's free slots.
//
// Invariants (checked by cache_check() in debug builds):
//   slabs_committed <= slab_capacity;  object_size <= slot_size;  header fits before slot 0;
//   protected live bits of a slab  ⊆  its hint bits (live ∪ reserved);
//   hint count of a slab == popcount(hint bits); a slab is on exactly the list its count
//   says (partial: 0 < count < slots; empty lists: count == 0; full: on none);
//   live_objects == Σ protected live bits; resident slabs are counted in resident_slabs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pool/layout.hpp"  // kNameMax

struct pmalloc_cache;  // the C handle; the same object as internal::CacheDesc

namespace pmalloc::internal {

struct CacheState;

inline constexpr std::uint64_t kCacheMagic = 0x6568636163636d70ULL;      // "pmccache"
inline constexpr std::uint64_t kSegmentMagic = 0x746e656d676573ULL;      // "segment"
inline constexpr std::uint64_t kDeadCacheMagic = 0x646165646863636dULL;
inline constexpr std::size_t kCacheObjectMax = std::size_t{1} << 20;
inline constexpr std::size_t kMaxSegments = 48;
inline constexpr std::size_t kFirstSegmentBytes = std::size_t{1} << 20;  // slab space of segment 0
inline constexpr std::size_t kMaxSegmentBytes = std::size_t{256} << 20;
inline constexpr std::size_t kSlabCommitStep = std::size_t{64} << 10;     // slabs are mapped in steps of this

// How objects are packed; fixed at creation.
struct Geometry {
  std::size_t object_size;
  std::size_t align;
  std::size_t slot_size;          // object_size rounded up to align
  std::size_t slab_bytes;         // page multiple
  std::size_t slots_per_slab;
  std::size_t header_words;       // 64-bit words of live bits at the start of each slab
  std::size_t first_slot_offset;  // header_words * 8 rounded up to align
};

// Computes the packing for an object size and alignment (both already validated).
Geometry make_geometry(std::size_t object_size, std::size_t align) noexcept;

struct CacheDesc;

struct Segment {
  std::uint64_t magic;
  CacheDesc* cache;
  std::uint32_t index;            // position in CacheDesc::segments
  std::byte* reservation;
  std::size_t reservation_size;
  std::byte* meta;                // the meta page(s), right after the front guard
  std::size_t meta_bytes;
  std::byte* slabs;               // slab 0 (= meta + meta_bytes)
  std::size_t slab_capacity;      // slabs that fit in the reservation
  std::size_t slabs_committed;    // slabs [0, slabs_committed) are mapped read-only
  std::size_t sealed_bytes;       // bytes from `meta` that are mseal()ed
  std::size_t slab_bytes;         // copy of the geometry's slab_bytes

  std::byte* slab(std::size_t i) const noexcept { return slabs + i * slab_bytes; }
};

struct CacheDesc {
  std::uint64_t magic;
  const CacheDesc* self;          // == this while alive
  unsigned flags;                 // as given at creation
  bool seal;                      // pages are really mseal()ed
  char name[kNameMax + 1];
  Geometry geo;
  CacheState* state;              // the writable hints (heap)
  std::size_t next_segment_bytes; // slab space of the next segment
  std::size_t segment_count;
  Segment* segments[kMaxSegments];
};

inline CacheDesc* from_handle(pmalloc_cache* c) noexcept { return reinterpret_cast<CacheDesc*>(c); }
inline const CacheDesc* from_handle(const pmalloc_cache* c) noexcept {
  return reinterpret_cast<const CacheDesc*>(c);
}
inline pmalloc_cache* to_handle(CacheDesc* c) noexcept { return reinterpret_cast<pmalloc_cache*>(c); }

}  // namespace pmalloc::internal
