// Sealed object caches: proof that objects are never writable through their addresses,
// from the first moment (even while `init` runs) to the last, that the cache's metadata is
// read-only too, that sealing really seals, and that destroy releases the memory.
// Writes are tried in forked children (tests/support/probe.hpp): a missing protection
// shows up as a failed expectation, never as corrupted memory here.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "cache/cache_test_support.hpp"
#include "support/probe.hpp"

using namespace cache_test;
using pmalloc_test::count_faulting_writes;

namespace {

class CacheProtect : public CacheTest {};

std::vector<volatile unsigned char*> every_byte(const void* p, std::size_t n) {
  std::vector<volatile unsigned char*> out;
  auto* b = const_cast<unsigned char*>(static_cast<const unsigned char*>(p));
  for (std::size_t i = 0; i < n; ++i) out.push_back(b + i);
  return out;
}

struct FirstMoment {
  bool write_faulted = false;
  std::string perms;
};

int probing_init(void* staging, const void* final_address, void* ctx) {
  auto* m = static_cast<FirstMoment*>(ctx);
  // The final address is already read-only while init runs: a write there kills.
  m->write_faulted = write_kills_child(final_address);
  m->perms = pmalloc_test::mapping_perms(final_address);
  std::memset(staging, 0x42, sizeof(Record));
  return 0;
}

TEST_F(CacheProtect, FinalAddressIsReadOnlyWhileInitRuns) {
  for (unsigned flags : {0u, unsigned{PMALLOC_SEAL}}) {
    pmalloc_cache* c = pmalloc_cache_create("first-moment", sizeof(Record), 0, flags);
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 3; ++i) {  // a fresh slab, then a slab in use
      FirstMoment m;
      const void* p = pmalloc_cache_alloc_init(c, probing_init, &m);
      ASSERT_NE(p, nullptr) << pmalloc_last_error();
      EXPECT_TRUE(m.write_faulted);
      EXPECT_EQ(m.perms, "r--p");
      EXPECT_EQ(static_cast<const unsigned char*>(p)[0], 0x42);
    }
    pmalloc_cache_destroy(c);
  }
}

TEST_F(CacheProtect, EveryByteOfEveryKindOfObjectFaultsAndStaysUnchanged) {
  for (unsigned flags : {0u, unsigned{PMALLOC_SEAL}, unsigned{PMALLOC_NO_GUARD}}) {
    pmalloc_cache* c = pmalloc_cache_create("faults", sizeof(Record), 0, flags);
    ASSERT_NE(c, nullptr);
    std::vector<const Record*> r;
    for (int i = 0; i < 200; ++i) r.push_back(make_record(c, i));
    std::vector<const void*> batch(100);
    auto init = [](void* staging, const void*, std::size_t i, void*) -> int {
      std::memset(staging, static_cast<int>(i), sizeof(Record));
      return 0;
    };
    ASSERT_EQ(pmalloc_cache_alloc_init_many(c, batch.size(), batch.data(), init, nullptr), 0);
    // First and last of a slab (85 per page), one in the middle, one from the batch.
    for (const void* p : {static_cast<const void*>(r[0]), static_cast<const void*>(r[84]),
                          static_cast<const void*>(r[85]), static_cast<const void*>(r[150]), batch[57]}) {
      std::vector<unsigned char> before(static_cast<const unsigned char*>(p),
                                        static_cast<const unsigned char*>(p) + sizeof(Record));
      EXPECT_EQ(count_faulting_writes(every_byte(p, sizeof(Record))), static_cast<long>(sizeof(Record)));
      EXPECT_EQ(std::memcmp(before.data(), p, sizeof(Record)), 0);
    }
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(record_ok(r[i], i));
    pmalloc_cache_destroy(c);
  }
}

TEST_F(CacheProtect, FreedSlotsHeadersAndMetadataAreReadOnly) {
  pmalloc_cache* c = pmalloc_cache_create("meta", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  const Record* a = make_record(c, 1);
  const Record* b = make_record(c, 2);
  ASSERT_EQ(pmalloc_cache_free(c, b), 0);
  const auto* slab = reinterpret_cast<const unsigned char*>(a) - 16;  // the slab header
  EXPECT_TRUE(write_kills_child(b));               // a freed slot
  EXPECT_TRUE(write_kills_child(slab));     // the live bits
  EXPECT_TRUE(write_kills_child(c));                                    // the descriptor
  EXPECT_TRUE(write_kills_child(reinterpret_cast<char*>(c) + 64));
  EXPECT_EQ(pmalloc_test::mapping_perms(c), "r--p");
  EXPECT_TRUE(record_ok(a, 1));
  EXPECT_EQ(stats_of(c).allocations_live, 1u);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheProtect, NoMappingOfACacheIsEverWritable) {
  pmalloc_cache* c = pmalloc_cache_create("perms", 64, 0, 0);
  ASSERT_NE(c, nullptr);
  std::vector<const void*> objs(3000);
  auto init = [](void* staging, const void*, std::size_t i, void*) -> int {
    std::memcpy(staging, &i, sizeof i);
    return 0;
  };
  ASSERT_EQ(pmalloc_cache_alloc_init_many(c, objs.size(), objs.data(), init, nullptr), 0);
  for (std::size_t i = 0; i < objs.size(); i += 2) ASSERT_EQ(pmalloc_cache_free(c, objs[i]), 0);
  for (int i = 0; i < 100; ++i) {
    std::pair<const void*, std::size_t> src{&i, sizeof i};
    ASSERT_NE(pmalloc_cache_alloc_init(c, copy_init, &src), nullptr);
  }
  for (auto [b, e] : reservations(c)) {
    for (const std::string& p : perms_in(b, e)) {
      EXPECT_EQ(p.find('w'), std::string::npos) << p;
      EXPECT_EQ(p.find('x'), std::string::npos) << p;
    }
  }
  pmalloc_cache_destroy(c);
}

TEST_F(CacheProtect, SealedPagesCannotBeUnprotectedOrUnmapped) {
  if (pmalloc_seal_supported() == 0) GTEST_SKIP() << "this kernel has no mseal";
  pmalloc_cache* c = pmalloc_cache_create("sealed", sizeof(Record), 0, PMALLOC_SEAL);
  ASSERT_NE(c, nullptr);
  const Record* r = make_record(c, 1);
  ASSERT_NE(r, nullptr);
  if (stats_of(c).sealed == 0) {
    // Documented: where no writer can change sealed pages (the mprotect back end, or no
    // writable /proc/self/mem), caches do not seal.
    const std::string writer = pmalloc::internal::wr::backend_name(pmalloc::internal::wr::backend());
    EXPECT_TRUE(writer == "mprotect" || !pmalloc::internal::wr::writes_sealed_pages()) << writer;
    pmalloc_cache_destroy(c);
    GTEST_SKIP() << "no writer here can change sealed pages ('" << writer
                 << "', /proc/self/mem writes refused or not used), so cache pages are not sealed";
  }
  void* page = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(r) & ~std::uintptr_t{4095});
  errno = 0;
  EXPECT_EQ(mprotect(page, 4096, PROT_READ | PROT_WRITE), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(munmap(page, 4096), -1);
  EXPECT_EQ(madvise(page, 4096, MADV_DONTNEED), -1);
  void* meta = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(c) & ~std::uintptr_t{4095});
  EXPECT_EQ(mprotect(meta, 4096, PROT_READ | PROT_WRITE), -1);
  EXPECT_TRUE(record_ok(r, 1));
  // Objects still come and go: freed slots are wiped and reused, pages are kept.
  const std::size_t committed = stats_of(c).bytes_committed;
  ASSERT_EQ(pmalloc_cache_free(c, r), 0);
  EXPECT_EQ(static_cast<const unsigned char*>(static_cast<const void*>(r))[8], 0);
  EXPECT_EQ(stats_of(c).bytes_committed, committed);
  EXPECT_EQ(make_record(c, 2), r);
  EXPECT_TRUE(record_ok(r, 2));
  pmalloc_cache_destroy(c);
}

TEST_F(CacheProtect, DestroyReleasesEverything) {
  for (unsigned flags : {0u, unsigned{PMALLOC_NO_GUARD}}) {
    pmalloc_cache* c = pmalloc_cache_create("destroy", 64, 0, flags);
    ASSERT_NE(c, nullptr);
    std::vector<const void*> objs(20000);
    auto init = [](void* staging, const void*, std::size_t i, void*) -> int {
      std::memcpy(staging, &i, sizeof i);
      return 0;
    };
    ASSERT_EQ(pmalloc_cache_alloc_init_many(c, objs.size(), objs.data(), init, nullptr), 0);
    const auto ranges = reservations(c);
    ASSERT_GE(ranges.size(), 2u);
    EXPECT_GT(resident_bytes(c), 20000u * 64);
    pmalloc_cache_destroy(c);
    for (auto [b, e] : ranges) EXPECT_FALSE(any_mapped(b, e));
  }
}

TEST_F(CacheProtect, DestroyOfASealedCacheWipesWhatMustStay) {
  pmalloc_cache* c = pmalloc_cache_create("sealed-destroy", sizeof(Record), 0, PMALLOC_SEAL);
  ASSERT_NE(c, nullptr);
  if (stats_of(c).sealed == 0) {
    pmalloc_cache_destroy(c);
    GTEST_SKIP() << "sealing unavailable here (kernel or back end)";
  }
  std::vector<const Record*> r;
  for (int i = 0; i < 300; ++i) r.push_back(make_record(c, i));
  const auto ranges = reservations(c);
  pmalloc_cache_destroy(c);
  // The sealed pages stay mapped (the kernel refuses to unmap them), but hold nothing.
  for (const Record* p : r) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < sizeof(Record); ++i) ASSERT_EQ(b[i], 0);
  }
  EXPECT_TRUE(write_kills_child(r[0]));
  // The guard pages and the unmapped tail of each reservation are gone.
  for (auto [b, e] : ranges) EXPECT_FALSE(any_mapped(b, b + 4096));
}

}  // namespace
