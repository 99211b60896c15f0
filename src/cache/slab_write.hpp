// Writing into a slab: the only code that changes cache data pages, always through the
// write-rare writer (src/wr/writer.hpp), never by making a page writable itself.
//
// A SlabUpdate sets (alloc) or clears (free) the live bits of some slots in the slab
// header and writes the objects' contents (or zeros) into the slots, as one plan:
//   plan()  reads the current header (caller holds the slab's lock) and builds the writer
//           chunks, plus, on request, a copy of the bytes they replace;
//   apply() hands the chunks to the writer, which is all or nothing (wr/writer.hpp);
//   undo()  writes the old bytes back after a successful apply (batch rollback).
//
// Chunk shaping. The header lives at the start of the slab, so an object and its live
// bit are at most a slab apart. The back ends' costs differ:
//   procmem - (also the fallback that writes cache pages under pkey and alias, see
//             slab_writes_by_syscall) one system call per chunk whatever its size (measured here: 8 B and 4 KiB
//             both ~2.4 us), so pieces up to 4 KiB apart are merged into one chunk that
//             also rewrites the bytes between them with their current values. The kernel
//             does that copy; neighbouring objects read by other threads see the same
//             bytes before, during and after. Every write to a slab happens under its
//             lock, so "current" cannot change under us.
//   others  - the copy runs in user space, so a chunk may only cover bytes that no other
//             thread reads without the slab lock: the header words, header padding, and
//             the slots being written with their padding. Pieces are merged when they are
//             adjacent in that sense (header + slot 0, slot i + slot i+1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "cache/layout.hpp"
#include "cache/small_array.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal {

// True when cache pages are written by /proc/self/mem, i.e. one system call per chunk:
// under the procmem back end, and under pkey and alias too, whose primary path serves pool
// regions only, so cache pages go to the fallback writer (procmem where available).
bool slab_writes_by_syscall() noexcept;

// The protected live bit of a slot.
bool slab_slot_live(const Geometry& g, const std::byte* slab, std::size_t slot) noexcept;
// Number of live bits in the protected header.
std::size_t slab_live_count(const Geometry& g, const std::byte* slab) noexcept;

class SlabUpdate {
 public:
  SlabUpdate() = default;
  SlabUpdate(const SlabUpdate&) = delete;
  SlabUpdate& operator=(const SlabUpdate&) = delete;

  // slots: ascending, distinct, < slots_per_slab. srcs: object contents for each slot
  // (object_size bytes), or nullptr for all slots to wipe them. make_live: set the live
  // bits (they must be clear) or clear them (they must be set): a mismatch returns EEXIST
  // (some slot is live) or ENOENT (some slot is free) and plans nothing. ENOMEM when the
  // plan's buffers cannot be allocated. keep_old: keep what undo() needs. The sources
  // must stay valid until apply().
  [[nodiscard]] int plan(const Geometry& g, std::byte* slab, const std::size_t* slots, const std::byte* const* srcs,
                         std::size_t n, bool make_live, bool keep_old) noexcept;
  [[nodiscard]] int apply() noexcept;
  [[nodiscard]] int undo() noexcept;
  std::size_t chunks() const noexcept { return count_; }

 private:
  SmallArray<std::uint64_t, 4> header_;  // the new header words
  SmallArray<std::byte, 1024> buffer_;    // images of merged chunks, then old bytes
  SmallArray<wr::Chunk, 4> new_chunks_;
  SmallArray<wr::Chunk, 4> old_chunks_;
  std::size_t count_ = 0;
  bool has_old_ = false;
};

// Striped locks for slabs (32 stripes): every write to a slab, and every check of its live bits that
// precedes a write, happens under lock_of(slab). Batches lock several stripes in
// ascending order (SlabLocks), single operations one.
std::mutex& slab_lock(const std::byte* slab) noexcept;
std::size_t slab_lock_index(const std::byte* slab) noexcept;

class SlabLocks {
 public:
  SlabLocks() = default;
  SlabLocks(const SlabLocks&) = delete;
  SlabLocks& operator=(const SlabLocks&) = delete;
  ~SlabLocks() { unlock(); }
  // Marks the stripe of `slab` as needed.
  void add(const std::byte* slab) noexcept;
  // Locks every marked stripe, in ascending order.
  void lock() noexcept;
  void unlock() noexcept;

 private:
  std::uint64_t wanted_ = 0;
  std::uint64_t held_ = 0;
};

}  // namespace pmalloc::internal
