// The pool engine: create, allocate, free, protect, destroy, and the queries that the
// write-rare, hardening and C/C++ API layers build on. The C API (src/capi) is a thin
// shell over these functions; all return 0 or an errno value and record a reason.
#pragma once

#include <cstddef>

#include "pmalloc/pmalloc.h"
#include "pool/layout.hpp"
#include "registry/registry.hpp"

namespace pmalloc::internal {

inline constexpr unsigned kKnownFlags = PMALLOC_WR | PMALLOC_AUTO | PMALLOC_SEAL | PMALLOC_NO_GUARD;

inline Pool* from_handle(pmalloc_pool* p) noexcept { return reinterpret_cast<Pool*>(p); }
inline const Pool* from_handle(const pmalloc_pool* p) noexcept { return reinterpret_cast<const Pool*>(p); }
inline pmalloc_pool* to_handle(Pool* p) noexcept { return reinterpret_cast<pmalloc_pool*>(p); }

[[nodiscard]] int pool_create(const char* name, unsigned flags, Pool** out) noexcept;
// EINVAL unless `pool` is a live pool's descriptor (checked against the registry first, so
// a stale or foreign pointer is never dereferenced unless it lies in pmalloc metadata).
[[nodiscard]] int pool_validate(const Pool* pool) noexcept;
[[nodiscard]] int pool_alloc(Pool* pool, std::size_t size, std::size_t align, void** out) noexcept;
// The allocation fast path alone (granule alignment) is pool_alloc_fast() in
// pool/fast_path.hpp, inline for pmalloc(), and so is pool_free_fast() for pfree().
[[nodiscard]] int pool_prealloc(Pool* pool, std::size_t size) noexcept;
[[nodiscard]] int pool_free(Pool* pool, const void* p) noexcept;
[[nodiscard]] int pool_protect(Pool* pool) noexcept;
void pool_destroy(Pool* pool) noexcept;
[[nodiscard]] int pool_stats(const Pool* pool, pmalloc_stats* out) noexcept;
// Clears PMALLOC_WR for good (write-rare becomes write-once).
[[nodiscard]] int pool_make_ro(Pool* pool) noexcept;

// Where an address range lies, for wr_* and the usercopy checks.
enum class Placement {
  none,  // not pmalloc memory
  ok,    // inside one live allocation
  bad,   // pmalloc memory, but not inside one live allocation (guard, metadata, free, crossing)
};
struct Allocation {
  Pool* pool = nullptr;
  Region* region = nullptr;
  std::byte* begin = nullptr;  // the allocation's first byte
  std::size_t size = 0;        // its requested size
  bool read_only = false;      // the range's pages are write-protected now
};
// Classifies [p, p + n); fills `out` (pool always set unless `none`).
Placement locate(const void* p, std::size_t n, Allocation* out) noexcept;
// The same for a caller that has looked p up in the registry already (`e` is p's
// registration; none unless it is a pool region's). Saves the second lookup.
Placement locate(const registry::Entry& e, const void* p, std::size_t n, Allocation* out) noexcept;
// The same for a region found in the registry, with the lock of r->pool already held, so
// that the caller can act on the answer before anything changes (wr_*: check, then write).
Placement locate_locked(Region* r, const void* p, std::size_t n, Allocation* out) noexcept;

// Invariant checker (mimalloc's mi_page_is_valid): true when every invariant listed in
// layout.hpp holds for every region of the pool. The caller holds the pool lock (or
// knows that no other thread uses the pool).
bool pool_check(const Pool* pool) noexcept;
// Debug builds (PMALLOC_DEBUG_CHECKS) run pool_check after every operation.
#ifdef PMALLOC_DEBUG_CHECKS
inline constexpr bool kDebugChecks = true;
#else
inline constexpr bool kDebugChecks = false;
#endif
// Switches the per-operation check of debug builds off and on again at run time, for tests
// of scale (a million allocations), where a check that costs O(pool) per operation would
// make them quadratic; they run pool_check themselves at the end. No-op in other builds.
void set_debug_checks(bool on) noexcept;
// The data capacity of the first region of pools created from now on (rounded up to a
// page; kFirstRegionBytes by default). For tests of multi-region behaviour, which would
// otherwise have to fill 64 MiB before a pool grows; 0 restores the default.
void set_first_region_bytes(std::size_t bytes) noexcept;

}  // namespace pmalloc::internal
