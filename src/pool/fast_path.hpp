// The fast paths of allocation and free, inline so that pmalloc() and pfree() run them
// without a call: a pool handle the calling thread validated recently (the memo below),
// no lock needed (the process has one thread) or the lock taken on the first try, and
// an in-place edit of the current region's never-protected metadata: a bump of its
// cursor, or clearing one allocation's bits. Everything else goes to pool_alloc() /
// pool_free(), which also report every error. Measured in docs/bench/allocation-profile.md.
#pragma once

#include <sys/single_threaded.h>

#include <bit>
#include <cstddef>
#include <cstdint>

#include "pmalloc/pmalloc.h"
#include "pool/layout.hpp"
#include "pool/lock.hpp"
#include "pool/region.hpp"
#include "registry/generation.hpp"

namespace pmalloc::internal {

// A per-thread memo of the last pool handle that passed pool_validate(), with the
// registry generation of that moment. While the generation has not moved, no region was
// registered or released anywhere, so the handle still points into its live first
// region (destroying the pool would have released it). The memo lives in writable
// memory, so it is trusted only by code that writes nothing but the pool's own writable
// metadata, in place, and makes no system call: the in-place paths. Anything that uses
// the writer or the OS validates in full.
struct Validated {
  const Pool* pool = nullptr;
  // Odd, so it matches no settled registry, and never reached, so that not even a reader
  // during an update (odd sequence numbers) or before the registry exists (generation()
  // is 1 then) matches it: an unset memo vouches for nothing, not even for nullptr.
  std::uint64_t generation = ~std::uint64_t{0};
};
// initial-exec: a direct %fs-relative access, not a __tls_get_addr call, also when the
// library is a shared object (loaded at start-up; it needs 16 bytes of static TLS).
// constinit: no per-access initialisation check in the files that use it.
[[gnu::tls_model("initial-exec")]] extern constinit thread_local Validated t_validated;

inline bool recently_validated(const Pool* pool) noexcept {
  return t_validated.pool == pool && t_validated.generation == registry::generation() &&
         pool->magic == kPoolMagic && pool->self == pool;
}

// bump() for runs that cross a bitmap word or fill one (pool.cpp: the multi-word loop).
std::byte* bump_wide(Region* r, std::size_t n, std::size_t size) noexcept;

// What a bump records once the used and start bits of granules [g, g + n) are set.
inline std::byte* bumped(Region* r, std::size_t g, std::size_t n, std::size_t size) noexcept {
  // The nibble of a free granule is 0 (layout.hpp), so for sizes that are granule
  // multiples nothing is written, nor read: the tail pages stay untouched, not resident.
  if (const unsigned want = static_cast<unsigned>(size % kGranule); want != 0) {
    r->tails[g / 2] = with_tail(r->tails[g / 2], g, want);
  }
  r->cursor = g + n;
  r->live_bytes += size;
  r->live_allocations += 1;
  return r->data + g * kGranule;
}

// The bump itself, for n granules at granule alignment, in region r of a pool with
// `flags`; the caller holds the pool lock (or the process has one thread). The current
// region must have committed room right above its cursor, metadata that was never
// protected, nothing freed below the cursor waiting for reuse, and no auto-protection.
// The result is what the general path would choose. nullptr: nothing changed. A run
// that crosses a bitmap word (or fills one) is left to bump_wide(), or with Wide false to
// the caller, so that the fast path stays a leaf function.
template <bool Wide = true>
inline std::byte* bump(Region* r, unsigned flags, std::size_t n, std::size_t size) noexcept {
  if (r->meta_protected || r->free_below_cursor != 0 || (flags & PMALLOC_AUTO) != 0) return nullptr;
  const std::size_t g = r->cursor;
  if (n > r->committed / kGranule - g) return nullptr;  // cursor * kGranule <= committed
  const std::size_t bit = g % bitmap::kBits;
  if (n >= bitmap::kBits || bit + n > bitmap::kBits) return Wide ? bump_wide(r, n, size) : nullptr;
  r->used[g / bitmap::kBits] |= ((bitmap::Word{1} << n) - 1) << bit;
  r->start[g / bitmap::kBits] |= bitmap::Word{1} << bit;
  return bumped(r, g, n, size);
}

// Frees p in place, as pool_free() would, when p starts a live allocation of region r
// whose metadata was never protected (so nothing of r is protected either), the
// allocation ends within p's bitmap word or at its end, and freeing it needs no walk down
// the bitmap (it is the topmost allocation with nothing free below it, or it is not the
// topmost). false: nothing changed.
[[gnu::always_inline]] inline bool free_in_place(Region* r, const void* p) noexcept {
  if (r->meta_protected || !r->contains_data(p)) return false;
  const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(p) - r->data);
  const std::size_t g = off / kGranule;
  if (off % kGranule != 0 || g >= r->cursor) return false;
  bitmap::Word& used = r->used[g / bitmap::kBits];
  bitmap::Word& start = r->start[g / bitmap::kBits];
  const std::size_t bit = g % bitmap::kBits;
  if (((used & start) >> bit & 1) == 0) return false;  // not the start of a live allocation
  // The run ends at the first granule after g that is free or starts an allocation
  // (granules from the cursor on are free).
  const bitmap::Word after = (~used | start) & ~((bitmap::Word{2} << bit) - 1);  // 0 for bit 63
  std::size_t end = g - bit + static_cast<std::size_t>(std::countr_zero(after));   // 64 when 0
  if (after == 0 && end < r->cursor) {  // the next word exists: does the run go on there?
    const std::size_t w = end / bitmap::kBits;
    if (((~r->used[w] | r->start[w]) & 1) == 0) return false;
  }
  const bool topmost = end == r->cursor;
  if (topmost && r->free_below_cursor != 0) return false;  // the cursor walks down: pool_free()
  const std::size_t n = end - g;  // 1 ... 64 - bit
  const unsigned tail = tail_of(r, g);
  used &= ~((~bitmap::Word{0} >> (bitmap::kBits - n)) << bit);
  start &= ~(bitmap::Word{1} << bit);
  if (tail != 0) r->tails[g / 2] = with_tail(r->tails[g / 2], g, 0);
  if (topmost) {
    r->cursor = g;  // a rollback: the next allocation lands here again
  } else {
    r->free_below_cursor += n;
  }
  r->live_bytes -= n * kGranule - (tail == 0 ? 0 : kGranule - tail);
  r->live_allocations -= 1;
  return true;
}

void debug_check(const Pool* pool) noexcept;

// Runs f(pool) with the pool lock held, or without it while the process has one thread;
// false when the lock is busy (the general path then waits for it) or f returned false.
template <class F>
inline bool with_pool_lock_tried(Pool* pool, F f) noexcept {
  SpinLock* lock = nullptr;
  if (__libc_single_threaded == 0) {
    lock = &pool_lock(pool);
    if (!lock->try_lock()) return false;
  }
  const bool done = f();
#ifdef PMALLOC_DEBUG_CHECKS
  if (done) debug_check(pool);  // under the lock, as pool_check() requires
#endif
  if (lock != nullptr) lock->unlock();
  return done;
}

// pfree(pool, p) when free_in_place() applies to the pool's current region: true when
// done, false when pool_free() must run (which then also reports any error).
inline bool pool_free_fast(Pool* pool, const void* p) noexcept {
  return recently_validated(pool) && with_pool_lock_tried(pool, [&] { return free_in_place(pool->current, p); });
}

// The memory, or nullptr when pool_alloc() must run. The pool lock is skipped while the
// process has one thread (glibc's __libc_single_threaded, which its own malloc uses) and
// otherwise tried once: a busy lock, like anything unusual, is pool_alloc()'s business.
// No call on this path: pmalloc() is a leaf function until it hands over to pool_alloc().
inline void* pool_alloc_fast(Pool* pool, std::size_t size) noexcept {
  // size - 1 wraps for 0: every invalid size goes to pool_alloc() and its error.
  if (size - 1 >= kMaxAllocation || !recently_validated(pool)) return nullptr;
  const std::size_t n = (size + kGranule - 1) / kGranule;
  std::byte* p = nullptr;
  with_pool_lock_tried(pool, [&] { return (p = bump<false>(pool->current, pool->flags, n, size)) != nullptr; });
  return p;
}

}  // namespace pmalloc::internal
