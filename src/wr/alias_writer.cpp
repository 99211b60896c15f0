// The alias back end: write through a second, temporary, writable mapping of the pages.
//
// Pool regions are memfd-backed under this back end (os::reserve_shared, asked for by
// pool/region.cpp through wr::regions_shared()). An update maps the target pages once
// more, read-write, at a random address (os::map_alias*), copies, and unmaps the view: the
// mapping everybody uses never changes permission, and another thread could only write
// during the update by guessing the view's address. A batch pays one view per region,
// spanning its chunks. Sealed pages cannot be aliased (the kernel refuses, EPERM); those
// go to the fallback writer, like targets outside pool regions.
//
// Caveat (docs/write-rare.md): shared pages stay shared across fork(): a child's writes to
// an inherited pool (plain before protection, wr_* after) are seen by the parent.
#include <cerrno>
#include <cstdint>
#include <random>

#include "os/os.hpp"
#include "pool/layout.hpp"
#include "wr/backends.hpp"

namespace pmalloc::internal::wr::detail {
namespace {

// Random page-aligned addresses in [2^40, 2^46): about 2^34 page positions. A taken
// address (or one a sanitizer reserves) is retried, then the kernel chooses.
#if defined(__SANITIZE_THREAD__)
constexpr bool kKernelPlaces = true;  // ThreadSanitizer refuses mappings outside its app ranges
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kKernelPlaces = true;
#else
constexpr bool kKernelPlaces = false;
#endif
#else
constexpr bool kKernelPlaces = false;
#endif

void* random_hint(std::size_t size) noexcept {
  thread_local std::uint64_t state = [] {
    std::uint64_t s = 0;
    try {
      std::random_device rd;
      s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    } catch (...) {
    }
    return s | 1;
  }();
  state ^= state << 13;  // xorshift64
  state ^= state >> 7;
  state ^= state << 17;
  const std::uint64_t lo = std::uint64_t{1} << 40, hi = std::uint64_t{1} << 46;
  const std::uint64_t span = hi - lo - size;
  const std::uint64_t page = os::page_size();
  return reinterpret_cast<void*>((lo + state % span) & ~(page - 1));
}

// Views of up to kZone/2 bytes land in a per-thread "landing zone": a 2 MiB reservation
// at a random address, replaced every kZoneUses updates, inside which each view takes a
// random page. Page tables at a brand-new random address cost far more than the update
// itself (measured: ~5x); inside a kept zone they stay allocated. Larger views get a fresh
// random address each time.
constexpr std::size_t kZone = std::size_t{2} << 20;
constexpr unsigned kZoneUses = 256;

struct Zone {
  void* base = nullptr;
  unsigned uses = 0;
  ~Zone() { drop(); }
  // Gives the reservation back (a whole reservation unmaps without a split, so a failure
  // is transient: retried, as for pool regions).
  void drop() noexcept {
    for (int attempt = 0; base != nullptr && attempt < 4; ++attempt) {
      if (os::release(base, kZone) == 0) break;
    }
    base = nullptr;
    uses = 0;
  }
  // A zone with room for `size` bytes, or nullptr (then the caller maps elsewhere).
  std::byte* get() noexcept {
    if (base != nullptr && uses < kZoneUses) return static_cast<std::byte*>(base);
    drop();
    if (kKernelPlaces && os::reserve(kZone, &base) != 0) base = nullptr;
    for (int attempt = 0; !kKernelPlaces && attempt < 3 && base == nullptr; ++attempt) {
      const auto hint = reinterpret_cast<std::uintptr_t>(random_hint(kZone)) & ~(kZone - 1);
      if (os::reserve_at(reinterpret_cast<void*>(hint), kZone, &base) != 0) base = nullptr;
    }
    return static_cast<std::byte*>(base);
  }
};
thread_local Zone t_zone;

struct View {
  void* at = nullptr;
  std::size_t size = 0;
  bool in_zone = false;
};

int open_view(void* begin, std::size_t size, View* v) noexcept {
  v->size = size;
  if (size <= kZone / 2) {
    if (std::byte* zone = t_zone.get()) {
      const std::size_t page = os::page_size();
      const std::size_t slots = (kZone - size) / page + 1;
      const auto pick = reinterpret_cast<std::uintptr_t>(random_hint(page)) / page % slots;
      const int e = os::map_alias_into(begin, size, zone + pick * page, &v->at);
      if (e == 0) {
        v->in_zone = true;
        ++t_zone.uses;
        return 0;
      }
      if (e == EINVAL || e == EPERM) return e;  // not aliasable: the caller falls back
    }
  }
  for (int attempt = 0; !kKernelPlaces && attempt < 3; ++attempt) {
    const int e = os::map_alias(begin, size, random_hint(size), &v->at);
    if (e != EEXIST) return e;
  }
  return os::map_alias(begin, size, nullptr, &v->at);
}

int close_view(const View& v) noexcept {
  const int e = os::unmap_view(v.at, v.size, v.in_zone);
  if (e != 0 && v.in_zone) {
    // The view is gone but so is that part of the zone's reservation: fill the hole, or
    // give the zone back and start a new one next time (forgetting it would leak it).
    void* plug = nullptr;
    if (os::reserve_at(v.at, v.size, &plug) != 0) t_zone.drop();
  }
  return e;
}

int write_group(const Chunk* chunks, std::size_t count) noexcept {
  const std::uintptr_t page = os::page_size();
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const auto a = reinterpret_cast<std::uintptr_t>(chunks[i].dst);
    lo = a < lo ? a : lo;
    hi = a + chunks[i].n > hi ? a + chunks[i].n : hi;
  }
  lo &= ~(page - 1);
  hi = (hi + page - 1) & ~(page - 1);
  View v;
  if (int e = open_view(reinterpret_cast<void*>(lo), hi - lo, &v)) return e;
  auto* base = static_cast<std::byte*>(v.at);
  for (std::size_t i = 0; i < count; ++i) {
    copy_bytes(base + (reinterpret_cast<std::uintptr_t>(chunks[i].dst) - lo), chunks[i].src, chunks[i].n);
  }
  return close_view(v);
}

}  // namespace

bool alias_probe() noexcept {
  const std::size_t page = os::page_size();
  void* p = nullptr;
  if (os::reserve_shared(page, &p) != 0) return false;
  bool ok = false;
  if (os::set_access(p, page, os::Access::read_write) == 0) {
    static_cast<volatile unsigned char*>(p)[0] = 1;
    void* alias = nullptr;
    if (os::set_access(p, page, os::Access::read) == 0 && os::map_alias(p, page, nullptr, &alias) == 0) {
      static_cast<volatile unsigned char*>(alias)[0] = 2;
      ok = static_cast<volatile unsigned char*>(p)[0] == 2;
      (void)os::release(alias, page);
    }
  }
  (void)os::release(p, page);
  return ok;
}

// Chunks arrive in order; consecutive chunks of one region share a view.
int alias_write(const Chunk* chunks, std::size_t count) noexcept {
  std::size_t i = 0;
  while (i < count) {
    const Region* r = classify(chunks[i]).region;
    std::size_t j = i + 1;
    while (j < count && classify(chunks[j]).region == r) ++j;
    if (int e = write_group(chunks + i, j - i)) return e;
    i = j;
  }
  return 0;
}

}  // namespace pmalloc::internal::wr::detail
