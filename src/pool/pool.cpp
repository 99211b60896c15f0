// Pool operations: create, allocate, free, protect, destroy (see pool.hpp, layout.hpp).
//
// Every operation follows the same order so that a failure changes nothing: validate,
// take the pool lock, do the fallible OS work (commit pages, add a region), then stage
// metadata edits in a MetaTxn and commit them (in place, or through the writer once the
// metadata is protected).
#include "pool/pool.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "core/error.hpp"
#include "os/os.hpp"
#include "pool/fast_path.hpp"
#include "pool/lifecycle.hpp"
#include "pool/lock.hpp"
#include "pool/region.hpp"
#include "registry/generation.hpp"
#include "registry/registry.hpp"

namespace pmalloc::internal {
namespace {

constexpr std::size_t kNone = ~std::size_t{0};

std::size_t align_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }

std::atomic<bool> g_debug_checks{true};
std::atomic<std::size_t> g_first_region_bytes{kFirstRegionBytes};

// Stages the bitmap/tail/header edits that record an allocation of n granules at g.
int record_allocation(Region* r, std::size_t g, std::size_t n, std::size_t size, std::size_t new_cursor,
                      std::size_t new_free, std::size_t new_committed, MetaTxn& tx) noexcept {
  const bool ro = r->meta_protected;
  const std::size_t w0 = g / bitmap::kBits;
  const std::size_t w1 = (g + n - 1) / bitmap::kBits;
  auto* used = tx.edit(r->used + w0, ro, w1 - w0 + 1);
  auto* start = tx.edit(r->start + w0, ro);
  // The size nibble only where it is not 0, which a free granule's already is (see bump()).
  const unsigned want = static_cast<unsigned>(size % kGranule);
  const bool tail_changes = want != 0;
  auto* tail = tail_changes ? tx.edit(r->tails + g / 2, ro) : nullptr;
  Region* h = tx.edit(r, ro);
  if (used == nullptr || start == nullptr || (tail_changes && tail == nullptr) || h == nullptr) {
    return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
  }
  const std::size_t base = w0 * bitmap::kBits;
  bitmap::set_range(used, g - base, g + n - base);
  bitmap::set_range(start, g - base, g - base + 1);
  if (tail_changes) *tail = with_tail(*tail, g, want);
  h->cursor = new_cursor;
  h->free_below_cursor = new_free;
  h->committed = new_committed;
  h->live_bytes += size;
  h->live_allocations += 1;
  return 0;
}

// Tries to place n granules (alignment align_g granules) in r. Returns the granule or kNone
// (no room). May commit pages; errors other than "no room" come back in *error.
std::size_t place(Region* r, std::size_t n, std::size_t align_g, std::size_t size, MetaTxn& tx,
                  int* error) noexcept {
  const std::size_t pg = r->protected_bytes / kGranule;
  // Reuse memory freed before protection (rollback) when there is enough of it.
  if (r->free_below_cursor >= n) {
    const std::size_t g = bitmap::find_clear_run(r->used, pg, r->cursor, n, align_g);
    if (g < r->cursor) {
      *error = record_allocation(r, g, n, size, r->cursor, r->free_below_cursor - n, r->committed, tx);
      return *error == 0 ? g : kNone;
    }
  }
  const std::size_t from = r->cursor > pg ? r->cursor : pg;
  const std::size_t g = align_up(from, align_g);
  if (g > r->capacity || n > r->capacity - g) return kNone;
  std::size_t committed = 0;
  if ((*error = region_commit(r, (g + n) * kGranule, &committed)) != 0) return kNone;
  *error = record_allocation(r, g, n, size, g + n, r->free_below_cursor + (g - from), committed, tx);
  return *error == 0 ? g : kNone;
}

// Appends a region with room for at least `need` bytes (plus alignment slack).
int add_region(Pool* pool, std::size_t need, Region** out) noexcept {
  std::size_t bytes = pool->next_region_bytes;
  const bool standard = need <= bytes;
  if (!standard) bytes = need;
  Region* r = nullptr;
  if (int e = region_create(pool, bytes, pool->flags, &r, nullptr)) return e;
  MetaTxn tx;
  Region* prev = tx.edit(pool->last, pool->last->meta_protected);
  Pool* d = tx.edit(pool, pool->first->meta_protected);
  if (prev == nullptr || d == nullptr) {
    region_release(r);
    return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
  }
  prev->next = r;
  d->last = r;
  d->current = r;
  d->regions += 1;
  if (standard && bytes < kMaxRegionBytes) d->next_region_bytes = std::min(bytes * kRegionGrowth, kMaxRegionBytes);
  if (int e = tx.commit()) {
    region_release(r);
    return e;
  }
  *out = r;
  return 0;
}

// PMALLOC_AUTO: write-protect every page of r that allocation has moved past, that is
// every page before the one where the newest allocation (at granule g) begins. Objects
// in those pages were allocated before the newest one and are taken to be initialised
// (allocate, initialise, allocate the next); the newest object stays writable until an
// allocation begins on a later page or the pool is protected.
void auto_protect(Pool* pool, Region* r, std::size_t g) noexcept {
  const std::size_t page = os::page_size();
  const std::size_t upto = (g * kGranule) & ~(page - 1);
  if (upto <= r->protected_bytes) return;
  // The allocation itself succeeded; on failure the page stays writable until the next
  // attempt (region_protect_commit leaves protection and metadata in agreement).
  (void)region_protect_commit(r, upto, (pool->flags & PMALLOC_SEAL) != 0);
}

// pool_validate(), remembered for recently_validated() on success.
int validate_and_remember(const Pool* pool) noexcept {
  const std::uint64_t generation = registry::generation();
  if (int e = pool_validate(pool)) return e;
  if ((generation & 1) == 0) t_validated = Validated{pool, generation};
  return 0;
}

// Whether region a comes before region b in the pool's list.
bool precedes(const Region* a, const Region* b) noexcept {
  for (const Region* r = a->next; r != nullptr; r = r->next) {
    if (r == b) return true;
  }
  return false;
}

Region* region_of(const Pool* pool, const void* p) noexcept {
  for (Region* r = pool->first; r != nullptr; r = r->next) {
    if (r->contains_data(p)) return r;
  }
  return nullptr;
}

}  // namespace

[[gnu::tls_model("initial-exec")]] constinit thread_local Validated t_validated;

void debug_check(const Pool* pool) noexcept {
  if constexpr (kDebugChecks) {
    if (!g_debug_checks.load(std::memory_order_relaxed)) return;
    if (!pool_check(pool)) fatal("pool '%s' failed its invariant check", pool->name);
  }
}

// bump() for runs that cross a bitmap word (or fill one): the multi-word loop out of line.
std::byte* bump_wide(Region* r, std::size_t n, std::size_t size) noexcept {
  const std::size_t g = r->cursor;
  bitmap::set_range(r->used, g, g + n);
  bitmap::set_range(r->start, g, g + 1);
  return bumped(r, g, n, size);
}

void set_debug_checks(bool on) noexcept { g_debug_checks.store(on, std::memory_order_relaxed); }

void set_first_region_bytes(std::size_t bytes) noexcept {
  g_first_region_bytes.store(bytes == 0 ? kFirstRegionBytes : std::min(bytes, kMaxRegionBytes),
                             std::memory_order_relaxed);
}

int pool_validate(const Pool* pool) noexcept {
  if (pool == nullptr) return fail(EINVAL, "pmalloc: the pool is NULL");
  const Region* r = registry::find(pool);
  if (r == nullptr || r->pool != pool || reinterpret_cast<const std::byte*>(pool) < r->meta ||
      reinterpret_cast<const std::byte*>(pool) >= r->data) {
    return fail(EINVAL, "pmalloc: %p is not a live pmalloc pool", static_cast<const void*>(pool));
  }
  if (pool->magic != kPoolMagic || pool->self != pool) {
    return fail(EINVAL, "pmalloc: pool %p is destroyed or corrupt", static_cast<const void*>(pool));
  }
  return 0;
}

int pool_create(const char* name, unsigned flags, Pool** out) noexcept {
  *out = nullptr;
  if ((flags & ~kKnownFlags) != 0) {
    return fail(EINVAL, "pmalloc_create_pool: unknown flags 0x%x", flags & ~kKnownFlags);
  }
  if (name == nullptr) name = "";
  const std::size_t len = std::strlen(name);
  if (len > kNameMax) {
    return fail(EINVAL, "pmalloc_create_pool: name is %zu bytes, at most %zu allowed", len, kNameMax);
  }
  // Held until the descriptor is complete: pool walkers (stats) never see a half-built pool.
  std::unique_lock life(lifecycle_lock());
  Region* r = nullptr;
  Pool* pool = nullptr;
  const std::size_t first_bytes = g_first_region_bytes.load(std::memory_order_relaxed);
  if (int e = region_create(nullptr, first_bytes, flags, &r, &pool)) return e;
  pool->magic = kPoolMagic;
  pool->self = pool;
  pool->flags = flags;
  pool->user_flags = flags;
  std::memcpy(pool->name, name, len + 1);
  pool->first = r;
  pool->last = r;
  pool->current = r;
  pool->regions = 1;
  pool->next_region_bytes = std::min(first_bytes * kRegionGrowth, kMaxRegionBytes);
  *out = pool;
  debug_check(pool);
  note_created(pool);
  return 0;
}

int pool_alloc(Pool* pool, std::size_t size, std::size_t align, void** out) noexcept {
  *out = nullptr;
  const bool memo = recently_validated(pool);
  if (!memo) {
    if (int e = validate_and_remember(pool)) return e;
  }
  if (size == 0) return fail(EINVAL, "pmalloc: size must not be 0");
  if (align == 0 || (align & (align - 1)) != 0 || align > os::page_size()) {
    return fail(EINVAL, "pmalloc_aligned: alignment %zu is not a power of two <= %zu", align, os::page_size());
  }
  if (size > kMaxAllocation) return fail(ENOMEM, "pmalloc: %zu bytes is more than a pool can hold", size);
  const std::size_t n = (size + kGranule - 1) / kGranule;
  const std::size_t align_g = align > kGranule ? align / kGranule : 1;

  PoolGuard guard(pool);
  if (std::byte* p = align_g == 1 ? bump(pool->current, pool->flags, n, size) : nullptr) {
    debug_check(pool);
    *out = p;
    return 0;
  }
  // The general path may commit pages and write through the writer: no memo for it.
  if (memo) {
    if (int e = pool_validate(pool)) return e;
  }
  MetaTxn tx;
  int error = 0;
  Region* r = pool->current;
  std::size_t g = place(r, n, align_g, size, tx, &error);
  // The current region is full: try the others, both memory freed below their cursor and
  // the room above it (a rollback moves the cursor back, emptying earlier regions too).
  for (Region* o = pool->first; g == kNone && error == 0 && o != nullptr; o = o->next) {
    const std::size_t open_from = std::max(o->cursor, o->protected_bytes / kGranule);
    if (o != pool->current && (o->free_below_cursor >= n || o->capacity - open_from >= n)) {
      r = o;
      g = place(o, n, align_g, size, tx, &error);
    }
  }
  if (g == kNone && error == 0) {
    if ((error = add_region(pool, n * kGranule + align, &r)) == 0) g = place(r, n, align_g, size, tx, &error);
    if (g == kNone && error == 0) error = fail(ENOMEM, "pmalloc: cannot place %zu bytes", size);
  }
  if (error != 0) return error;
  if (r != pool->current) {  // allocation continues where this one went
    Pool* d = tx.edit(pool, pool->first->meta_protected);
    if (d == nullptr) return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
    d->current = r;
  }
  if (int e = tx.commit()) return e;
  if ((pool->flags & PMALLOC_AUTO) != 0) auto_protect(pool, r, g);
  debug_check(pool);
  *out = r->data + g * kGranule;
  return 0;
}

int pool_prealloc(Pool* pool, std::size_t size) noexcept {
  if (int e = pool_validate(pool)) return e;
  if (size == 0) return fail(EINVAL, "pmalloc_prealloc: size must not be 0");
  if (size > kMaxAllocation) return fail(ENOMEM, "pmalloc_prealloc: %zu bytes is more than a pool can hold", size);
  PoolGuard guard(pool);
  Region* r = pool->current;
  const std::size_t from = std::max(r->cursor * kGranule, r->protected_bytes);
  if (size > r->capacity_bytes() - from) {
    if (int e = add_region(pool, size, &r)) return e;
  }
  const std::size_t begin = std::max(r->cursor * kGranule, r->protected_bytes);
  std::size_t committed = 0;
  if (int e = region_commit(r, begin + size, &committed)) return e;
  MetaTxn tx;
  Region* h = tx.edit(r, r->meta_protected);
  if (h == nullptr) return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
  h->committed = committed;
  if (int e = tx.commit()) return e;
  debug_check(pool);
  return 0;
}

int pool_free(Pool* pool, const void* p) noexcept {
  const bool memo = recently_validated(pool);
  if (!memo) {
    if (int e = validate_and_remember(pool)) return e;
  }
  if (p == nullptr) return fail(EINVAL, "pfree: pointer is NULL");
  PoolGuard guard(pool);
  Region* r = region_of(pool, p);
  if (r == nullptr) {
    return fail(EINVAL, "pfree: %p is not memory of pool '%s'", p, pool->name);
  }
  // Freeing makes no system call; with the region's metadata writable it is edited in
  // place, which the memo may vouch for. The writer needs the full check.
  if (memo && r->meta_protected) {
    if (int e = pool_validate(pool)) return e;
  }
  const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(p) - r->data);
  const std::size_t g = off / kGranule;
  if (off % kGranule != 0 || g >= r->cursor || !bitmap::test(r->start, g) || !bitmap::test(r->used, g)) {
    return fail(EINVAL, "pfree: %p does not start a live allocation of pool '%s' (interior pointer, "
                "free space or double free)", p, pool->name);
  }
  const std::size_t end = bitmap::find_run_end(r->used, r->start, g + 1, r->cursor);
  const std::size_t n = end - g;
  const unsigned tail = tail_of(r, g);
  const std::size_t size = n * kGranule - (tail == 0 ? 0 : kGranule - tail);

  // Memory freed in protected pages is only unaccounted; before protection it is reusable,
  // and freeing the topmost allocations moves the cursor back (full rollback). With
  // PMALLOC_AUTO an allocation can straddle the protected boundary: its part above the
  // boundary (from `open`) is reusable.
  const std::size_t pg = r->protected_bytes / kGranule;
  const std::size_t open = std::max(g, pg);
  const std::size_t cursor_before = r->cursor;
  std::size_t cursor = cursor_before;
  std::size_t free_below = r->free_below_cursor;
  if (end > open) {
    if (end == cursor) {
      cursor = open;
      while (cursor > pg && !bitmap::test(r->used, cursor - 1)) {
        --cursor;
        --free_below;
      }
    } else {
      free_below += end - open;
    }
  }
  MetaTxn tx;
  const bool ro = r->meta_protected;
  const std::size_t w0 = g / bitmap::kBits;
  const std::size_t w1 = (end - 1) / bitmap::kBits;
  auto* used = tx.edit(r->used + w0, ro, w1 - w0 + 1);
  auto* start = tx.edit(r->start + w0, ro);
  auto* tail_byte = tail != 0 ? tx.edit(r->tails + g / 2, ro) : nullptr;  // free granules have nibble 0
  Region* h = tx.edit(r, ro);
  if (used == nullptr || start == nullptr || (tail != 0 && tail_byte == nullptr) || h == nullptr) {
    return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
  }
  const std::size_t base = w0 * bitmap::kBits;
  bitmap::clear_range(used, g - base, end - base);
  bitmap::clear_range(start, g - base, g - base + 1);
  if (tail_byte != nullptr) *tail_byte = with_tail(*tail_byte, g, 0);
  h->cursor = cursor;
  h->free_below_cursor = free_below;
  h->live_bytes -= size;
  h->live_allocations -= 1;
  // A rollback that reaches into an earlier region sends allocation back there, so that
  // the same (resident) pages are used again, in the same order.
  if (cursor < cursor_before && r != pool->current && precedes(r, pool->current)) {
    Pool* d = tx.edit(pool, pool->first->meta_protected);
    if (d == nullptr) return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
    d->current = r;
  }
  if (int e = tx.commit()) return e;
  debug_check(pool);
  return 0;
}

int pool_protect(Pool* pool) noexcept {
  if (int e = pool_validate(pool)) return e;
  PoolGuard guard(pool);
  const bool seal = (pool->flags & PMALLOC_SEAL) != 0;
  int first_error = 0;
  // Region 0 (which holds the descriptor) goes last, so that the descriptor update below
  // is staged against its final protection state.
  for (Region* r = pool->first->next; r != nullptr; r = r->next) {
    const int e = region_protect_commit(r, r->committed, seal);
    if (e != 0 && first_error == 0) first_error = e;
  }
  Region* r0 = pool->first;
  // On region 0's first protection the descriptor is still writable: count the call in
  // place before the mprotect (no writer call), and take it back if the call fails.
  const bool in_place = first_error == 0 && !r0->meta_protected;
  const std::size_t calls_before = pool->protect_calls;
  const bool ever_before = pool->ever_protected;
  if (in_place) {
    pool->ever_protected = true;
    pool->protect_calls = calls_before + 1;
  }
  const int e = region_protect_commit(r0, r0->committed, seal);
  if (e != 0 && first_error == 0) first_error = e;
  if (in_place && e != 0) {
    MetaTxn rtx;  // in place if the protection was taken back, else (sealing failed) through the writer
    Pool* d = rtx.edit(pool, r0->meta_protected);
    if (d != nullptr) {
      d->ever_protected = ever_before;
      d->protect_calls = calls_before;
      (void)rtx.commit();
    }
  } else if (!in_place && first_error == 0) {
    MetaTxn dtx;
    Pool* d = dtx.edit(pool, r0->meta_protected);
    if (d == nullptr) return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
    d->ever_protected = true;
    d->protect_calls += 1;
    first_error = dtx.commit();
  }
  debug_check(pool);
  note_protected(pool, first_error);
  return first_error;
}

int pool_make_ro(Pool* pool) noexcept {
  if (int e = pool_validate(pool)) return e;
  PoolGuard guard(pool);
  if ((pool->flags & PMALLOC_WR) == 0) return 0;
  MetaTxn tx;
  Pool* d = tx.edit(pool, pool->first->meta_protected);
  if (d == nullptr) return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
  d->flags &= ~PMALLOC_WR;
  return tx.commit();
}

void pool_destroy(Pool* pool) noexcept {
  if (pool == nullptr) return;
  // Held until the regions are gone: pool walkers (stats) never see a pool being unmapped.
  std::unique_lock life(lifecycle_lock());
  if (pool_validate(pool) != 0) return;
  Region* first = nullptr;
  {
    PoolGuard guard(pool);
    note_destroying(pool);
    first = pool->first;
    // Mark the descriptor dead first: if region 0 is sealed it stays mapped, and later
    // use of the handle must be refused rather than trusted.
    MetaTxn tx;
    Pool* d = tx.edit(pool, first->meta_protected);
    if (d != nullptr) {
      d->magic = kDestroyedMagic;
      d->self = nullptr;
      (void)tx.commit();
    }
  }
  // Release the other regions first: region 0 holds the descriptor and the region list.
  Region* r = first->next;
  while (r != nullptr) {
    Region* next = r->next;
    (void)region_release(r);
    r = next;
  }
  (void)region_release(first);
}

}  // namespace pmalloc::internal
