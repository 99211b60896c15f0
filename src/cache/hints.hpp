// The cache's writable bookkeeping ("hints"): what changes on every call lives here, in
// ordinary heap memory, next to the lock that guards it.
//
// Per slab: a bitmap of slots that are live *or reserved* (an init in progress), their
// count, whether the slab's pages may hold memory ("resident"), and links for the list
// the slab is on:
//   partial - some slots in use, some free: allocation takes from here first;
//   empty   - no slot in use, pages still resident (kept to absorb alloc/free churn);
//   clean   - no slot in use, pages never written or returned to the OS.
// Full slabs are on no list. Slabs beyond a segment's `slabs_committed` are not mapped
// yet and have no list either.
//
// None of this is trusted for safety (see layout.hpp): every decision that could harm an
// object is re-checked against the protected slab header first. The lock is a std::mutex
// rather than the pools' spin lock: it is never held across a writer call or `init`, but
// it is held across the rare mmap/mprotect that maps more slabs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "cache/layout.hpp"

namespace pmalloc::internal {

enum class SlabList : std::uint8_t { none, partial, empty, clean };

struct SlabHint {
  SlabHint* prev = nullptr;
  SlabHint* next = nullptr;
  std::uint32_t count = 0;        // slots live or reserved
  std::uint32_t segment = 0;      // index in CacheDesc::segments
  std::size_t index = 0;          // slab index in the segment
  SlabList list = SlabList::none;
  bool resident = false;          // written since mapped or last returned to the OS
  bool emptying = false;          // collected by release_slots (transient)
};

// An intrusive doubly linked list of slabs.
class SlabQueue {
 public:
  void push(SlabHint* s, SlabList which) noexcept;
  void remove(SlabHint* s) noexcept;
  SlabHint* front() const noexcept { return head_; }
  std::size_t size() const noexcept { return size_; }

 private:
  SlabHint* head_ = nullptr;
  std::size_t size_ = 0;
};

struct SegmentHints {
  std::unique_ptr<SlabHint[]> slabs;
  std::unique_ptr<std::uint64_t[]> bits;  // header_words per slab: live or reserved
  std::size_t capacity = 0;
  std::size_t prepared = 0;  // slabs mapped (and sealed) beyond the recorded frontier
};

struct CacheState {
  std::mutex lock;
  SegmentHints segments[kMaxSegments];
  SlabQueue partial;
  SlabQueue empty;
  SlabQueue clean;
  std::size_t live_objects = 0;
  std::size_t resident_slabs = 0;
  std::size_t heap_bytes = 0;      // bytes of hint arrays, for stats

  SlabQueue& queue(SlabList which) noexcept {
    return which == SlabList::partial ? partial : which == SlabList::empty ? empty : clean;
  }
};

// Resident slabs with no object that an unsealed cache keeps instead of returning them
// to the OS at once: a program that frees and recreates one object in a loop would
// otherwise pay a madvise and a page fault per cycle.
inline constexpr std::size_t kKeptEmptySlabs = 1;

}  // namespace pmalloc::internal
