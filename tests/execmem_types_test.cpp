// execmem types: what each type's memory is on return (permissions, fill, alignment),
// that types never share a page, that text is packed at 64-byte granularity, and the
// per-type statistics. API-level tests (pmalloc/pmalloc.h only, plus the probe helpers).
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <set>
#include <vector>

#include "execmem_probe.hpp"
#include "pmalloc/pmalloc.h"

using namespace execmem_test;

namespace {

std::uintptr_t page_of(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) & ~static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE) - 1);
}

TEST(ExecmemTypes, TextIsReadExecAndTrapFilled) {
  for (size_t size : {1u, 63u, 64u, 65u, 200u, 4096u, 5000u, 70000u}) {
    auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, size));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % EXECMEM_TEXT_ALIGN, 0u);
    EXPECT_EQ(perms_of(p), "r-xp");
    EXPECT_EQ(perms_of(p + size - 1), "r-xp");
    EXPECT_TRUE(std::all_of(p, p + size, [](unsigned char c) { return c == 0xCC; })) << size;
    EXPECT_EQ(execmem_free(p), 0);
  }
}

TEST(ExecmemTypes, DataTypesAreZeroFilledWithTheirAccess) {
  struct Case {
    execmem_type type;
    const char* perms;
  };
  for (Case c : {Case{EXECMEM_RODATA, "r--p"}, Case{EXECMEM_DATA, "rw-p"}, Case{EXECMEM_RO_AFTER_INIT, "rw-p"}}) {
    for (size_t size : {1u, 16u, 100u, 4096u, 300000u}) {
      auto* p = static_cast<unsigned char*>(execmem_alloc(c.type, size));
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % EXECMEM_DATA_ALIGN, 0u);
      EXPECT_EQ(perms_of(p), c.perms) << c.type << " " << size;
      EXPECT_TRUE(std::all_of(p, p + size, [](unsigned char b) { return b == 0; }));
      EXPECT_EQ(execmem_free(p), 0);
    }
  }
}

TEST(ExecmemTypes, DataIsPlainReadWrite) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_DATA, 256));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 256; ++i) p[i] = static_cast<unsigned char>(i);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(p[i], i);
  // Freed data is zeroed before reuse.
  EXPECT_EQ(execmem_free(p), 0);
  auto* q = static_cast<unsigned char*>(execmem_alloc(EXECMEM_DATA, 256));
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(std::all_of(q, q + 256, [](unsigned char b) { return b == 0; }));
  EXPECT_EQ(execmem_free(q), 0);
}

TEST(ExecmemTypes, TypesNeverShareAPage) {
  const execmem_type types[] = {EXECMEM_TEXT, EXECMEM_RODATA, EXECMEM_DATA, EXECMEM_RO_AFTER_INIT};
  std::vector<std::pair<void*, int>> blocks;
  std::vector<std::set<std::uintptr_t>> pages(4);
  for (int round = 0; round < 200; ++round) {
    for (int t = 0; t < 4; ++t) {
      const size_t size = 16 + static_cast<size_t>((round * 37 + t * 11) % 500);
      void* p = execmem_alloc(types[t], size);
      ASSERT_NE(p, nullptr);
      blocks.emplace_back(p, t);
      for (std::uintptr_t a = page_of(p); a <= page_of(static_cast<char*>(p) + size - 1); a += 4096) pages[t].insert(a);
    }
  }
  for (int a = 0; a < 4; ++a) {
    for (int b = a + 1; b < 4; ++b) {
      for (std::uintptr_t pg : pages[a]) EXPECT_EQ(pages[b].count(pg), 0u) << "types " << a << " and " << b;
    }
  }
  for (auto& [p, t] : blocks) EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemTypes, SmallTextIsPackedAt64ByteGranularity) {
  // Consecutive small allocations land next to each other, 64 bytes apart per granule.
  std::vector<unsigned char*> ps;
  for (int i = 0; i < 64; ++i) {
    auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 100));  // two granules
    ASSERT_NE(p, nullptr);
    ps.push_back(p);
  }
  std::vector<unsigned char*> sorted = ps;
  std::sort(sorted.begin(), sorted.end());
  size_t adjacent = 0;
  for (size_t i = 1; i < sorted.size(); ++i) adjacent += (sorted[i] - sorted[i - 1] == 128) ? 1 : 0;
  // A fresh process packs all of them contiguously; tolerate a few holes left by other tests.
  EXPECT_GE(adjacent, sorted.size() - 4);
  std::set<std::uintptr_t> pages;
  for (auto* p : ps) pages.insert(page_of(p));
  EXPECT_LE(pages.size(), 4u);  // 64 * 128 bytes = 2 pages, plus holes
  for (auto* p : ps) EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemTypes, StatsFollowAllocations) {
  execmem_stats before{}, during{}, after{};
  ASSERT_EQ(execmem_get_stats(EXECMEM_RODATA, &before), 0);
  void* p = execmem_alloc(EXECMEM_RODATA, 1000);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(execmem_get_stats(EXECMEM_RODATA, &during), 0);
  EXPECT_EQ(during.allocations_live, before.allocations_live + 1);
  EXPECT_EQ(during.bytes_live, before.bytes_live + 1000);
  EXPECT_GE(during.bytes_committed, 4096u);
  EXPECT_GE(during.packs, 1u);
  EXPECT_GT(during.bytes_reserved, during.bytes_committed);
  EXPECT_GT(during.bytes_metadata, 0u);
  EXPECT_EQ(execmem_free(p), 0);
  ASSERT_EQ(execmem_get_stats(EXECMEM_RODATA, &after), 0);
  EXPECT_EQ(after.allocations_live, before.allocations_live);
  EXPECT_EQ(after.bytes_live, before.bytes_live);
}

TEST(ExecmemTypes, BadArguments) {
  errno = 0;
  EXPECT_EQ(execmem_alloc(EXECMEM_TEXT, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::string(pmalloc_last_error()), "");
  errno = 0;
  EXPECT_EQ(execmem_alloc(static_cast<execmem_type>(7), 64), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(execmem_alloc(static_cast<execmem_type>(-1), 64), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(execmem_alloc(EXECMEM_TEXT, SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(execmem_alloc(EXECMEM_DATA, SIZE_MAX / 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  execmem_stats s{};
  EXPECT_EQ(execmem_get_stats(static_cast<execmem_type>(9), &s), EINVAL);
  EXPECT_EQ(execmem_get_stats(EXECMEM_TEXT, nullptr), EINVAL);
}

}  // namespace
