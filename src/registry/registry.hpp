// The address registry: which pmalloc region, if any, holds an address.
//
// Every region's whole reservation (guards included) is registered while it exists, so a
// lookup can tell "not pmalloc memory" from "pmalloc memory, but a guard page / metadata
// / free space". Used by pfree's fast checks, is_pmalloc_object and wr_* validation.
// Lookups take a shared lock; add/remove an exclusive one.
#pragma once

#include <cstddef>

namespace pmalloc::internal {

struct Region;

namespace registry {

// 0 or ENOMEM.
[[nodiscard]] int add(const void* begin, std::size_t size, Region* region) noexcept;
void remove(const void* begin) noexcept;
// The region whose reservation contains p, or nullptr.
Region* find(const void* p) noexcept;
// Number of registered reservations.
std::size_t size() noexcept;
// Calls fn(region, context) for every registered region, in address order, with the
// registry locked for reading: fn must not call back into the registry. Used to enumerate
// live pools (pool/lifecycle.cpp: a pool is r->pool for the region holding its descriptor).
void for_each(void (*fn)(Region* region, void* context), void* context) noexcept;

}  // namespace registry
}  // namespace pmalloc::internal
