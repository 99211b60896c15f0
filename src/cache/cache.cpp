// Cache life cycle and queries: create, validate, destroy, stats, locate, the invariant
// checker (see cache.hpp, layout.hpp).
#include "cache/cache.hpp"

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

#include "cache/engine.hpp"
#include "cache/hints.hpp"
#include "cache/segment.hpp"
#include "cache/slab_write.hpp"
#include "core/error.hpp"
#include "os/os.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal {
namespace {

// Whether the writer can write pages that are mseal()ed. Cache pages are private
// anonymous memory outside the pool registry, so under the pkey and alias back ends they
// are written by the writer's fallback (procmem where available, else an mprotect
// window; see wr/writer.hpp). procmem writes sealed pages; an mprotect window cannot
// (mprotect of a sealed page fails with EPERM).
bool writer_writes_sealed_pages() noexcept {
  switch (wr::backend()) {
    case wr::Backend::procmem:
    case wr::Backend::pkey:
    case wr::Backend::alias: return wr::backend_available(wr::Backend::procmem);
    case wr::Backend::mprotect:
    case wr::Backend::none: return false;
  }
  return false;
}

std::size_t natural_alignment(std::size_t size) noexcept {
  const std::size_t lowest = size & (~size + 1);  // largest power of two dividing size
  return lowest > 16 ? 16 : lowest;
}

// Wipes every live object of a sealed cache that is being destroyed: its pages stay
// mapped for good, so nothing of what they held may remain readable.
void wipe_live_objects(const CacheDesc* c) noexcept {
  const Geometry& g = c->geo;
  std::unique_ptr<std::size_t[]> slots(new (std::nothrow) std::size_t[g.slots_per_slab]);
  if (slots == nullptr) return;
  for (std::size_t si = 0; si < c->segment_count; ++si) {
    const Segment* s = c->segments[si];
    for (std::size_t i = 0; i < s->slabs_committed; ++i) {
      if (!c->state->segments[si].slabs[i].resident) continue;  // never written: nothing to wipe
      std::byte* slab = s->slab(i);
      std::lock_guard<std::mutex> guard(slab_lock(slab));
      std::size_t n = 0;
      for (std::size_t k = 0; k < g.slots_per_slab; ++k) {
        if (slab_slot_live(g, slab, k)) slots[n++] = k;
      }
      if (n == 0) continue;
      SlabUpdate u;
      if (u.plan(g, slab, slots.get(), nullptr, n, false, false) == 0) (void)u.apply();
    }
  }
}

}  // namespace

int cache_validate(const CacheDesc* c) noexcept {
  if (c == nullptr) return fail(EINVAL, "pmalloc_cache: the cache is NULL");
  const Segment* s = segment_find(c);
  const auto* p = reinterpret_cast<const std::byte*>(c);
  if (s == nullptr || s->magic != kSegmentMagic || s->cache != c || s->index != 0 || p < s->meta || p >= s->slabs) {
    return fail(EINVAL, "pmalloc_cache: %p is not a live cache", static_cast<const void*>(c));
  }
  if (c->magic != kCacheMagic || c->self != c) {
    return fail(EINVAL, "pmalloc_cache: cache %p is destroyed or corrupt", static_cast<const void*>(c));
  }
  return 0;
}

int cache_create(const char* name, std::size_t object_size, std::size_t align, unsigned flags,
                 CacheDesc** out) noexcept {
  *out = nullptr;
  if ((flags & ~kCacheKnownFlags) != 0) {
    return fail(EINVAL, "pmalloc_cache_create: flags 0x%x are not cache flags (PMALLOC_SEAL, PMALLOC_NO_GUARD)",
                flags & ~kCacheKnownFlags);
  }
  if (name == nullptr) name = "";
  const std::size_t len = std::strlen(name);
  if (len > kNameMax) {
    return fail(EINVAL, "pmalloc_cache_create: name is %zu bytes, at most %zu allowed", len, kNameMax);
  }
  if (object_size == 0 || object_size > kCacheObjectMax) {
    return fail(EINVAL, "pmalloc_cache_create: object size %zu is not in 1..%zu", object_size, kCacheObjectMax);
  }
  if (align == 0) align = natural_alignment(object_size);
  if ((align & (align - 1)) != 0 || align > os::page_size()) {
    return fail(EINVAL, "pmalloc_cache_create: alignment %zu is not 0 or a power of two <= %zu", align,
                os::page_size());
  }
  if (wr::backend() == wr::Backend::none) {
    return fail(ENOTSUP, "pmalloc_cache_create: no write-rare back end works in this process, so objects could "
                "never be written");
  }
  CacheDesc tmpl{};
  tmpl.magic = kCacheMagic;
  tmpl.flags = flags;
  tmpl.seal = (flags & PMALLOC_SEAL) != 0 && os::seal_supported() && writer_writes_sealed_pages();
  std::memcpy(tmpl.name, name, len + 1);
  tmpl.geo = make_geometry(object_size, align);
  tmpl.state = new (std::nothrow) CacheState;
  if (tmpl.state == nullptr) return fail(ENOMEM, "pmalloc_cache_create: out of memory");
  std::size_t slabs = kFirstSegmentBytes / tmpl.geo.slab_bytes;
  if (slabs == 0) slabs = 1;
  tmpl.next_segment_bytes = kFirstSegmentBytes * 2;
  Segment* s = nullptr;
  CacheDesc* d = nullptr;
  if (int e = segment_create(tmpl.geo, slabs, flags, tmpl.seal, nullptr, 0, &tmpl, &s, &d)) {
    delete tmpl.state;
    return e;
  }
  if (int e = hints_add_segment(d, s)) {
    segment_release(s);
    delete tmpl.state;
    return e;
  }
  *out = d;
  return 0;
}

void cache_destroy(CacheDesc* c) noexcept {
  if (c == nullptr || cache_validate(c) != 0) return;
  if constexpr (kCacheDebugChecks) {
    if (!cache_check(c)) fatal("pmalloc_cache '%s' failed its invariant check", c->name);
  }
  CacheState* st = c->state;
  const bool sealed = c->seal;
  // Refuse further use of the handle first: with PMALLOC_SEAL the descriptor stays mapped.
  struct {
    std::uint64_t magic;
    const CacheDesc* self;
  } dead{kDeadCacheMagic, nullptr};
  static_assert(offsetof(CacheDesc, self) == sizeof(std::uint64_t));
  (void)wr::write(c, &dead, sizeof dead, os::Access::read);
  if (sealed) wipe_live_objects(c);
  // Segment 0 holds the descriptor (and the segment table): it goes last.
  for (std::size_t i = c->segment_count; i-- > 1;) segment_release(c->segments[i]);
  segment_release(c->segments[0]);
  delete st;
}

int cache_stats(const CacheDesc* c, pmalloc_stats* out) noexcept {
  if (out == nullptr) return fail(EINVAL, "pmalloc_cache_stats: output is NULL");
  if (int e = cache_validate(c)) return e;
  if constexpr (kCacheDebugChecks) {
    if (!cache_check(c)) fatal("pmalloc_cache '%s' failed its invariant check", c->name);
  }
  CacheState& st = *c->state;
  std::lock_guard<std::mutex> guard(st.lock);
  pmalloc_stats s{};
  s.allocations_live = st.live_objects;
  s.bytes_live = st.live_objects * c->geo.object_size;
  s.bytes_committed = st.resident_slabs * c->geo.slab_bytes;
  s.bytes_protected = s.bytes_committed;
  s.bytes_free = s.bytes_committed - s.bytes_live;
  s.bytes_metadata = st.heap_bytes + sizeof(CacheState);
  for (std::size_t i = 0; i < c->segment_count; ++i) {
    s.bytes_reserved += c->segments[i]->reservation_size;
    s.bytes_metadata += c->segments[i]->meta_bytes;
  }
  s.regions = c->segment_count;
  s.sealed = c->seal ? 1 : 0;
  s.is_protected = 1;
  s.protect_calls = 0;
  s.flags = c->flags;
  *out = s;
  return 0;
}

CachePlacement cache_locate(const void* p, std::size_t n, CacheObject* out) noexcept {
  *out = CacheObject{};
  const Segment* s = segment_find(p);
  if (s == nullptr) return CachePlacement::none;
  const CacheDesc* c = s->cache;
  if (c == nullptr || c->magic != kCacheMagic) return CachePlacement::bad;
  out->cache = c;
  const Geometry& g = c->geo;
  const auto* b = static_cast<const std::byte*>(p);
  std::lock_guard<std::mutex> guard(c->state->lock);
  if (b < s->slabs || b >= s->slabs + s->slabs_committed * g.slab_bytes) return CachePlacement::bad;
  const auto off = static_cast<std::size_t>(b - s->slabs);
  std::byte* slab = s->slab(off / g.slab_bytes);
  const std::size_t in_slab = off % g.slab_bytes;
  if (in_slab < g.first_slot_offset) return CachePlacement::bad;
  const std::size_t slot = (in_slab - g.first_slot_offset) / g.slot_size;
  if (slot >= g.slots_per_slab) return CachePlacement::bad;
  if (!c->state->segments[s->index].slabs[off / g.slab_bytes].resident) return CachePlacement::bad;
  std::lock_guard<std::mutex> slab_guard(slab_lock(slab));
  if (!slab_slot_live(g, slab, slot)) return CachePlacement::bad;
  const std::byte* begin = slab + g.first_slot_offset + slot * g.slot_size;
  out->begin = begin;
  out->size = g.object_size;
  const auto rel = static_cast<std::size_t>(b - begin);
  if (rel >= g.object_size || n > g.object_size - rel) return CachePlacement::bad;
  return CachePlacement::ok;
}

int cache_for_each_reservation(const CacheDesc* c, void (*fn)(const void*, std::size_t, void*), void* arg) noexcept {
  if (int e = cache_validate(c)) return e;
  if (fn == nullptr) return fail(EINVAL, "cache_for_each_reservation: callback is NULL");
  std::lock_guard<std::mutex> guard(c->state->lock);
  for (std::size_t i = 0; i < c->segment_count; ++i) {
    fn(c->segments[i]->reservation, c->segments[i]->reservation_size, arg);
  }
  return 0;
}

bool cache_check(const CacheDesc* c) noexcept {
  if (c == nullptr || c->magic != kCacheMagic || c->self != c) return false;
  CacheState& st = *c->state;
  const Geometry& g = c->geo;
  if (g.object_size > g.slot_size || g.first_slot_offset < g.header_words * 8 ||
      g.first_slot_offset + g.slots_per_slab * g.slot_size > g.slab_bytes || g.slots_per_slab == 0) {
    return false;
  }
  std::lock_guard<std::mutex> guard(st.lock);
  std::size_t resident = 0;
  std::size_t counted = 0;
  std::size_t on_list[4] = {0, 0, 0, 0};
  for (std::size_t si = 0; si < c->segment_count; ++si) {
    const Segment* s = c->segments[si];
    if (s == nullptr || s->magic != kSegmentMagic || s->index != si || s->slabs_committed > s->slab_capacity) {
      return false;
    }
    const SegmentHints& sh = st.segments[si];
    if (sh.capacity != s->slab_capacity) return false;
    for (std::size_t i = 0; i < s->slabs_committed; ++i) {
      const SlabHint& h = sh.slabs[i];
      const std::uint64_t* bits = sh.bits.get() + i * g.header_words;
      std::size_t count = 0;
      for (std::size_t w = 0; w < g.header_words; ++w) count += static_cast<std::size_t>(__builtin_popcountll(bits[w]));
      if (count != h.count) return false;
      const std::byte* slab = s->slab(i);
      // Pages never written are not read either (reading would make the kernel back them).
      if (h.resident) {
        std::lock_guard<std::mutex> slab_guard(slab_lock(slab));
        for (std::size_t w = 0; w < g.header_words; ++w) {
          std::uint64_t live = 0;
          std::memcpy(&live, slab + w * 8, sizeof live);
          if ((live & ~bits[w]) != 0) return false;
        }
      }
      const bool full = h.count == g.slots_per_slab;
      switch (h.list) {
        case SlabList::none: if (!full) return false; break;
        case SlabList::partial: if (full || h.count == 0) return false; break;
        case SlabList::empty: if (h.count != 0 || !h.resident) return false; break;
        case SlabList::clean: if (h.count != 0 || h.resident) return false; break;
      }
      on_list[static_cast<int>(h.list)] += 1;
      resident += h.resident ? 1 : 0;
      counted += h.count;
    }
    for (std::size_t i = s->slabs_committed; i < sh.capacity; ++i) {
      if (sh.slabs[i].list != SlabList::none || sh.slabs[i].count != 0 || sh.slabs[i].resident) return false;
    }
  }
  return resident == st.resident_slabs && st.live_objects <= counted && on_list[1] == st.partial.size() &&
         on_list[2] == st.empty.size() && on_list[3] == st.clean.size();
}

}  // namespace pmalloc::internal
