// execmem_update_copy: real x86-64 code written through the helper and executed, code
// patched in place, rodata used by code, and every way an update can be refused (with
// the bytes checked unchanged afterwards).
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "execmem_probe.hpp"
#include "pmalloc/pmalloc.h"

using namespace execmem_test;

namespace {

using IntFn = int (*)();
using BinFn = int (*)(int, int);

TEST(ExecmemUpdate, WriteThenExecuteRealCode) {
  void* add = execmem_alloc(EXECMEM_TEXT, kAdd.size());
  void* sub = execmem_alloc(EXECMEM_TEXT, kSub.size());
  ASSERT_NE(add, nullptr);
  ASSERT_NE(sub, nullptr);
  ASSERT_EQ(execmem_update_copy(add, kAdd.data(), kAdd.size()), 0);
  ASSERT_EQ(execmem_update_copy(sub, kSub.data(), kSub.size()), 0);
  for (int a = -50; a <= 50; a += 7) {
    for (int b = -30; b <= 30; b += 11) {
      EXPECT_EQ(as_function<BinFn>(add)(a, b), a + b);
      EXPECT_EQ(as_function<BinFn>(sub)(a, b), a - b);
    }
  }
  // The granule padding after the code is still traps.
  auto* bytes = static_cast<unsigned char*>(add);
  for (size_t i = kAdd.size(); i < 64; ++i) EXPECT_EQ(bytes[i], 0xCC);
  EXPECT_EQ(execmem_free(add), 0);
  EXPECT_EQ(execmem_free(sub), 0);
}

TEST(ExecmemUpdate, PatchCodeInPlace) {
  std::vector<std::uint8_t> code = ret_const(1);
  auto* p = static_cast<std::uint8_t*>(execmem_alloc(EXECMEM_TEXT, code.size()));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(execmem_update_copy(p, code.data(), code.size()), 0);
  EXPECT_EQ(as_function<IntFn>(p)(), 1);
  for (std::uint32_t v = 2; v < 200; ++v) {
    // Rewrite only the immediate (bytes 1..4).
    ASSERT_EQ(execmem_update_copy(p + 1, &v, sizeof v), 0);
    ASSERT_EQ(as_function<IntFn>(p)(), static_cast<int>(v));
  }
  EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemUpdate, CodeReadsRodataTable) {
  auto* table = static_cast<int*>(execmem_alloc(EXECMEM_RODATA, sizeof(int)));
  ASSERT_NE(table, nullptr);
  const int value = 123456;
  ASSERT_EQ(execmem_update_copy(table, &value, sizeof value), 0);
  std::vector<std::uint8_t> code = load_from(table);
  void* fn = execmem_alloc(EXECMEM_TEXT, code.size());
  ASSERT_NE(fn, nullptr);
  ASSERT_EQ(execmem_update_copy(fn, code.data(), code.size()), 0);
  EXPECT_EQ(as_function<IntFn>(fn)(), 123456);
  const int other = -7;
  ASSERT_EQ(execmem_update_copy(table, &other, sizeof other), 0);
  EXPECT_EQ(as_function<IntFn>(fn)(), -7);
  EXPECT_EQ(execmem_free(fn), 0);
  EXPECT_EQ(execmem_free(table), 0);
}

TEST(ExecmemUpdate, LargeUpdateAcrossPages) {
  const size_t n = 3 * 4096 + 123;
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, n));
  ASSERT_NE(p, nullptr);
  std::vector<unsigned char> code = padded_const(99, n);
  ASSERT_EQ(execmem_update_copy(p, code.data(), n), 0);
  EXPECT_TRUE(std::equal(code.begin(), code.end(), p));
  EXPECT_EQ(as_function<IntFn>(p)(), 99);
  EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemUpdate, OverlappingSourceBehavesLikeMemmove) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_RODATA, 64));
  ASSERT_NE(p, nullptr);
  unsigned char seq[64];
  for (int i = 0; i < 64; ++i) seq[i] = static_cast<unsigned char>(i);
  ASSERT_EQ(execmem_update_copy(p, seq, 64), 0);
  ASSERT_EQ(execmem_update_copy(p + 8, p, 32), 0);
  unsigned char expect[64];
  std::memcpy(expect, seq, 64);
  std::memmove(expect + 8, seq, 32);
  EXPECT_EQ(std::memcmp(p, expect, 64), 0);
  EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemUpdate, RefusedUpdatesWriteNothing) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 100));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(execmem_update_copy(p, kAdd.data(), kAdd.size()), 0);
  std::vector<unsigned char> before(p, p + 128);  // the block plus its granule padding
  unsigned char junk[256];
  std::memset(junk, 0x90, sizeof junk);

  auto refused = [&](void* dst, const void* src, size_t n, int expected) {
    EXPECT_EQ(execmem_update_copy(dst, src, n), expected) << "dst " << dst << " n " << n;
    EXPECT_NE(std::string(pmalloc_last_error()), "");
    EXPECT_TRUE(std::equal(before.begin(), before.end(), p));
  };
  refused(nullptr, junk, 4, EINVAL);
  refused(p, nullptr, 4, EINVAL);
  refused(p, junk, 101, EINVAL);        // one byte past the requested size
  refused(p + 99, junk, 2, EINVAL);     // crossing the end
  refused(p + 100, junk, 1, EINVAL);    // granule padding is not part of the block
  refused(p + 10, junk, SIZE_MAX, EINVAL);
  refused(junk, junk, 4, EINVAL);       // stack memory
  static unsigned char global[16];
  refused(global, junk, 4, EINVAL);     // static memory
  refused(reinterpret_cast<void*>(0x1000), junk, 4, EINVAL);
  refused(reinterpret_cast<void*>(UINTPTR_MAX - 2), junk, 8, EINVAL);  // wraps around

  // Inside the block: fine, also n == 0.
  EXPECT_EQ(execmem_update_copy(p + 99, junk, 1), 0);
  EXPECT_EQ(execmem_update_copy(p + 50, junk, 0), 0);

  // Freed: refused, and the freed bytes stay traps.
  EXPECT_EQ(execmem_free(p), 0);
  EXPECT_EQ(execmem_update_copy(p, junk, 4), EINVAL);
}

TEST(ExecmemUpdate, FreedBlockCannotBeUpdated) {
  auto* keep = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 64));  // keeps the page committed
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 64));
  ASSERT_NE(keep, nullptr);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(execmem_free(p), 0);
  const unsigned char nop = 0x90;
  EXPECT_EQ(execmem_update_copy(p, &nop, 1), EINVAL);
  if (perms_of(p) == "r-xp") {
    EXPECT_EQ(*p, 0xCC);
  }
  EXPECT_EQ(execmem_free(keep), 0);
}

TEST(ExecmemUpdate, DataIsNotWrittenByUpdate) {
  auto* d = static_cast<unsigned char*>(execmem_alloc(EXECMEM_DATA, 32));
  ASSERT_NE(d, nullptr);
  const unsigned char v = 1;
  EXPECT_EQ(execmem_update_copy(d, &v, 1), EINVAL);
  EXPECT_EQ(d[0], 0);
  EXPECT_EQ(execmem_free(d), 0);
}

TEST(ExecmemUpdate, MetadataAndGuardsAreNotTargets) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 64));
  ASSERT_NE(p, nullptr);
  // The page before a pack's data is metadata or a guard; walk back to the first page
  // that is not r-x and try it.
  auto* page = reinterpret_cast<unsigned char*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095});
  while (perms_of(page - 4096) == "r-xp") page -= 4096;
  const unsigned char v = 0;
  EXPECT_EQ(execmem_update_copy(page - 4096, &v, 1), EINVAL);
  EXPECT_EQ(execmem_update_copy(page - 1, &v, 1), EINVAL);
  EXPECT_EQ(execmem_free(p), 0);
}

}  // namespace
