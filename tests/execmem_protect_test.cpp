// execmem protection: text and rodata are never writable, data is never executable,
// trap-filled text traps when called, RO_AFTER_INIT becomes read-only for good. Every
// fault is proven in a forked child (killed by the signal), and the bytes checked
// unchanged in the parent afterwards.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

#include "execmem_probe.hpp"
#include "pmalloc/pmalloc.h"

using namespace execmem_test;

namespace {

TEST(ExecmemProtect, TextIsNeverWritable) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 128));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(execmem_update_copy(p, kAdd.data(), kAdd.size()), 0);
  std::vector<unsigned char> before(p, p + 128);
  EXPECT_EQ(write_signal(p), SIGSEGV);
  EXPECT_EQ(write_signal(p + 100), SIGSEGV);
  EXPECT_EQ(write_signal(p + 127), SIGSEGV);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), p));
  EXPECT_EQ(as_function<int (*)(int, int)>(p)(20, 22), 42);
  EXPECT_EQ(perms_of(p), "r-xp");
  EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemProtect, FreshTextTrapsWhenCalled) {
  void* p = execmem_alloc(EXECMEM_TEXT, 64);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(call_signal(p), SIGTRAP);
  EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemProtect, RodataIsReadOnlyAndNotExecutable) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_RODATA, 64));
  ASSERT_NE(p, nullptr);
  const unsigned char table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_EQ(execmem_update_copy(p, table, sizeof table), 0);
  EXPECT_EQ(write_signal(p), SIGSEGV);
  EXPECT_EQ(write_signal(p + 63), SIGSEGV);
  EXPECT_EQ(std::memcmp(p, table, sizeof table), 0);
  // Even bytes that happen to be code do not run from rodata.
  ASSERT_EQ(execmem_update_copy(p, kAdd.data(), kAdd.size()), 0);
  EXPECT_EQ(call_signal(p), SIGSEGV);
  EXPECT_EQ(perms_of(p), "r--p");
  EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemProtect, DataIsNeverExecutable) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_DATA, 64));
  ASSERT_NE(p, nullptr);
  std::memcpy(p, kAdd.data(), kAdd.size());
  EXPECT_EQ(call_signal(p), SIGSEGV);
  EXPECT_EQ(perms_of(p), "rw-p");
  EXPECT_EQ(execmem_free(p), 0);
}

TEST(ExecmemProtect, RoAfterInitBecomesReadOnlyForGood) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_RO_AFTER_INIT, 200));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x5A, 200);  // writable during init
  EXPECT_EQ(write_signal(p), 0);
  const unsigned char v = 7;
  EXPECT_EQ(execmem_update_copy(p + 10, &v, 1), 0);  // a plain copy while writable
  EXPECT_EQ(p[10], 7);

  ASSERT_EQ(execmem_protect_ro_after_init(), 0);
  EXPECT_EQ(perms_of(p), "r--p");
  EXPECT_EQ(write_signal(p), SIGSEGV);
  EXPECT_EQ(write_signal(p + 199), SIGSEGV);
  EXPECT_EQ(p[0], 0x5A);
  EXPECT_EQ(p[10], 7);
  EXPECT_EQ(execmem_update_copy(p, &v, 1), EPERM);
  EXPECT_EQ(p[0], 0x5A);
  if (pmalloc_seal_supported()) {
    // Sealed: not even mprotect can make it writable again.
    void* page = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095});
    EXPECT_EQ(mprotect(page, 4096, PROT_READ | PROT_WRITE), -1);
    EXPECT_EQ(errno, EPERM);
  }
  // A second call has nothing left to do.
  EXPECT_EQ(execmem_protect_ro_after_init(), 0);

  // Later allocations come from fresh pages and are writable until the next call.
  auto* q = static_cast<unsigned char*>(execmem_alloc(EXECMEM_RO_AFTER_INIT, 200));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(reinterpret_cast<std::uintptr_t>(q) >> 12, reinterpret_cast<std::uintptr_t>(p) >> 12);
  EXPECT_EQ(perms_of(q), "rw-p");
  q[0] = 1;
  ASSERT_EQ(execmem_protect_ro_after_init(), 0);
  EXPECT_EQ(write_signal(q), SIGSEGV);
  EXPECT_EQ(q[0], 1);

  // Freeing protected memory only unaccounts it: the bytes stay, read-only.
  execmem_stats before{}, after{};
  ASSERT_EQ(execmem_get_stats(EXECMEM_RO_AFTER_INIT, &before), 0);
  EXPECT_EQ(execmem_free(p), 0);
  ASSERT_EQ(execmem_get_stats(EXECMEM_RO_AFTER_INIT, &after), 0);
  EXPECT_EQ(after.allocations_live + 1, before.allocations_live);
  EXPECT_EQ(execmem_free(p), EINVAL);  // double free still detected
  EXPECT_EQ(execmem_free(q), 0);
}

TEST(ExecmemProtect, NoMappingIsEverWritableAndExecutable) {
  std::vector<void*> blocks;
  for (int i = 0; i < 300; ++i) {
    void* p = execmem_alloc(static_cast<execmem_type>(i % 4), 50 + static_cast<size_t>(i) * 7);
    ASSERT_NE(p, nullptr);
    blocks.push_back(p);
  }
  EXPECT_TRUE(wx_mappings().empty());
  for (void* p : blocks) EXPECT_EQ(execmem_free(p), 0);
  EXPECT_TRUE(wx_mappings().empty());
}

}  // namespace
