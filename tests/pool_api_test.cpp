// API tests of the core pool functions (include/pmalloc/pmalloc.h) and their error paths.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "support/small_regions.hpp"

namespace {

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override { pool = pmalloc_create_pool("api-test", PMALLOC_RO); ASSERT_NE(pool, nullptr); }
  void TearDown() override { pmalloc_destroy_pool(pool); }
  pmalloc_stats stats() {
    pmalloc_stats s{};
    EXPECT_EQ(pmalloc_pool_stats(pool, &s), 0);
    return s;
  }
  pmalloc_pool* pool = nullptr;
};

}  // namespace

TEST(PoolCreate, UnknownFlagsAreRefused) {
  errno = 0;
  EXPECT_EQ(pmalloc_create_pool("bad", 0x100u), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::strlen(pmalloc_last_error()), 0u);
}

TEST(PoolCreate, EveryKnownFlagCombinationWorks) {
  for (unsigned f = 0; f < 16; ++f) {
    pmalloc_pool* p = pmalloc_create_pool("flags", f);
    ASSERT_NE(p, nullptr) << f;
    ASSERT_NE(pmalloc(p, 10), nullptr);
    EXPECT_EQ(pmalloc_protect_pool(p), 0) << f << ": " << pmalloc_last_error();
    pmalloc_destroy_pool(p);
  }
}

TEST(PoolCreate, NamesAreKeptAndLongNamesRefused) {
  pmalloc_pool* p = pmalloc_create_pool(nullptr, 0);
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(pmalloc_pool_name(p), "");
  pmalloc_destroy_pool(p);
  std::string name(PMALLOC_NAME_MAX, 'n');
  p = pmalloc_create_pool(name.c_str(), 0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pmalloc_pool_name(p), name);
  pmalloc_destroy_pool(p);
  name += 'x';
  errno = 0;
  EXPECT_EQ(pmalloc_create_pool(name.c_str(), 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

TEST(PoolCreate, DestroyNullIsANoOp) { pmalloc_destroy_pool(nullptr); }

TEST_F(PoolTest, ZeroSizeIsEinval) {
  errno = 0;
  EXPECT_EQ(pmalloc(pool, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(pzalloc(pool, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pmalloc_prealloc(pool, 0), EINVAL);
}

TEST_F(PoolTest, HugeSizesAreEnomem) {
  for (size_t size : {SIZE_MAX, SIZE_MAX / 2, size_t{1} << 48}) {
    errno = 0;
    EXPECT_EQ(pmalloc(pool, size), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
  EXPECT_EQ(pmalloc_prealloc(pool, SIZE_MAX), ENOMEM);
  EXPECT_EQ(stats().allocations_live, 0u);
}

TEST_F(PoolTest, PcallocChecksOverflowAndZeroes) {
  errno = 0;
  EXPECT_EQ(pcalloc(pool, SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(pcalloc(pool, 0, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  // Dirty some memory, free it, and get it back through pcalloc: it must be zeroed.
  auto* dirty = static_cast<unsigned char*>(pmalloc(pool, 256));
  std::memset(dirty, 0xFF, 256);
  auto* keep = pmalloc(pool, 16);
  ASSERT_EQ(pfree(pool, dirty), 0);
  auto* z = static_cast<unsigned char*>(pcalloc(pool, 32, 8));
  ASSERT_EQ(z, dirty);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(z[i], 0);
  (void)keep;
}

TEST_F(PoolTest, AlignmentMustBeAPowerOfTwoUpToAPage) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t bad : {size_t{0}, size_t{3}, size_t{24}, page * 2, page + 1}) {
    errno = 0;
    EXPECT_EQ(pmalloc_aligned(pool, 8, bad), nullptr) << bad;
    EXPECT_EQ(errno, EINVAL);
  }
  for (size_t align = 1; align <= page; align *= 2) {
    void* p = pmalloc_aligned(pool, 24, align);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
  }
}

TEST_F(PoolTest, DefaultAlignmentIsAtLeast16AndAllocationsDoNotOverlap) {
  std::vector<std::pair<uintptr_t, size_t>> spans;
  for (size_t size = 1; size < 300; size += 7) {
    auto* p = static_cast<unsigned char*>(pmalloc(pool, size));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    std::memset(p, static_cast<int>(size), size);
    spans.emplace_back(reinterpret_cast<uintptr_t>(p), size);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) EXPECT_LE(spans[i - 1].first + spans[i - 1].second, spans[i].first);
  for (auto [a, size] : spans)
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(reinterpret_cast<unsigned char*>(a)[i], static_cast<unsigned char>(size));
}

TEST_F(PoolTest, ObjectsArePackedWithoutHeaders) {
  auto* a = static_cast<char*>(pmalloc(pool, 32));
  auto* b = static_cast<char*>(pmalloc(pool, 32));
  auto* c = static_cast<char*>(pmalloc(pool, 1));
  auto* d = static_cast<char*>(pmalloc(pool, 1));
  EXPECT_EQ(b - a, 32);
  EXPECT_EQ(c - b, 32);
  EXPECT_EQ(d - c, 16);
}

TEST_F(PoolTest, StatsTrackRequestedSizes) {
  void* a = pmalloc(pool, 10);
  void* b = pmalloc(pool, 100);
  char* s = pstrdup(pool, "hello");
  pmalloc_stats st = stats();
  EXPECT_EQ(st.bytes_live, 116u);
  EXPECT_EQ(st.allocations_live, 3u);
  EXPECT_EQ(st.regions, 1u);
  EXPECT_GE(st.bytes_committed, 4096u);
  EXPECT_GT(st.bytes_reserved, st.bytes_committed);
  EXPECT_EQ(st.bytes_protected, 0u);
  EXPECT_EQ(st.sealed, 0);
  EXPECT_EQ(pfree(pool, b), 0);
  st = stats();
  EXPECT_EQ(st.bytes_live, 16u);
  EXPECT_EQ(st.allocations_live, 2u);
  EXPECT_EQ(pfree(pool, a), 0);
  EXPECT_EQ(pfree(pool, s), 0);
  EXPECT_EQ(stats().bytes_live, 0u);
  EXPECT_EQ(stats().allocations_live, 0u);
}

TEST_F(PoolTest, StatsRefuseNullOutput) { EXPECT_EQ(pmalloc_pool_stats(pool, nullptr), EINVAL); }

TEST_F(PoolTest, PstrdupCopiesAndRefusesNull) {
  const char* text = "protect me";
  char* s = pstrdup(pool, text);
  ASSERT_NE(s, nullptr);
  EXPECT_NE(s, text);
  EXPECT_STREQ(s, text);
  errno = 0;
  EXPECT_EQ(pstrdup(pool, nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(pstrdup(pool, ""), nullptr);
}

TEST_F(PoolTest, PfreeErrorPaths) {
  char* a = static_cast<char*>(pmalloc(pool, 64));
  ASSERT_NE(a, nullptr);
  int stack_var = 0;
  pmalloc_pool* other = pmalloc_create_pool("other", 0);
  void* foreign = pmalloc(other, 64);
  void* heap = malloc(16);

  EXPECT_EQ(pfree(pool, nullptr), EINVAL);
  EXPECT_EQ(pfree(pool, a + 16), EINVAL);        // interior
  EXPECT_EQ(pfree(pool, a + 1), EINVAL);         // unaligned interior
  EXPECT_EQ(pfree(pool, &stack_var), EINVAL);    // stack
  EXPECT_EQ(pfree(pool, heap), EINVAL);          // malloc heap
  EXPECT_EQ(pfree(pool, foreign), EINVAL);       // wrong pool
  EXPECT_EQ(pfree(pool, a + 4096), EINVAL);      // free space
  EXPECT_EQ(pfree(nullptr, a), EINVAL);          // no pool
  EXPECT_EQ(stats().allocations_live, 1u);       // nothing changed
  EXPECT_EQ(pfree(pool, a), 0);
  EXPECT_EQ(pfree(pool, a), EINVAL);             // double free
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pfree(other, foreign), 0);
  free(heap);
  pmalloc_destroy_pool(other);
}

TEST_F(PoolTest, MemoryFreedBeforeProtectIsReused) {
  std::vector<void*> first;
  for (int i = 0; i < 100; ++i) first.push_back(pmalloc(pool, 48));
  void* keep = pmalloc(pool, 16);
  const pmalloc_stats before = stats();
  for (void* p : first) ASSERT_EQ(pfree(pool, p), 0);
  std::set<void*> old(first.begin(), first.end());
  for (int i = 0; i < 100; ++i) {
    void* p = pmalloc(pool, 48);
    EXPECT_TRUE(old.count(p)) << "allocation " << i << " did not reuse freed memory";
  }
  EXPECT_EQ(stats().bytes_committed, before.bytes_committed);
  (void)keep;
}

TEST_F(PoolTest, RollbackOfTopAllocationsRewindsTheCursor) {
  void* base = pmalloc(pool, 32);
  std::vector<void*> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back(pmalloc(pool, 40));
  for (auto it = batch.rbegin(); it != batch.rend(); ++it) ASSERT_EQ(pfree(pool, *it), 0);
  // Freed in any order, the next allocation lands right after `base` again.
  EXPECT_EQ(pmalloc(pool, 40), static_cast<char*>(base) + 32);
}

// bytes_metadata counts the metadata pages that describe committed data, not the whole
// metadata span a region reserves for the data it may hold later (3 MiB for the first).
TEST_F(PoolTest, MetadataBytesFollowCommittedData) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ASSERT_NE(pmalloc(pool, 100), nullptr);
  const pmalloc_stats small = stats();
  EXPECT_GT(small.bytes_metadata, 0u);
  EXPECT_LE(small.bytes_metadata, 4 * page) << "header, bitmaps and nibbles of one commit step";
  for (int i = 0; i < 64; ++i) ASSERT_NE(pmalloc(pool, 16384), nullptr);  // 1 MiB more
  const pmalloc_stats grown = stats();
  EXPECT_GT(grown.bytes_metadata, small.bytes_metadata);
  // 6 bits per 16-byte granule, rounded up to pages per array, plus the header page.
  EXPECT_LE(grown.bytes_metadata, grown.bytes_committed * 6 / 8 / 16 + 4 * page);
  EXPECT_GT(grown.bytes_reserved, grown.bytes_committed + grown.bytes_metadata);
}

TEST_F(PoolTest, PreallocCommitsWithoutAllocating) {
  EXPECT_EQ(pmalloc_prealloc(pool, 200000), 0);
  pmalloc_stats st = stats();
  EXPECT_GE(st.bytes_committed, 200000u);
  EXPECT_EQ(st.allocations_live, 0u);
  const size_t regions = st.regions;
  for (int i = 0; i < 3000; ++i) ASSERT_NE(pmalloc(pool, 64), nullptr);
  EXPECT_EQ(stats().regions, regions);
  EXPECT_EQ(stats().bytes_committed, st.bytes_committed);
}

// Larger than the first region's 64 MiB: a region of its own (address space; only the
// two pages written become resident).
TEST_F(PoolTest, LargeAllocationsGetTheirOwnRegion) {
  constexpr std::size_t kBig = std::size_t{100} << 20;
  auto* big = static_cast<unsigned char*>(pmalloc(pool, kBig));
  ASSERT_NE(big, nullptr);
  big[0] = 1;
  big[kBig - 1] = 2;
  EXPECT_GE(stats().regions, 2u);
  EXPECT_EQ(pfree(pool, big), 0);
  EXPECT_EQ(stats().bytes_live, 0u);
}

TEST(PoolRegions, ManyRegionsKeepWorking) {
  const test_support::SmallFirstRegion small;  // 1 MiB, 4 MiB ...: 4 MB of data spans two
  pmalloc_pool* pool = pmalloc_create_pool("regions", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  auto stats = [pool] {
    pmalloc_stats s{};
    EXPECT_EQ(pmalloc_pool_stats(pool, &s), 0);
    return s;
  };
  std::vector<unsigned char*> ptrs;
  for (int i = 0; i < 20000; ++i) {
    auto* p = static_cast<unsigned char*>(pmalloc(pool, 200));
    ASSERT_NE(p, nullptr);
    std::memset(p, i & 0xFF, 200);
    ptrs.push_back(p);
  }
  EXPECT_GE(stats().regions, 2u);
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(ptrs[i][199], i & 0xFF);
  EXPECT_EQ(stats().bytes_live, 20000u * 200u);
  pmalloc_destroy_pool(pool);
}

TEST(PoolLifecycle, UseAfterDestroyIsRefused) {
  pmalloc_pool* p = pmalloc_create_pool("gone", 0);
  ASSERT_NE(p, nullptr);
  pmalloc_destroy_pool(p);
  errno = 0;
  EXPECT_EQ(pmalloc(p, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pmalloc_protect_pool(p), EINVAL);
  pmalloc_stats s{};
  EXPECT_EQ(pmalloc_pool_stats(p, &s), EINVAL);
  pmalloc_destroy_pool(p);  // a second destroy is harmless
}

TEST(PoolLifecycle, ForeignPointersAreNotPools) {
  int x = 0;
  errno = 0;
  EXPECT_EQ(pmalloc(reinterpret_cast<pmalloc_pool*>(&x), 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  pmalloc_pool* p = pmalloc_create_pool("interior", 0);
  void* obj = pmalloc(p, 64);
  EXPECT_EQ(pmalloc(reinterpret_cast<pmalloc_pool*>(obj), 8), nullptr);
  EXPECT_EQ(pmalloc_protect_pool(reinterpret_cast<pmalloc_pool*>(obj)), EINVAL);
  pmalloc_destroy_pool(p);
}
