// Address registry: lock-free lookups over the protected chunk table, and its updates
// (see registry.hpp for the contract, store.hpp for the storage and the update path).
//
// Invariants of the table (all registrations are disjoint):
//   * slots head..tail form a list in address order (next/prev);
//   * for every 1 MiB chunk c, cell(c) is the first registration, in that order, that
//     intersects c, or 0 when none does.
// So the registration containing x, if any, is found by walking from cell(chunk(x)) past
// the registrations that end at or before x: at most the ones that end inside that chunk,
// and regions are larger than a chunk, so that is one or two steps.
#include "registry/registry.hpp"

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.hpp"
#include "registry/store.hpp"

namespace pmalloc::internal::registry {
namespace {

std::mutex g_update;  // serialises add/remove/for_each

constexpr std::uintptr_t kAddressLimit = std::uintptr_t{1} << kAddressBits;
constexpr std::uintptr_t kLeafMask = kLeafCells - 1;
constexpr unsigned kDirShift = kLeafShift - kChunkShift;
// Chunks a range query scans through the table before it walks the list instead.
constexpr std::uintptr_t kScanChunks = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The first registration intersecting chunk c, or 0. Safe on a torn view (bounded).
inline std::uint32_t cell(const Arena* a, std::uintptr_t chunk) noexcept {
  const std::uint32_t leaf = ld(a->dir[(chunk >> kDirShift) & (kDirEntries - 1)]);
  if (leaf == 0 || leaf > kMaxLeaves) return 0;
  return ld(a->leaves[leaf - 1][chunk & kLeafMask]);
}

inline bool valid_slot(std::uint32_t s) noexcept { return s != 0 && s < kMaxSlots; }

// The first registration, walking from s, that ends after x (0 when none). The walk is
// bounded so that a reader racing with an update always terminates (and then retries).
inline std::uint32_t walk_past(const Arena* a, std::uint32_t s, std::uintptr_t x) noexcept {
  for (std::uint32_t steps = 0; valid_slot(s) && steps < kMaxSlots; ++steps) {
    if (x < ld(a->slots[s].end)) return s;
    s = ld(a->slots[s].next);
  }
  return 0;
}

// The registration containing x, or 0.
inline std::uint32_t containing(const Arena* a, std::uintptr_t x) noexcept {
  const std::uint32_t s = walk_past(a, cell(a, x >> kChunkShift), x);
  return s != 0 && ld(a->slots[s].begin) <= x ? s : 0;
}

// The first registration that ends after `first`, found through the cells of the chunks
// of [first, last] when those are few, else by walking the list. 0 when none intersects
// [first, last] (the result may begin after `last`; callers check).
std::uint32_t first_ending_after(const Arena* a, std::uintptr_t first, std::uintptr_t last) noexcept {
  const std::uintptr_t c0 = first >> kChunkShift;
  const std::uintptr_t c1 = last >> kChunkShift;
  if (c1 - c0 < kScanChunks) {
    for (std::uintptr_t c = c0; c <= c1; ++c) {
      if (const std::uint32_t s = cell(a, c); s != 0) return walk_past(a, s, first);
    }
    return 0;  // every registration that reaches into [first, last] would have a cell there
  }
  return walk_past(a, ld(a->header.counts.head), first);
}

inline void fill(const Arena* a, std::uint32_t s, Entry* out) noexcept {
  out->begin = ld(a->slots[s].begin);
  out->end = ld(a->slots[s].end);
  const std::uint64_t owner = ld(a->slots[s].owner);
  out->kind = static_cast<Kind>(owner & kKindMask);
  void* const pointer = reinterpret_cast<void*>(owner & ~kKindMask);
  out->region = out->kind == Kind::region ? static_cast<Region*>(pointer) : nullptr;
  out->segment = out->kind == Kind::cache_segment ? static_cast<Segment*>(pointer) : nullptr;
}

int add_owner(const void* begin, std::size_t size, const void* owner, Kind kind) noexcept;

// The second sequence read of a seqlock reader. Every load of the table in between is an
// acquire load (ld(), store.hpp), so none of them can move after this one: the ordering a
// standalone acquire fence would give, without a fence (which ThreadSanitizer does not
// model and g++ rejects under -fsanitize=thread). Acquire loads are plain loads on x86-64.
inline std::uint64_t recheck_seq(const std::uint64_t* seq) noexcept { return __atomic_load_n(seq, __ATOMIC_RELAXED); }

// Runs a read of the table until it completes without a concurrent update.
template <class Body>
bool read(const Arena* a, Entry* out, Body body) noexcept {
  for (;;) {
    const std::uint64_t s1 = __atomic_load_n(&a->header.seq, __ATOMIC_ACQUIRE);
    if ((s1 & 1) != 0) {
      cpu_relax();
      continue;
    }
    Entry e;
    const bool found = body(&e);
    if (recheck_seq(&a->header.seq) == s1) {
      if (found) *out = e;
      return found;
    }
  }
}

// --- Update side (update lock held; reads need no retry, the table only changes here).

// Writes cell(c) = value(c, cell(c)) for every chunk c in [c0, c1] (their leaves exist).
template <class Value>
void put_cells(Update& u, Arena* a, std::uintptr_t c0, std::uintptr_t c1, Value value) noexcept {
  std::vector<std::uint32_t> cells;
  for (std::uintptr_t lo = c0; lo <= c1 && u.error() == 0;) {
    const std::uintptr_t hi = std::min(c1, lo | kLeafMask);
    const std::uint32_t leaf = a->dir[lo >> kDirShift];
    std::uint32_t* dst = &a->leaves[leaf - 1][lo & kLeafMask];
    try {
      cells.assign(dst, dst + (hi - lo + 1));
    } catch (const std::bad_alloc&) {
      u.set_error(ENOMEM);
      return;
    }
    for (std::uintptr_t c = lo; c <= hi; ++c) cells[c - lo] = value(c, cells[c - lo]);
    (void)u.put(dst, cells.data(), cells.size() * sizeof(std::uint32_t));
    lo = hi + 1;
  }
}

// The first registration that ends after b (its successor, for a free b).
std::uint32_t successor(const Arena* a, std::uintptr_t b, std::uintptr_t c0, std::uintptr_t c1) noexcept {
  for (std::uintptr_t c = c0; c <= c1; ++c) {
    if (const std::uint32_t s = cell(a, c); s != 0) return walk_past(a, s, b);
  }
  return walk_past(a, a->header.counts.head, b);
}

int try_remove(Arena* a, std::uint32_t id) noexcept {
  const Slot s = a->slots[id];
  Counts n = a->header.counts;
  Update u(a);
  if (int e = u.begin()) return e;
  put_cells(u, a, s.begin >> kChunkShift, (s.end - 1) >> kChunkShift, [&](std::uintptr_t c, std::uint32_t cur) {
    if (cur != id) return cur;
    const bool next_here = s.next != 0 && a->slots[s.next].begin < ((c + 1) << kChunkShift);
    return next_here ? s.next : 0u;
  });
  if (s.prev != 0) {
    (void)u.put(a->slots[s.prev].next, s.next);
  } else {
    n.head = s.next;
  }
  if (s.next != 0) {
    (void)u.put(a->slots[s.next].prev, s.prev);
  } else {
    n.tail = s.prev;
  }
  const Slot freed{0, 0, 0, n.free_head, 0};
  (void)u.put(a->slots[id], freed);
  n.free_head = id;
  n.count -= 1;
  (void)u.put(a->header.counts, n);
  const int e = u.error();
  u.finish(e == 0);
  return e;
}

}  // namespace

int add(const void* begin, std::size_t size, Region* region) noexcept {
  return add_owner(begin, size, region, Kind::region);
}

int add(const void* begin, std::size_t size, Segment* segment) noexcept {
  return add_owner(begin, size, segment, Kind::cache_segment);
}

namespace {
int add_owner(const void* begin, std::size_t size, const void* owner_ptr, Kind kind) noexcept {
  const auto owner = reinterpret_cast<std::uintptr_t>(owner_ptr);
  if ((owner & kKindMask) != 0) return EINVAL;  // headers are page-aligned
  const auto b = reinterpret_cast<std::uintptr_t>(begin);
  if (size == 0 || b >= kAddressLimit || size > kAddressLimit - b) return EINVAL;
  const std::uintptr_t e = b + size;
  const std::uintptr_t c0 = b >> kChunkShift;
  const std::uintptr_t c1 = (e - 1) >> kChunkShift;

  std::lock_guard<std::mutex> lock(g_update);
  Arena* a = nullptr;
  if (int err = ensure_arena(&a)) return err;
  Counts n = a->header.counts;
  std::uint32_t id = n.free_head;
  if (id != 0) {
    n.free_head = a->slots[id].next;
  } else {
    if (n.slots_used == 0) n.slots_used = 1;  // slot 0 means "none"
    if (n.slots_used >= kMaxSlots) return ENOMEM;
    id = n.slots_used++;
  }
  std::uint32_t missing = 0;
  for (std::uintptr_t d = c0 >> kDirShift; d <= (c1 >> kDirShift); ++d) missing += a->dir[d] == 0 ? 1 : 0;
  if (n.leaves_used + missing > kMaxLeaves) return ENOMEM;
  const std::uint32_t succ = successor(a, b, c0, c1);
  if (succ != 0 && a->slots[succ].begin < e) return EEXIST;
  const std::uint32_t pred = succ != 0 ? a->slots[succ].prev : n.tail;

  Update u(a);
  if (int err = u.begin()) return err;
  const Slot slot{b, e, owner | static_cast<std::uint64_t>(kind), succ, pred};
  (void)u.put(a->slots[id], slot);
  for (std::uintptr_t d = c0 >> kDirShift; d <= (c1 >> kDirShift); ++d) {
    if (a->dir[d] != 0) continue;
    n.leaves_used += 1;
    (void)u.put(a->dir[d], n.leaves_used);
  }
  if (pred != 0) {
    (void)u.put(a->slots[pred].next, id);
  } else {
    n.head = id;
  }
  if (succ != 0) {
    (void)u.put(a->slots[succ].prev, id);
  } else {
    n.tail = id;
  }
  // E becomes the first registration of every chunk it shares only with later ones.
  put_cells(u, a, c0, c1, [&](std::uintptr_t, std::uint32_t cur) {
    return cur == 0 || a->slots[cur].begin > b ? id : cur;
  });
  n.count += 1;
  (void)u.put(a->header.counts, n);
  const int err = u.error();
  u.finish(err == 0);
  return err;
}
}  // namespace

void remove(const void* begin) noexcept {
  const auto b = reinterpret_cast<std::uintptr_t>(begin);
  std::lock_guard<std::mutex> lock(g_update);
  auto* a = const_cast<Arena*>(arena());
  if (a == nullptr || b >= kAddressLimit) return;
  const std::uint32_t id = containing(a, b);
  if (id == 0 || a->slots[id].begin != b) return;
  int e = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    if ((e = try_remove(a, id)) == 0) return;
  }
  // The caller is about to unmap the region: a registration left behind would point
  // lookups at unmapped memory.
  fatal("address registry: cannot unregister the region at %p (errno %d)", begin, e);
}

bool lookup(const void* p, Entry* out) noexcept {
  const Arena* a = arena();
  const auto x = reinterpret_cast<std::uintptr_t>(p);
  if (a == nullptr || x >= kAddressLimit) return false;
  return read(a, out, [&](Entry* e) {
    const std::uint32_t s = containing(a, x);
    if (s == 0) return false;
    fill(a, s, e);
    return true;
  });
}

Region* find(const void* p) noexcept {
  Entry e;
  return lookup(p, &e) ? e.region : nullptr;
}

Segment* find_segment(const void* p) noexcept {
  Entry e;
  return lookup(p, &e) ? e.segment : nullptr;
}

bool first_intersecting(std::uintptr_t first, std::uintptr_t last, Entry* out) noexcept {
  const Arena* a = arena();
  if (a == nullptr || first > last || first >= kAddressLimit) return false;
  if (last >= kAddressLimit) last = kAddressLimit - 1;
  return read(a, out, [&](Entry* e) {
    const std::uint32_t s = first_ending_after(a, first, last);
    if (s == 0 || ld(a->slots[s].begin) > last) return false;
    fill(a, s, e);
    return true;
  });
}

std::size_t size() noexcept {
  const Arena* a = arena();
  return a == nullptr ? 0 : ld(a->header.counts.count);
}

void for_each(void (*fn)(Region* region, void* context), void* context) noexcept {
  std::lock_guard<std::mutex> lock(g_update);
  const Arena* a = arena();
  if (a == nullptr) return;
  for (std::uint32_t s = a->header.counts.head; valid_slot(s); s = a->slots[s].next) {
    const std::uint64_t owner = a->slots[s].owner;
    if (static_cast<Kind>(owner & kKindMask) == Kind::region) fn(reinterpret_cast<Region*>(owner & ~kKindMask), context);
  }
}

}  // namespace pmalloc::internal::registry
