// Helpers shared by the hardening tests: kernel mappings of pmalloc's own reservations
// (sanitizers map memory of their own, so global /proc/self/maps counts are only exact in
// plain builds), and a write probe that works under AddressSanitizer too (its SIGSEGV
// handler turns a fault into exit(1), so "killed by SIGSEGV" cannot be asked for there).
#pragma once

#include <pmalloc/pmalloc.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "pool/layout.hpp"
#include "pool/pool.hpp"
#include "support/probe.hpp"

namespace hardening_test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

using Range = std::pair<std::uintptr_t, std::uintptr_t>;

// The reservations of a pool's regions (guards included).
inline std::vector<Range> region_ranges(pmalloc_pool* pool) {
  std::vector<Range> out;
  for (const auto* r = pmalloc::internal::from_handle(pool)->first; r != nullptr; r = r->next) {
    const auto b = reinterpret_cast<std::uintptr_t>(r->reservation);
    out.emplace_back(b, b + r->reservation_size);
  }
  return out;
}

// Lines of /proc/self/maps that overlap any of the ranges (appended to *lines if given).
// With `skip_foreign`, in sanitized builds, plain read-write anonymous mappings are not
// counted: once pmalloc has released a range, the sanitizer runtime's allocator maps its
// own chunks wherever the kernel puts them, freed pool ranges included (seen once in a
// fault sweep under ASan). A region pmalloc failed to release always shows a part that is
// not plain read-write (guard pages, protected or reserved space), and the registry check
// beside these counts catches an unregistered one exactly.
inline std::size_t mappings_within(const std::vector<Range>& ranges, std::string* lines = nullptr,
                                   bool skip_foreign = false) {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) {
    unsigned long lo = 0, hi = 0, offset = 0, inode = 0;
    char perms[8] = {};
    char dev[16] = {};
    const int fields = std::sscanf(line.c_str(), "%lx-%lx %7s %lx %15s %lu", &lo, &hi, perms, &offset, dev, &inode);
    if (fields < 2) continue;
    if (skip_foreign && kSanitized && fields == 6 && std::string(perms) == "rw-p" && inode == 0) continue;
    for (const Range& r : ranges) {
      if (lo < r.second && r.first < hi) {
        ++n;
        if (lines != nullptr) *lines += line + "\n";
        break;
      }
    }
  }
  return n;
}

// Makes the writer set up what it keeps for the life of the thread, so that mapping counts
// taken afterwards see only the pool's own: the alias writer reserves a per-thread landing
// zone for its views on first use (wr/alias_writer.cpp). No-op for the other writers.
inline void warm_up_writer() {
  pmalloc_pool* pool = pmalloc_create_pool("writer-warm-up", PMALLOC_RO);
  if (pool == nullptr) return;
  void* p = pmalloc(pool, 16);
  if (p != nullptr && pmalloc_protect_pool(pool) == 0) (void)pfree(pool, p);  // through the writer
  pmalloc_destroy_pool(pool);
}

// True when a plain one-byte write at p faults (tried in a forked child).
inline bool write_faults(volatile void* p) {
  return pmalloc_test::count_faulting_writes({static_cast<volatile unsigned char*>(p)}) == 1;
}

}  // namespace hardening_test
