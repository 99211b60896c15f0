// Pool life cycle as seen from outside one pool: the live-pool list and life-cycle events.
//
// pmalloc_stats_print() reports every live pool, and PMALLOC_VERBOSE=1 logs every pool's
// creation, protection and destruction. Both need a view across pools that the per-pool
// engine (pool.cpp) does not keep, so this file provides it without adding any state to
// the pools themselves:
//
//  * The live pools are found through the address registry: a pool is `r->pool` for the
//    region `r` whose metadata holds the pool descriptor (the pool's first region).
//  * lifecycle_lock() orders pool creation and destruction (exclusive) against walks over
//    the live pools (shared). Without it a walker could read a descriptor that is still
//    being initialised, or one whose pages are being unmapped. Lock order: lifecycle lock,
//    then registry lock, then pool lock; nothing takes the lifecycle lock while holding a
//    pool lock. Creation and destruction are rare and already make system calls, so the
//    process-wide lock costs nothing measurable.
//  * note_*() are the event hooks pool.cpp calls; they print with PMALLOC_VERBOSE only.
//  * PMALLOC_STATS=1 (or "table") / "json" prints pmalloc_stats_print() to stderr at exit.
#pragma once

#include <cstddef>
#include <shared_mutex>

#include "pool/layout.hpp"

namespace pmalloc::internal {

std::shared_mutex& lifecycle_lock() noexcept;

// Calls fn(pool, context) for every live pool, in address order. The caller holds
// lifecycle_lock() shared (so every pool passed stays alive and fully built); fn may call
// any pool_* function of that pool. Returns ENOMEM when the list cannot be collected.
[[nodiscard]] int for_each_live_pool(void (*fn)(Pool* pool, void* context), void* context) noexcept;

// Event hooks, called by pool.cpp: note_created with the lifecycle lock held exclusively,
// the others with the pool lock held.
void note_created(const Pool* pool) noexcept;
void note_protected(const Pool* pool, int error) noexcept;
void note_destroying(const Pool* pool) noexcept;

// Formats pool flags as "RO", "WR|AUTO|SEAL|NO_GUARD", ... into buf (always terminated).
const char* flags_name(unsigned flags, char* buf, std::size_t size) noexcept;

}  // namespace pmalloc::internal
