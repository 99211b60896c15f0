// Cache segments and their registry (see segment.hpp, layout.hpp).
#include "cache/segment.hpp"

#include <cerrno>
#include <cstring>
#include <new>

#include "core/error.hpp"
#include "os/os.hpp"
#include "pmalloc/pmalloc.h"
#include "registry/registry.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal {
namespace {

std::size_t align_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }

// The registry: the protected address registry (src/registry) holds the segments too
// (kind cache_segment), so a forged or stretched registration cannot make a pointer pass
// as a cache descriptor or segment, and lookups take no lock. Segment headers are
// page-aligned, as the registry requires.
int registry_add(Segment* s) noexcept { return registry::add(s->reservation, s->reservation_size, s); }

void registry_remove(const void* begin) noexcept { registry::remove(begin); }

const char* enomem_hint(int e) noexcept { return e == ENOMEM ? "; raising vm.max_map_count may help" : ""; }

}  // namespace

Segment* segment_find(const void* p) noexcept { return registry::find_segment(p); }

int segment_create(const Geometry& g, std::size_t slab_count, unsigned flags, bool seal, CacheDesc* cache,
                   std::uint32_t index, const CacheDesc* desc, Segment** out, CacheDesc** desc_out) noexcept {
  *out = nullptr;
  if (desc_out != nullptr) *desc_out = nullptr;
  const std::size_t page = os::page_size();
  std::size_t off = align_up(sizeof(Segment), alignof(std::max_align_t));
  const std::size_t desc_off = off;
  if (desc != nullptr) off += sizeof(CacheDesc);
  const std::size_t meta_bytes = os::round_up_to_page(off);
  const std::size_t guard = (flags & PMALLOC_NO_GUARD) != 0 ? 0 : page;
  const std::size_t slab_space = slab_count * g.slab_bytes;
  const std::size_t total = guard + meta_bytes + slab_space + guard;

  void* base = nullptr;
  if (int e = os::reserve(total, &base)) {
    return fail(ENOMEM, "pmalloc_cache: cannot reserve %zu bytes of address space (errno %d)", total, e);
  }
  auto* meta = static_cast<std::byte*>(base) + guard;
  if (int e = os::set_access(meta, meta_bytes, os::Access::read_write)) {
    (void)os::release(base, total);
    return fail(ENOMEM, "pmalloc_cache: cannot map %zu bytes of cache metadata (errno %d%s)", meta_bytes, e,
                enomem_hint(e));
  }
  auto* s = new (meta) Segment{};
  s->magic = kSegmentMagic;
  s->cache = cache;
  s->index = index;
  s->reservation = static_cast<std::byte*>(base);
  s->reservation_size = total;
  s->meta = meta;
  s->meta_bytes = meta_bytes;
  s->slabs = meta + meta_bytes;
  s->slab_capacity = slab_count;
  s->slabs_committed = 0;
  s->slab_bytes = g.slab_bytes;
  CacheDesc* d = nullptr;
  if (desc != nullptr) {
    d = new (meta + desc_off) CacheDesc(*desc);
    d->self = d;
    d->segments[0] = s;
    d->segment_count = 1;
    s->cache = d;
  }
  // From here on the meta page is read-only for good.
  if (int e = os::set_access(meta, meta_bytes, os::Access::read)) {
    (void)os::release(base, total);
    return fail(ENOMEM, "pmalloc_cache: cannot write-protect cache metadata (errno %d%s)", e, enomem_hint(e));
  }
  if (seal) {
    if (int e = os::seal(meta, meta_bytes)) {
      (void)os::release(base, total);
      return fail(e == ENOMEM ? ENOMEM : e, "pmalloc_cache: mseal of cache metadata failed (errno %d)", e);
    }
    // sealed_bytes is written through the writer: the page is read-only already.
    const std::size_t sealed = meta_bytes;
    if (int e = wr::write(&s->sealed_bytes, &sealed, sizeof sealed, os::Access::read)) {
      // The sealed page cannot be unmapped; let go of the rest.
      if (guard != 0) (void)os::release(base, guard);
      (void)os::release(meta + meta_bytes, total - guard - meta_bytes);
      return fail(e, "pmalloc_cache: cannot record the sealed metadata (writer errno %d)", e);
    }
  }
  if (registry_add(s) != 0) {
    (void)segment_release(s);
    return fail(ENOMEM, "pmalloc_cache: out of memory registering a segment");
  }
  *out = s;
  if (desc_out != nullptr) *desc_out = d;
  return 0;
}

int segment_map_slabs(const CacheDesc* c, Segment* s, std::size_t upto, std::size_t* prepared) noexcept {
  if (upto <= s->slabs_committed) return 0;
  const std::size_t step = c->geo.slab_bytes >= kSlabCommitStep ? 1 : kSlabCommitStep / c->geo.slab_bytes;
  std::size_t want = s->slabs_committed + step;
  if (want < upto) want = upto;
  if (want > s->slab_capacity) want = s->slab_capacity;
  // Slabs [committed, *prepared) were mapped (and sealed) by an attempt whose frontier
  // update failed: a sealed range can be neither mapped nor sealed again, so skip them.
  std::size_t from = *prepared > s->slabs_committed ? *prepared : s->slabs_committed;
  if (from < want) {
    std::byte* begin = s->slab(from);
    const std::size_t bytes = (want - from) * c->geo.slab_bytes;
    if (int e = os::set_access(begin, bytes, os::Access::read)) {
      return fail(ENOMEM, "pmalloc_cache: cannot map %zu bytes of slabs (errno %d%s)", bytes, e, enomem_hint(e));
    }
    if (c->seal) {
      if (int e = os::seal(begin, bytes)) {
        // Read-only but unsealed and unused: the next attempt maps and seals it again.
        return fail(e == ENOMEM ? ENOMEM : e, "pmalloc_cache: mseal of %zu bytes of slabs failed (errno %d)",
                    bytes, e);
      }
    }
    *prepared = want;
  } else {
    want = *prepared;
  }
  // Frontier and sealed span are adjacent fields: one writer call updates both.
  struct {
    std::size_t committed;
    std::size_t sealed;
  } update{want, c->seal ? static_cast<std::size_t>(s->slab(want) - s->meta) : s->sealed_bytes};
  static_assert(offsetof(Segment, sealed_bytes) == offsetof(Segment, slabs_committed) + sizeof(std::size_t));
  if (int e = wr::write(&s->slabs_committed, &update, sizeof update, os::Access::read)) {
    return fail(e, "pmalloc_cache: cannot record newly mapped slabs (writer errno %d)", e);
  }
  return 0;
}

int segment_discard_slabs(const Segment* s, std::size_t first, std::size_t count) noexcept {
  if (int e = os::discard(s->slab(first), count * s->slab_bytes)) {
    return fail(e, "pmalloc_cache: madvise of %zu empty slabs failed (errno %d)", count, e);
  }
  return 0;
}

std::size_t segment_release(Segment* s) noexcept {
  std::byte* base = s->reservation;
  const std::size_t total = s->reservation_size;
  std::byte* meta = s->meta;
  const std::size_t sealed = s->sealed_bytes;
  registry_remove(base);
  if (sealed == 0) {
    (void)os::release(base, total);
    return 0;
  }
  if (meta > base) (void)os::release(base, static_cast<std::size_t>(meta - base));
  std::byte* after = meta + sealed;
  if (after < base + total) (void)os::release(after, static_cast<std::size_t>(base + total - after));
  return sealed;
}

}  // namespace pmalloc::internal
