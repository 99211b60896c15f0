// Read-only pool queries: statistics, address placement and the invariant checker.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/error.hpp"
#include "os/os.hpp"
#include "pool/lock.hpp"
#include "pool/pool.hpp"
#include "pool/region.hpp"
#include "registry/registry.hpp"

namespace pmalloc::internal {

namespace {

// The bytes of r's metadata pages that describe committed data: the header (and
// descriptor) and, of each of the three per-granule arrays (used bits, start bits, size
// nibbles), the part for committed granules; overlapping pages counted once. This is what
// metadata can be resident; the rest of meta_bytes is address space for data not yet
// committed (a first region's metadata span is 3 MiB, of which a small pool uses pages).
std::size_t metadata_in_use(const Region* r) noexcept {
  const std::size_t page = os::page_size();
  const std::size_t granules = r->committed / kGranule;
  const std::size_t bitmap_bytes = bitmap::words_for(granules) * sizeof(bitmap::Word);
  auto offset = [r](const void* p) { return static_cast<std::size_t>(static_cast<const std::byte*>(p) - r->meta); };
  const std::size_t spans[4][2] = {{0, offset(r->used)},  // header, descriptor
                                   {offset(r->used), bitmap_bytes},
                                   {offset(r->start), bitmap_bytes},
                                   {offset(r->tails), (granules + 1) / 2}};
  std::size_t bytes = 0, covered = 0;  // spans are in address order; `covered` = end of counted pages
  for (const auto& [begin, n] : spans) {
    if (n == 0) continue;
    const std::size_t first = std::max(begin / page * page, covered);
    const std::size_t end = (begin + n + page - 1) / page * page;
    if (end > first) bytes += end - first;
    covered = std::max(covered, end);
  }
  return bytes;
}

}  // namespace

int pool_stats(const Pool* pool, pmalloc_stats* out) noexcept {
  if (out == nullptr) return fail(EINVAL, "pmalloc_pool_stats: output is NULL");
  if (int e = pool_validate(pool)) return e;
  PoolGuard guard(pool);
  pmalloc_stats s{};
  bool all_sealed = true;
  bool any_sealed = false;
  for (const Region* r = pool->first; r != nullptr; r = r->next) {
    s.bytes_live += r->live_bytes;
    s.allocations_live += r->live_allocations;
    s.bytes_committed += r->committed;
    s.bytes_reserved += r->reservation_size;
    s.bytes_protected += r->protected_bytes;
    s.bytes_metadata += metadata_in_use(r);
    s.regions += 1;
    const std::size_t protected_span = r->meta_protected ? r->meta_bytes + r->protected_bytes : 0;
    if (protected_span != 0) {
      any_sealed |= r->sealed_bytes != 0;
      all_sealed &= r->sealed_bytes == protected_span;
    }
  }
  std::size_t live_granule_bytes = 0;
  for (const Region* r = pool->first; r != nullptr; r = r->next) {
    live_granule_bytes += bitmap::count(r->used, 0, r->cursor) * kGranule;
  }
  s.bytes_free = s.bytes_committed - live_granule_bytes;
  s.sealed = (any_sealed && all_sealed) ? 1 : 0;
  s.is_protected = (pool->ever_protected && s.bytes_protected == s.bytes_committed) ? 1 : 0;
  s.protect_calls = pool->protect_calls;
  s.flags = pool->flags;
  *out = s;
  return 0;
}

namespace {

// Whether the header of r agrees with its registration. A region whose metadata is not
// write-protected yet (a pool not protected so far, or grown since) has a header that a
// stray or hostile write could change; the registration cannot be changed. So no answer
// of locate() ever covers memory outside the region's own reservation, however the header
// was tampered with (wr_* writes where locate() says, even into protected pages).
bool consistent(const Region* r, const registry::Entry& e) noexcept {
  const auto inside = [&](const void* a, std::size_t n) {
    const auto x = reinterpret_cast<std::uintptr_t>(a);
    return x >= e.begin && x <= e.end && n <= e.end - x;
  };
  const std::size_t span = e.end - e.begin;
  if (e.region != r || r->capacity > span / kGranule || r->cursor > r->capacity) return false;
  const std::size_t bitmap_bytes = bitmap::words_for(r->capacity) * sizeof(bitmap::Word);
  return inside(r->data, r->capacity_bytes()) && inside(r->used, bitmap_bytes) && inside(r->start, bitmap_bytes) &&
         inside(r->tails, (r->capacity + 1) / 2);
}

Placement locate_in(Region* r, const registry::Entry& e, const void* p, std::size_t n, Allocation* out) noexcept {
  *out = Allocation{};
  out->pool = r->pool;
  out->region = r;
  if (!consistent(r, e)) return Placement::bad;
  if (!r->contains_data(p)) return Placement::bad;  // guard page or metadata
  const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(p) - r->data);
  const std::size_t g = off / kGranule;
  if (g >= r->cursor || !bitmap::test(r->used, g)) return Placement::bad;
  std::size_t s = g;
  if (!bitmap::test(r->start, g)) s = bitmap::find_last_set(r->start, 0, g);
  if (s == g && !bitmap::test(r->start, g)) return Placement::bad;
  const std::size_t end = bitmap::find_run_end(r->used, r->start, s + 1, r->cursor);
  const unsigned tail = tail_of(r, s);
  const std::size_t size = (end - s) * kGranule - (tail == 0 ? 0 : kGranule - tail);
  out->begin = r->data + s * kGranule;
  out->size = size;
  // n == 0 names the single byte at p (hardening.md): one past the end is outside, also
  // when it falls in the padding of the allocation's last granule.
  const std::size_t rel = off - s * kGranule;
  const std::size_t span = n == 0 ? 1 : n;
  if (span > size || rel > size - span) return Placement::bad;
  // Protection covers a prefix of the data, so the range is read-only iff it starts in it.
  out->read_only = off < r->protected_bytes;
  return Placement::ok;
}

}  // namespace

Placement locate(const void* p, std::size_t n, Allocation* out) noexcept {
  registry::Entry e;
  if (!registry::lookup(p, &e)) e.region = nullptr;
  return locate(e, p, n, out);
}

Placement locate(const registry::Entry& e, const void* p, std::size_t n, Allocation* out) noexcept {
  if (e.region == nullptr) {  // not a pool's
    *out = Allocation{};
    return Placement::none;
  }
  PoolGuard guard(e.region->pool);
  return locate_in(e.region, e, p, n, out);
}

Placement locate_locked(Region* r, const void* p, std::size_t n, Allocation* out) noexcept {
  *out = Allocation{};
  registry::Entry e;
  if (!registry::lookup(p, &e) || e.region == nullptr) return Placement::none;
  out->pool = r->pool;
  out->region = r;
  if (e.region != r) return Placement::bad;
  return locate_in(r, e, p, n, out);
}

bool pool_check(const Pool* pool) noexcept {
  if (pool == nullptr || pool->magic != kPoolMagic || pool->self != pool) return false;
  const std::size_t page = os::page_size();
  std::size_t regions = 0;
  const Region* last = nullptr;
  for (const Region* r = pool->first; r != nullptr; r = r->next) {
    ++regions;
    last = r;
    if (r->magic != kRegionMagic || r->pool != pool) return false;
    if (r->protected_bytes > r->committed || r->committed > r->capacity_bytes()) return false;
    if (r->protected_bytes % page != 0 || r->committed % page != 0) return false;
    if (r->cursor * kGranule > r->committed) return false;
    if (r->protected_bytes > r->cursor * kGranule) return false;
    // Bits exist only for committed data (cursor <= committed): the scans stop there, so
    // that a check costs O(committed), not O(capacity) of a mostly unused 64 MiB region.
    const std::size_t limit = r->committed / kGranule;
    if (bitmap::find_set(r->used, r->cursor, limit) != limit) return false;
    const std::size_t pg = r->protected_bytes / kGranule;
    if (pg <= r->cursor) {
      const std::size_t free_above = (r->cursor - pg) - bitmap::count(r->used, pg, r->cursor);
      if (free_above != r->free_below_cursor) return false;
    }
    if (bitmap::count(r->start, 0, limit) != r->live_allocations) return false;
    // Every start bit marks a used granule, and every used run begins with a start bit:
    // word-wise, start & ~used == 0, and a used bit whose predecessor is clear is a start.
    const std::size_t words = bitmap::words_for(limit);
    bitmap::Word carry = 0;  // the last bit of the previous used word
    for (std::size_t w = 0; w < words; ++w) {
      const bitmap::Word used = r->used[w];
      if ((r->start[w] & ~used) != 0) return false;
      const bitmap::Word run_begins = used & ~((used << 1) | carry);
      if ((run_begins & ~r->start[w]) != 0) return false;
      carry = used >> (bitmap::kBits - 1);
    }
    // Nibbles only at start granules; 16 granules (8 bytes of nibbles) at a time.
    for (std::size_t g = 0; g < limit; g += 16) {
      std::uint64_t nibbles = 0;
      std::memcpy(&nibbles, r->tails + g / 2, sizeof nibbles);
      for (std::size_t i = 0; nibbles != 0; ++i, nibbles >>= 4) {
        if ((nibbles & 0xFu) != 0 && !bitmap::test(r->start, g + i)) return false;
      }
    }
  }
  bool current_listed = false;
  for (const Region* r = pool->first; r != nullptr; r = r->next) current_listed = current_listed || r == pool->current;
  return regions == pool->regions && last == pool->last && current_listed;
}

}  // namespace pmalloc::internal
