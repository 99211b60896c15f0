// execmem page life cycle: freed text is refilled with traps, pages that become entirely
// free go back to the OS (inaccessible, not resident), reused pages come back trap-filled,
// large allocations get dedicated packs that are unmapped on free, and the huge-page
// option gives 2 MiB-aligned packs the kernel may back with transparent huge pages.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "execmem_probe.hpp"
#include "pmalloc/pmalloc.h"

using namespace execmem_test;

namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

bool resident(const void* p) {
  unsigned char v = 0;
  auto* page = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~(kPage - 1));
  if (mincore(page, kPage, &v) != 0) return false;
  return (v & 1) != 0;
}

size_t committed(execmem_type t) {
  execmem_stats s{};
  EXPECT_EQ(execmem_get_stats(t, &s), 0);
  return s.bytes_committed;
}

TEST(ExecmemPages, FreedTextIsRefilledWithTraps) {
  auto* a = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 64));
  auto* b = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 192));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<std::uint8_t> code = padded_const(5, 192);
  ASSERT_EQ(execmem_update_copy(b, code.data(), code.size()), 0);
  ASSERT_EQ(as_function<int (*)()>(b)(), 5);
  // a shares b's page or is next to it, so b's page stays committed while a lives.
  const bool same_page = (reinterpret_cast<std::uintptr_t>(a) / kPage) == (reinterpret_cast<std::uintptr_t>(b) / kPage);
  ASSERT_EQ(execmem_free(b), 0);
  if (same_page) {
    EXPECT_EQ(perms_of(b), "r-xp");
    EXPECT_TRUE(std::all_of(b, b + 192, [](unsigned char c) { return c == 0xCC; }));
    EXPECT_EQ(call_signal(b), SIGTRAP);  // a dangling call hits a trap, not stale code
  } else {
    EXPECT_EQ(call_signal(b), SIGSEGV);
  }
  // Whatever lands there next starts out as traps again.
  auto* c = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 192));
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(std::all_of(c, c + 192, [](unsigned char x) { return x == 0xCC; }));
  EXPECT_EQ(execmem_free(c), 0);
  EXPECT_EQ(execmem_free(a), 0);
}

TEST(ExecmemPages, EntirelyFreePagesGoBackToTheOS) {
  // 32 blocks of exactly one page each: every block owns its page.
  const size_t before = committed(EXECMEM_TEXT);
  std::vector<unsigned char*> blocks;
  for (int i = 0; i < 32; ++i) {
    auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, kPage));
    ASSERT_NE(p, nullptr);
    std::vector<std::uint8_t> code = padded_const(static_cast<std::uint32_t>(i), kPage);
    ASSERT_EQ(execmem_update_copy(p, code.data(), code.size()), 0);
    blocks.push_back(p);
  }
  EXPECT_GE(committed(EXECMEM_TEXT), before + 32 * kPage);
  for (auto* p : blocks) EXPECT_TRUE(resident(p));
  for (int i = 0; i < 32; i += 2) ASSERT_EQ(execmem_free(blocks[i]), 0);
  EXPECT_LE(committed(EXECMEM_TEXT), before + 16 * kPage);
  for (int i = 0; i < 32; i += 2) {
    EXPECT_EQ(perms_of(blocks[i]), "---p");
    EXPECT_FALSE(resident(blocks[i]));
  }
  EXPECT_EQ(call_signal(blocks[0]), SIGSEGV);
  EXPECT_EQ(read_signal(blocks[2]), SIGSEGV);
  // The survivors are untouched.
  for (int i = 1; i < 32; i += 2) EXPECT_EQ(as_function<int (*)()>(blocks[i])(), i);
  // Returned pages come back trap-filled when reused.
  std::vector<unsigned char*> again;
  for (int i = 0; i < 16; ++i) {
    auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, kPage));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(perms_of(p), "r-xp");
    EXPECT_TRUE(std::all_of(p, p + kPage, [](unsigned char c) { return c == 0xCC; }));
    again.push_back(p);
  }
  for (auto* p : again) EXPECT_EQ(execmem_free(p), 0);
  for (int i = 1; i < 32; i += 2) EXPECT_EQ(execmem_free(blocks[i]), 0);
  EXPECT_EQ(committed(EXECMEM_TEXT), before);
}

TEST(ExecmemPages, DataTypesReturnPagesToo) {
  for (execmem_type t : {EXECMEM_RODATA, EXECMEM_DATA, EXECMEM_RO_AFTER_INIT}) {
    const size_t before = committed(t);
    std::vector<void*> blocks;
    for (int i = 0; i < 8; ++i) blocks.push_back(execmem_alloc(t, kPage));
    for (void* p : blocks) ASSERT_NE(p, nullptr);
    if (t != EXECMEM_RODATA) static_cast<unsigned char*>(blocks[3])[5] = 42;
    EXPECT_GE(committed(t), before + 8 * kPage);
    for (void* p : blocks) EXPECT_EQ(execmem_free(p), 0);
    EXPECT_EQ(committed(t), before);
    EXPECT_EQ(perms_of(blocks[3]), "---p");
    // Reused memory is zero again.
    auto* q = static_cast<unsigned char*>(execmem_alloc(t, kPage));
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(std::all_of(q, q + kPage, [](unsigned char c) { return c == 0; }));
    EXPECT_EQ(execmem_free(q), 0);
  }
}

TEST(ExecmemPages, LargeAllocationsGetDedicatedPacks) {
  execmem_stats s0{}, s1{}, s2{};
  ASSERT_EQ(execmem_get_stats(EXECMEM_TEXT, &s0), 0);
  const size_t n = 1u << 20;
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, n));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(execmem_get_stats(EXECMEM_TEXT, &s1), 0);
  EXPECT_EQ(s1.packs, s0.packs + 1);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kPage, 0u);
  EXPECT_EQ(p[0], 0xCC);
  EXPECT_EQ(p[n - 1], 0xCC);
  std::vector<std::uint8_t> code = ret_const(77);
  ASSERT_EQ(execmem_update_copy(p + n - 64, code.data(), code.size()), 0);
  EXPECT_EQ(as_function<int (*)()>(p + n - 64)(), 77);
  ASSERT_EQ(execmem_free(p), 0);
  ASSERT_EQ(execmem_get_stats(EXECMEM_TEXT, &s2), 0);
  EXPECT_EQ(s2.packs, s0.packs);
  EXPECT_EQ(perms_of(p), "");  // unmapped
}

TEST(ExecmemPages, HugePagePacks) {
  ASSERT_EQ(execmem_set_hugepages(1), 0);
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 200));
  ASSERT_EQ(execmem_set_hugepages(0), 0);
  ASSERT_NE(p, nullptr);
  execmem_stats s{};
  ASSERT_EQ(execmem_get_stats(EXECMEM_TEXT, &s), 0);
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(thp, mode);
  if (!thp || mode.find("[never]") != std::string::npos) GTEST_SKIP() << "no transparent huge pages here";
  EXPECT_GE(s.hugepage_packs, 1u);
  // The pack's text is one r-x mapping of at least 2 MiB, 2 MiB-aligned, THP-eligible.
  for (const Mapping& m : read_maps()) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    if (a < m.lo || a >= m.hi) continue;
    EXPECT_EQ(m.perms, "r-xp");
    EXPECT_EQ(m.lo % (2u << 20), 0u);
    EXPECT_GE(m.hi - m.lo, 2u << 20);
  }
  EXPECT_EQ(smaps_field(p, "THPeligible"), 1);
  EXPECT_EQ(p[0], 0xCC);
  std::vector<std::uint8_t> code = ret_const(31);
  ASSERT_EQ(execmem_update_copy(p, code.data(), code.size()), 0);
  EXPECT_EQ(as_function<int (*)()>(p)(), 31);
  ASSERT_EQ(execmem_free(p), 0);
}

}  // namespace
