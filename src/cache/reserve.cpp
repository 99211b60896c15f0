// Slot reservation and slab list upkeep in the cache's hints (see engine.hpp, hints.hpp).
//
// Allocation order: a partial slab first (densest packing), then a resident empty slab
// (its pages are already paid for), then a clean slab (mapped, costs nothing until
// written), then more slabs mapped at the last segment's frontier, then a new segment
// twice the size of the previous one (up to kMaxSegmentBytes). Slots within a slab are
// taken lowest first. A slab whose last slot is released goes to the `empty` list; beyond
// kKeptEmptySlabs (and never for sealed caches) its pages are returned to the OS after the
// protected header confirmed that it holds no live object.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <cstring>
#include <mutex>
#include <new>

#include "cache/engine.hpp"
#include "cache/segment.hpp"
#include "cache/slab_write.hpp"
#include "core/error.hpp"
#include "os/os.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal {
namespace {

void move_to(CacheState& st, SlabHint* h, SlabList which) noexcept {
  if (h->list == which) return;
  if (h->list != SlabList::none) st.queue(h->list).remove(h);
  if (which != SlabList::none) st.queue(which).push(h, which);
}

// The list a slab belongs on, from its count (and residency when empty).
SlabList list_for(const CacheDesc* c, const SlabHint* h) noexcept {
  if (h->count == c->geo.slots_per_slab) return SlabList::none;
  if (h->count > 0) return SlabList::partial;
  return h->resident ? SlabList::empty : SlabList::clean;
}

// Returns the pages of slabs [first, first + count) of one segment to the OS, after the
// protected headers confirmed that none holds a live object.
void discard_run(CacheDesc* c, SlabHint* const* run, std::size_t count) noexcept {
  CacheState& st = *c->state;
  Segment* s = checked_segment(c, run[0]->segment);
  SlabLocks locks;
  for (std::size_t i = 0; i < count; ++i) locks.add(checked_slab(c, SlotRef{run[i]->segment, run[i]->index, 0}));
  locks.lock();
  for (std::size_t i = 0; i < count; ++i) {
    const std::byte* slab = s->slab(run[i]->index);
    if (slab_live_count(c->geo, slab) != 0) {
      fatal("pmalloc_cache '%s': bookkeeping says slab %p is empty but it holds live objects", c->name,
            static_cast<const void*>(slab));
    }
  }
  const bool returned = segment_discard_slabs(s, run[0]->index, count) == 0;
  locks.unlock();
  for (std::size_t i = 0; i < count; ++i) {
    if (returned) {
      run[i]->resident = false;
      st.resident_slabs -= 1;
    }
    move_to(st, run[i], list_for(c, run[i]));
  }
}

// Slabs that lost their last slot: keep one resident empty slab (all of them when sealed),
// return the others' pages to the OS, adjacent slabs with one call.
void slabs_emptied(CacheDesc* c, SlabHint** hs, std::size_t n) noexcept {
  CacheState& st = *c->state;
  std::size_t drop = 0;
  for (std::size_t i = 0; i < n; ++i) {
    SlabHint* h = hs[i];
    if (!h->resident || c->seal || st.empty.size() < kKeptEmptySlabs) {
      move_to(st, h, list_for(c, h));
    } else {
      hs[drop++] = h;
    }
  }
  std::sort(hs, hs + drop, [](const SlabHint* a, const SlabHint* b) {
    return a->segment != b->segment ? a->segment < b->segment : a->index < b->index;
  });
  for (std::size_t i = 0; i < drop;) {
    std::size_t j = i + 1;
    while (j < drop && hs[j]->segment == hs[i]->segment && hs[j]->index == hs[j - 1]->index + 1) ++j;
    discard_run(c, hs + i, j - i);
    i = j;
  }
}

// Maps more slabs (or adds a segment); the new slabs go to the clean list.
int grow(CacheDesc* c) noexcept {
  CacheState& st = *c->state;
  const std::uint32_t last = static_cast<std::uint32_t>(c->segment_count - 1);
  Segment* s = checked_segment(c, last);
  if (s->slabs_committed >= s->slab_capacity) {
    if (c->segment_count >= kMaxSegments) {
      return fail(ENOMEM, "pmalloc_cache '%s': the cache is full (%zu segments)", c->name, kMaxSegments);
    }
    const std::size_t bytes = c->next_segment_bytes;
    std::size_t slabs = bytes / c->geo.slab_bytes;
    if (slabs == 0) slabs = 1;
    Segment* n = nullptr;
    const auto index = static_cast<std::uint32_t>(c->segment_count);
    if (int e = segment_create(c->geo, slabs, c->flags, c->seal, c, index, nullptr, &n, nullptr)) return e;
    if (int e = hints_add_segment(c, n)) {
      segment_release(n);
      return e;
    }
    // segments[index] first, then the count: a failure in between leaves an unused entry.
    struct {
      std::size_t next_segment_bytes;
      std::size_t segment_count;
    } counts{bytes * 2 > kMaxSegmentBytes ? kMaxSegmentBytes : bytes * 2, c->segment_count + 1};
    static_assert(offsetof(CacheDesc, segment_count) == offsetof(CacheDesc, next_segment_bytes) + sizeof(std::size_t));
    const wr::Chunk chunks[2] = {{&c->segments[index], &n, sizeof n},
                                 {&c->next_segment_bytes, &counts, sizeof counts}};
    if (int e = wr::write_many(chunks, 2, os::Access::read)) {
      st.heap_bytes -= n->slab_capacity * (sizeof(SlabHint) + c->geo.header_words * sizeof(std::uint64_t));
      st.segments[index] = SegmentHints{};
      segment_release(n);
      return fail(e, "pmalloc_cache '%s': cannot link a new segment (writer errno %d)", c->name, e);
    }
    s = n;
  }
  const std::size_t before = s->slabs_committed;
  SegmentHints& sh = st.segments[s->index];
  if (int e = segment_map_slabs(c, s, before + 1, &sh.prepared)) return e;
  for (std::size_t i = s->slabs_committed; i-- > before;) move_to(st, &sh.slabs[i], SlabList::clean);
  return 0;
}

SlabHint* slab_with_room(CacheDesc* c, int* error) noexcept {
  CacheState& st = *c->state;
  *error = 0;
  for (;;) {
    if (SlabHint* h = st.partial.front()) return h;
    if (SlabHint* h = st.empty.front()) return h;
    if (SlabHint* h = st.clean.front()) return h;
    if ((*error = grow(c)) != 0) return nullptr;
  }
}

// Debug builds: checks each slab named in refs once (refs are grouped by slab).
void debug_check_slabs(const CacheDesc* c, const SlotRef* refs, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && refs[i].segment == refs[i - 1].segment && refs[i].slab == refs[i - 1].slab) continue;
    debug_check_slab(c, refs[i].segment, refs[i].slab);
  }
}

}  // namespace

Segment* checked_segment(const CacheDesc* c, std::uint32_t seg) noexcept {
  if (seg >= c->segment_count || c->segments[seg] == nullptr || c->segments[seg]->magic != kSegmentMagic) {
    fatal("pmalloc_cache '%s': bookkeeping names segment %u of %zu", c->name, seg, c->segment_count);
  }
  return c->segments[seg];
}

std::byte* checked_slab(const CacheDesc* c, const SlotRef& r) noexcept {
  Segment* s = checked_segment(c, r.segment);
  if (r.slab >= s->slabs_committed || r.slot >= c->geo.slots_per_slab) {
    fatal("pmalloc_cache '%s': bookkeeping names slot %zu of slab %zu outside the cache", c->name, r.slot, r.slab);
  }
  return s->slab(r.slab);
}

int hints_add_segment(CacheDesc* c, const Segment* s) noexcept {
  CacheState& st = *c->state;
  SegmentHints sh;
  const std::size_t n = s->slab_capacity;
  sh.slabs.reset(new (std::nothrow) SlabHint[n]);
  sh.bits.reset(new (std::nothrow) std::uint64_t[n * c->geo.header_words]());
  if (sh.slabs == nullptr || sh.bits == nullptr) {
    return fail(ENOMEM, "pmalloc_cache: out of memory for the bookkeeping of %zu slabs", n);
  }
  for (std::size_t i = 0; i < n; ++i) {
    sh.slabs[i].segment = s->index;
    sh.slabs[i].index = i;
  }
  sh.capacity = n;
  st.heap_bytes += n * (sizeof(SlabHint) + c->geo.header_words * sizeof(std::uint64_t));
  st.segments[s->index] = std::move(sh);
  return 0;
}

int reserve_slots(CacheDesc* c, std::size_t want, SlotRef* out) noexcept {
  CacheState& st = *c->state;
  const Geometry& g = c->geo;
  std::size_t got = 0;
  while (got < want) {
    int error = 0;
    SlabHint* h = slab_with_room(c, &error);
    if (h == nullptr) {
      release_slots(c, out, got);
      return error;
    }
    std::uint64_t* bits = hint_bits(st, g, h->segment, h->index);
    for (std::size_t w = 0; w < g.header_words && got < want && h->count < g.slots_per_slab; ++w) {
      std::uint64_t free_bits = ~bits[w];
      if (w == g.header_words - 1 && g.slots_per_slab % 64 != 0) {
        free_bits &= (std::uint64_t{1} << (g.slots_per_slab % 64)) - 1;
      }
      while (free_bits != 0 && got < want) {
        const unsigned b = static_cast<unsigned>(__builtin_ctzll(free_bits));
        free_bits &= free_bits - 1;
        bits[w] |= std::uint64_t{1} << b;
        h->count += 1;
        out[got++] = SlotRef{h->segment, h->index, w * 64 + b};
      }
    }
    move_to(st, h, list_for(c, h));
  }
  return 0;
}

void release_slots(CacheDesc* c, const SlotRef* refs, std::size_t n) noexcept {
  CacheState& st = *c->state;
  const Geometry& g = c->geo;
  for (std::size_t i = 0; i < n; ++i) {
    SlabHint& h = hint_of(st, refs[i]);
    std::uint64_t& word = hint_bits(st, g, refs[i].segment, refs[i].slab)[refs[i].slot / 64];
    const std::uint64_t bit = std::uint64_t{1} << (refs[i].slot % 64);
    if ((word & bit) == 0 || h.count == 0) {
      fatal("pmalloc_cache '%s': bookkeeping lost track of slot %zu of slab %zu", c->name, refs[i].slot,
            refs[i].slab);
    }
    word &= ~bit;
    h.count -= 1;
    // The last slot of a slab: emptied once the whole batch has been released (below).
    if (h.count > 0) move_to(st, &h, list_for(c, &h));
  }
  // Slabs left empty, each once (`emptying` marks those collected).
  SlabHint* one[1];
  std::unique_ptr<SlabHint*[]> many(n > 1 ? new (std::nothrow) SlabHint*[n] : nullptr);
  SlabHint** emptied = many != nullptr ? many.get() : one;
  const std::size_t room = many != nullptr ? n : 1;
  std::size_t count = 0;
  auto flush = [&] {
    for (std::size_t k = 0; k < count; ++k) emptied[k]->emptying = false;
    slabs_emptied(c, emptied, count);
    count = 0;
  };
  for (std::size_t i = 0; i < n; ++i) {
    SlabHint& h = hint_of(st, refs[i]);
    if (h.count != 0 || h.emptying || h.list == SlabList::empty || h.list == SlabList::clean) continue;
    if (h.list != SlabList::none) st.queue(h.list).remove(&h);
    if (count == room) flush();
    h.emptying = true;
    emptied[count++] = &h;
  }
  flush();
  if constexpr (kCacheDebugChecks) debug_check_slabs(c, refs, n);
}

void commit_slots(CacheDesc* c, const SlotRef* refs, std::size_t n) noexcept {
  CacheState& st = *c->state;
  for (std::size_t i = 0; i < n; ++i) {
    SlabHint& h = hint_of(st, refs[i]);
    if (!h.resident) {
      h.resident = true;
      st.resident_slabs += 1;
    }
  }
  st.live_objects += n;
  if constexpr (kCacheDebugChecks) debug_check_slabs(c, refs, n);
}

void debug_check_slab(const CacheDesc* c, std::uint32_t seg, std::size_t slab) noexcept {
  CacheState& st = *c->state;
  const Geometry& g = c->geo;
  const SlabHint& h = st.segments[seg].slabs[slab];
  const std::uint64_t* bits = hint_bits(st, g, seg, slab);
  std::size_t count = 0;
  for (std::size_t w = 0; w < g.header_words; ++w) count += static_cast<std::size_t>(__builtin_popcountll(bits[w]));
  const std::byte* base = checked_slab(c, SlotRef{seg, slab, 0});
  bool subset = true;
  if (h.resident) {  // pages never written are not read (the kernel would back them)
    std::lock_guard<std::mutex> guard(slab_lock(base));
    for (std::size_t w = 0; w < g.header_words; ++w) {
      std::uint64_t live = 0;
      std::memcpy(&live, base + w * 8, sizeof live);
      subset &= (live & ~bits[w]) == 0;
    }
  }
  const SlabList expected = h.count == g.slots_per_slab ? SlabList::none
                            : h.count > 0                ? SlabList::partial
                                                         : (h.list == SlabList::empty || h.list == SlabList::clean)
                                                               ? h.list
                                                               : SlabList::clean;
  if (count != h.count || !subset || h.list != expected || (h.list == SlabList::clean && h.resident) ||
      (h.list == SlabList::empty && !h.resident)) {
    fatal("pmalloc_cache '%s': invariant check failed for slab %zu of segment %u (count %u/%zu, subset %d)", c->name,
          slab, seg, h.count, count, subset ? 1 : 0);
  }
}

}  // namespace pmalloc::internal
