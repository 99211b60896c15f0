// The allocation fast path, inline so that pmalloc() can run it without a call: a pool
// handle the calling thread validated recently (the memo below), no lock needed (the
// process has one thread) or the lock taken, and a bump of the current region's cursor
// in place. Everything else returns nullptr and pool_alloc() takes over, which also
// reports every error. Measured in docs/bench/allocation-profile.md.
#pragma once

#include <sys/single_threaded.h>

#include <cstddef>
#include <cstdint>

#include "pmalloc/pmalloc.h"
#include "pool/layout.hpp"
#include "pool/lock.hpp"
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

// The bump itself, for n granules at granule alignment, in region r of a pool with
// `flags`; the caller holds the pool lock (or the process has one thread). The current
// region must have committed room right above its cursor, metadata that was never
// protected, nothing freed below the cursor waiting for reuse, and no auto-protection.
// The result is what the general path would choose. nullptr: nothing changed. A run
// that crosses a bitmap word (or fills one) is left to bump_wide(), or with Wide false to
// the caller, so that the fast path stays a leaf function.
std::byte* bump_wide(Region* r, std::size_t n, std::size_t size) noexcept;
template <bool Wide = true>
inline std::byte* bump(Region* r, unsigned flags, std::size_t n, std::size_t size) noexcept {
  if (r->meta_protected || r->free_below_cursor != 0 || (flags & PMALLOC_AUTO) != 0) return nullptr;
  const std::size_t g = r->cursor;
  if (n > r->committed / kGranule - g) return nullptr;  // cursor * kGranule <= committed
  const std::size_t bit = g % bitmap::kBits;
  if (n >= bitmap::kBits || bit + n > bitmap::kBits) return Wide ? bump_wide(r, n, size) : nullptr;
  r->used[g / bitmap::kBits] |= ((bitmap::Word{1} << n) - 1) << bit;
  r->start[g / bitmap::kBits] |= bitmap::Word{1} << bit;
  // The nibble of a free granule is 0 (layout.hpp), so for sizes that are granule
  // multiples nothing is written, nor read: the tail pages stay untouched, not resident.
  if (const unsigned want = static_cast<unsigned>(size % kGranule); want != 0) {
    std::uint8_t& tail = r->tails[g / 2];
    const unsigned shift = (g & 1) * 4;
    tail = static_cast<std::uint8_t>((tail & ~(0xFu << shift)) | (want << shift));
  }
  r->cursor = g + n;
  r->live_bytes += size;
  r->live_allocations += 1;
  return r->data + g * kGranule;
}

void debug_check(const Pool* pool) noexcept;

// The memory, or nullptr when pool_alloc() must run. The pool lock is skipped while the
// process has one thread (glibc's __libc_single_threaded, which its own malloc uses) and
// otherwise tried once: a busy lock, like anything unusual, is pool_alloc()'s business.
// No call on this path: it is a leaf, so that pmalloc() needs no stack frame.
inline void* pool_alloc_fast(Pool* pool, std::size_t size) noexcept {
  // size - 1 wraps for 0: every invalid size goes to pool_alloc() and its error.
  if (size - 1 >= kMaxAllocation || !recently_validated(pool)) return nullptr;
  const std::size_t n = (size + kGranule - 1) / kGranule;
  SpinLock* lock = nullptr;
  if (__libc_single_threaded == 0) {
    lock = &pool_lock(pool);
    if (!lock->try_lock()) return nullptr;
  }
  std::byte* p = bump<false>(pool->current, pool->flags, n, size);
#ifdef PMALLOC_DEBUG_CHECKS
  if (p != nullptr) debug_check(pool);  // under the lock, as pool_check() requires
#endif
  if (lock != nullptr) lock->unlock();
  return p;
}

}  // namespace pmalloc::internal
