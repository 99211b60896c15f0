// What a pool is made of: the descriptor, its regions, and where their metadata lives.
//
// Glossary (see docs/design.md): a *pool* is a set of *regions*; a region is one
// contiguous reservation, laid out as
//
//     [guard][meta: Region header, (Pool descriptor), used bits, start bits, tails][data][guard]
//
// The guards are PROT_NONE pages (absent with PMALLOC_NO_GUARD). Data is committed
// (made read-write) on demand from its start; `committed` bytes are accessible, the rest
// of the data space stays PROT_NONE until needed. Data is handed out in *granules* of
// kGranule bytes. The first region of a pool also holds the pool descriptor, so the
// handle the user holds points into pmalloc-managed pages.
//
// Protection works on prefixes, which keeps it to one mprotect per region:
//   meta + data[0, protected_bytes)   read-only once anything in the region is protected;
//   data[protected_bytes, committed)  read-write, open for allocation;
//   data[committed, capacity)         PROT_NONE, reserved.
// Invariants (checked by check_region() in debug builds):
//   protected_bytes <= committed <= capacity_bytes, all page multiples;
//   cursor * kGranule <= committed; every granule >= cursor is free;
//   protected_bytes <= cursor * kGranule  (new allocations never land in protected pages);
//   free_below_cursor == free granules in [protected_bytes / kGranule, cursor);
//   live_allocations == start bits set; live granules == used bits set;
//   a granule's tail nibble is 0 unless its start bit is set (so an allocation of a
//   granule-multiple size writes no nibble, and tail pages stay untouched).
// Metadata is edited in place while `meta_protected` is false and through the writer
// (see meta_txn.hpp) once it is true.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pool/bitmap.hpp"

struct pmalloc_pool;  // the C handle; the same object as internal::Pool

namespace pmalloc::internal {

inline constexpr std::size_t kGranule = 16;           // also the default alignment
inline constexpr std::size_t kNameMax = 63;            // bytes of a pool name, without NUL
// The data capacity of a pool's first region. It is address space only (PROT_NONE until
// committed, kCommitStep at a time; its metadata is 3/64 of it, resident only where
// touched), so it is generous: every pool of up to 64 MiB is one region, and protecting
// it is one mprotect call. That call count is what protection costs beyond the page-table
// work: on a paravirtualised MMU each call that changes page tables pays a TLB-flush /
// shadow-sync cost of ~150 us, so a 40 MiB pool in four regions took 1.3x the time of one
// mprotect over 40 MiB, and in one region 1.05x (docs/bench/allocation-profile.md).
inline constexpr std::size_t kFirstRegionBytes = 64u << 20;
inline constexpr std::size_t kMaxRegionBytes = 256u << 20;
// Each new region has this many times the data capacity of the one before (up to the
// maximum): 64 MiB, 256 MiB, 256 MiB ...; protecting a pool takes one mprotect per region.
inline constexpr std::size_t kRegionGrowth = 4;
inline constexpr std::size_t kCommitStep = 64u << 10;  // data is committed in steps of this
inline constexpr std::size_t kMaxAllocation = std::size_t{1} << 40;

inline constexpr std::uint64_t kPoolMagic = 0x6c6f6f70636d6c70ULL;    // "plmcpool"
inline constexpr std::uint64_t kRegionMagic = 0x6e6f6967657270ULL;    // "pregion"
inline constexpr std::uint64_t kDestroyedMagic = 0x6465796f72747364ULL;

struct Pool;

struct Region {
  std::uint64_t magic;
  Pool* pool;
  Region* next;
  std::byte* reservation;
  std::size_t reservation_size;
  std::byte* meta;               // first metadata page (right after the front guard)
  std::size_t meta_bytes;        // page multiple
  std::byte* data;               // = meta + meta_bytes
  std::size_t capacity;          // granules of data space; capacity * kGranule is a page multiple
  std::size_t committed;         // bytes of data that are accessible
  std::size_t protected_bytes;   // bytes of data, from its start, that are read-only
  std::size_t sealed_bytes;      // bytes from `meta` up to which the region is mseal()ed; the
                                 // sealed span starts at `meta`, or at `data` where no writer
                                 // can change sealed pages (wr::writes_sealed_pages(): the
                                 // metadata then stays protected but unsealed, see region.cpp)
  std::size_t cursor;            // granule index: bump pointer
  std::size_t free_below_cursor; // reusable freed granules in [protected_bytes/kGranule, cursor)
  std::size_t live_bytes;        // sum of requested sizes of live allocations
  std::size_t live_allocations;
  bool meta_protected;           // header, bitmaps (and descriptor) are read-only
  bitmap::Word* used;
  bitmap::Word* start;
  std::uint8_t* tails;           // 4 bits per granule: requested size % kGranule at the start granule
  std::size_t pkey_bytes;        // data[0, pkey_bytes) is tagged with the write-rare protection key
                                 // (pkey writer only; <= protected_bytes; see wr/writer.hpp)
  int shared_owner;              // memfd-backed (alias writer): the process that created the
                                 // region, which alone may update it through the writer (a
                                 // forked child shares the pages); 0 for private regions

  std::size_t capacity_bytes() const noexcept { return capacity * kGranule; }
  bool contains_data(const void* p) const noexcept {
    auto* b = static_cast<const std::byte*>(p);
    return b >= data && b < data + capacity_bytes();
  }
};

struct Pool {
  std::uint64_t magic;
  const Pool* self;              // == this while alive; a cheap forgery check
  unsigned flags;
  unsigned user_flags;           // flags as given at creation (before pmalloc_make_pool_ro)
  char name[kNameMax + 1];
  Region* first;                 // the region that holds this descriptor
  Region* last;                  // the end of the region list
  Region* current;               // allocation happens here first: the region the last
                                 // allocation went to, or an earlier one a rollback emptied
  std::size_t regions;
  std::size_t next_region_bytes; // data capacity of the next region (grows geometrically)
  std::size_t protect_calls;     // pmalloc_protect_pool() calls that succeeded
  bool ever_protected;
};

}  // namespace pmalloc::internal
