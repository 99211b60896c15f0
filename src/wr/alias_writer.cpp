// The alias back end: write through a second, temporary, writable mapping of the pages.
//
// Pool regions are memfd-backed under this back end (os::reserve_shared, asked for by
// pool/region.cpp through wr::regions_shared()). An update maps the target pages once
// more, read-write, at a random address (os::map_alias), copies, and unmaps the view: the
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

int view(void* begin, std::size_t size, void** out) noexcept {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int e = os::map_alias(begin, size, random_hint(size), out);
    if (e != EEXIST) return e;
  }
  return os::map_alias(begin, size, nullptr, out);
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
  void* alias = nullptr;
  if (int e = view(reinterpret_cast<void*>(lo), hi - lo, &alias)) return e;
  auto* base = static_cast<std::byte*>(alias);
  for (std::size_t i = 0; i < count; ++i) {
    copy_bytes(base + (reinterpret_cast<std::uintptr_t>(chunks[i].dst) - lo), chunks[i].src, chunks[i].n);
  }
  return os::release(alias, hi - lo);
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
