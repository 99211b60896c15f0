// The sealed object cache engine: create, alloc_init (single and batch), free, destroy,
// stats, and an address lookup. The C API (src/capi/cache_api.cpp) and the C++
// pmalloc::SealedCache<T> (include/pmalloc/cache.hpp) are thin shells over these
// functions; all return 0 or an errno value and record a reason (core/error.hpp).
//
// Order of every operation, so that a failure changes nothing:
//   validate -> [cache lock] choose and reserve slots in the hints (map more slabs or
//   add a segment if needed: the only fallible OS work) -> run `init` on staging copies
//   with no lock held -> [slab locks] re-check the protected live bits and write slab
//   headers and objects through the writer (undone if a later write of the batch fails)
//   -> [cache lock] record the result in the hints.
#pragma once

#include <cstddef>

#include "cache/layout.hpp"
#include "pmalloc/pmalloc.h"

namespace pmalloc::internal {

inline constexpr unsigned kCacheKnownFlags = PMALLOC_SEAL | PMALLOC_NO_GUARD;

[[nodiscard]] int cache_create(const char* name, std::size_t object_size, std::size_t align, unsigned flags,
                               CacheDesc** out) noexcept;
// EINVAL unless `c` is a live cache's descriptor (checked against the segment registry
// before it is dereferenced).
[[nodiscard]] int cache_validate(const CacheDesc* c) noexcept;
[[nodiscard]] int cache_alloc_init(CacheDesc* c, pmalloc_cache_init_fn* init, void* ctx, const void** out) noexcept;
[[nodiscard]] int cache_alloc_init_many(CacheDesc* c, std::size_t count, const void** out,
                                        pmalloc_cache_init_many_fn* init, void* ctx) noexcept;
[[nodiscard]] int cache_free(CacheDesc* c, const void* obj) noexcept;
[[nodiscard]] int cache_free_many(CacheDesc* c, const void* const* objs, std::size_t count) noexcept;
void cache_destroy(CacheDesc* c) noexcept;
[[nodiscard]] int cache_stats(const CacheDesc* c, pmalloc_stats* out) noexcept;

// Where an address range lies with respect to caches (for is_pmalloc_object-style checks).
enum class CachePlacement {
  none,  // not cache memory
  ok,    // [p, p + n) lies inside one live object
  bad,   // cache memory (guard, metadata, slab header, free slot, padding, crossing objects)
};
struct CacheObject {
  const CacheDesc* cache = nullptr;
  const std::byte* begin = nullptr;  // the object's first byte
  std::size_t size = 0;              // object_size
};
CachePlacement cache_locate(const void* p, std::size_t n, CacheObject* out) noexcept;

// The reservations of a cache (for tests measuring residency with mincore): calls
// fn(begin, bytes, arg) for each segment's whole reservation. 0 or EINVAL.
[[nodiscard]] int cache_for_each_reservation(const CacheDesc* c, void (*fn)(const void*, std::size_t, void*),
                                             void* arg) noexcept;

// Invariant checker (layout.hpp). Takes the cache lock. True when every invariant holds.
bool cache_check(const CacheDesc* c) noexcept;

}  // namespace pmalloc::internal
