// Sealed object caches: memory. Objects are packed densely (100,000 objects of 48 bytes
// occupy at most 1.1x their bytes plus one page), empty slabs go back to the OS, and
// millions of create/free cycles keep memory flat. Memory is measured twice: by the
// cache's statistics and, independently, by the kernel (mincore over the reservations).
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cache/cache_test_support.hpp"

using namespace cache_test;

namespace {

class CacheMemory : public CacheTest {};

constexpr std::size_t kPage = 4096;

TEST_F(CacheMemory, HundredThousandObjectsOf48BytesArePackedDensely) {
  pmalloc_cache* c = pmalloc_cache_create("dense", 48, 0, 0);
  ASSERT_NE(c, nullptr);
  constexpr std::size_t kCount = 100000;
  std::vector<const Record*> r(kCount);
  if (!reduced_volume()) {
    for (std::size_t i = 0; i < kCount; ++i) {
      r[i] = make_record(c, i);
      ASSERT_NE(r[i], nullptr) << pmalloc_last_error();
    }
  } else {
    // Same objects, created 100 at a time (see reduced_volume()).
    auto init = [](void* staging, const void* self, std::size_t i, void* base) -> int {
      std::uint64_t seq = *static_cast<std::size_t*>(base) + i;
      return record_init(staging, self, &seq);
    };
    std::vector<const void*> out(100);
    for (std::size_t i = 0; i < kCount; i += 100) {
      ASSERT_EQ(pmalloc_cache_alloc_init_many(c, out.size(), out.data(), init, &i), 0);
      for (std::size_t k = 0; k < out.size(); ++k) r[i + k] = static_cast<const Record*>(out[k]);
    }
  }
  const double object_bytes = kCount * 48.0;
  const double limit = 1.1 * object_bytes + kPage;  // one size class: one partial page
  const pmalloc_stats s = stats_of(c);
  EXPECT_EQ(s.allocations_live, kCount);
  EXPECT_EQ(s.bytes_live, kCount * 48);
  EXPECT_LE(static_cast<double>(s.bytes_committed), limit);
  // What the kernel says is resident in the cache's reservations (data and metadata
  // pages), plus the cache's heap bookkeeping: all of it within the limit too.
  const std::size_t resident = resident_bytes(c);
  EXPECT_LE(static_cast<double>(resident), limit);
  EXPECT_LE(static_cast<double>(resident + (s.bytes_metadata - s.regions * kPage)), limit);
  RecordProperty("bytes_per_object_x1000", static_cast<int>(resident * 1000 / kCount));
  for (std::size_t i = 0; i < kCount; i += 997) ASSERT_TRUE(record_ok(r[i], i));
  pmalloc_cache_destroy(c);
}

TEST_F(CacheMemory, EmptySlabsGoBackToTheOperatingSystem) {
  pmalloc_cache* c = pmalloc_cache_create("return", 48, 0, 0);
  ASSERT_NE(c, nullptr);
  const std::size_t base = resident_bytes(c);  // metadata
  std::vector<const void*> objs(50000);
  auto init = [](void* staging, const void*, std::size_t i, void*) -> int {
    std::memset(staging, static_cast<int>(i % 251) + 1, 48);
    return 0;
  };
  ASSERT_EQ(pmalloc_cache_alloc_init_many(c, objs.size(), objs.data(), init, nullptr), 0);
  EXPECT_GE(resident_bytes(c), base + 50000 * 48);
  // Free all but one object per 10 slabs: the other slabs are returned.
  std::vector<const void*> keep, drop;
  for (std::size_t i = 0; i < objs.size(); ++i) ((i % 850) == 0 ? keep : drop).push_back(objs[i]);
  ASSERT_EQ(pmalloc_cache_free_many(c, drop.data(), drop.size()), 0);
  const pmalloc_stats s = stats_of(c);
  EXPECT_EQ(s.allocations_live, keep.size());
  // At most the slabs holding the survivors, plus one empty slab kept for reuse.
  EXPECT_LE(s.bytes_committed, (keep.size() + 1) * kPage);
  const std::size_t meta = s.regions * kPage;  // one metadata page per segment
  EXPECT_LE(resident_bytes(c), meta + (keep.size() + 1) * kPage);
  for (std::size_t i = 0; i < keep.size(); ++i) {
    EXPECT_EQ(static_cast<const unsigned char*>(keep[i])[47], (i * 850) % 251 + 1);
  }
  // Freeing one by one returns the rest.
  for (const void* p : keep) ASSERT_EQ(pmalloc_cache_free(c, p), 0);
  EXPECT_LE(stats_of(c).bytes_committed, kPage);
  EXPECT_LE(resident_bytes(c), meta + kPage);
  // And the cache is as good as new.
  ASSERT_EQ(pmalloc_cache_alloc_init_many(c, 1000, objs.data(), init, nullptr), 0);
  EXPECT_EQ(stats_of(c).allocations_live, 1000u);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheMemory, AMillionBatchedCreatesAndFreesKeepMemoryFlat) {
  pmalloc_cache* c = pmalloc_cache_create("churn", 48, 0, 0);
  ASSERT_NE(c, nullptr);
  // A standing population, then 1,000,000 objects created and freed in batches.
  std::vector<const void*> standing(5000);
  auto init = [](void* staging, const void* self, std::size_t i, void*) -> int {
    std::memcpy(staging, &self, sizeof self);
    std::memcpy(static_cast<char*>(staging) + 8, &i, sizeof i);
    return 0;
  };
  ASSERT_EQ(pmalloc_cache_alloc_init_many(c, standing.size(), standing.data(), init, nullptr), 0);
  std::vector<const void*> batch(1000);
  auto round = [&] {
    ASSERT_EQ(pmalloc_cache_alloc_init_many(c, batch.size(), batch.data(), init, nullptr), 0);
    ASSERT_EQ(pmalloc_cache_free_many(c, batch.data(), batch.size()), 0);
  };
  for (int i = 0; i < 20; ++i) round();
  const std::size_t resident = resident_bytes(c);
  const pmalloc_stats warm = stats_of(c);
  for (std::size_t i = 0; i < scaled(1000); ++i) {
    round();
    if (HasFatalFailure()) return;
  }
  const pmalloc_stats after = stats_of(c);
  EXPECT_EQ(after.allocations_live, standing.size());
  EXPECT_EQ(after.bytes_committed, warm.bytes_committed);
  EXPECT_EQ(after.bytes_reserved, warm.bytes_reserved);
  EXPECT_EQ(resident_bytes(c), resident);
  for (std::size_t i = 0; i < standing.size(); ++i) {
    const void* self = nullptr;
    std::memcpy(&self, standing[i], sizeof self);
    ASSERT_EQ(self, standing[i]);
  }
  pmalloc_cache_destroy(c);
}

TEST_F(CacheMemory, RandomSingleCreatesAndFreesKeepMemoryFlat) {
  pmalloc_cache* c = pmalloc_cache_create("random-churn", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  std::mt19937_64 rng(42);
  std::vector<std::pair<const Record*, std::uint64_t>> live;
  std::uint64_t seq = 0;
  // Fill to 4000, then random frees and creates around that level.
  while (live.size() < 4000) {
    live.emplace_back(make_record(c, seq), seq);
    ++seq;
  }
  const std::size_t bound = (4000 + 600) / 85 * kPage + 8 * kPage;
  std::size_t peak = 0;
  for (std::size_t step = 0; step < scaled(60000); ++step) {
    const bool create = live.size() < 3500 || (live.size() < 4500 && (rng() & 1) != 0);
    if (create) {
      const Record* r = make_record(c, seq);
      ASSERT_NE(r, nullptr) << pmalloc_last_error();
      live.emplace_back(r, seq++);
    } else {
      const std::size_t k = rng() % live.size();
      ASSERT_TRUE(record_ok(live[k].first, live[k].second));
      ASSERT_EQ(pmalloc_cache_free(c, live[k].first), 0);
      live[k] = live.back();
      live.pop_back();
    }
    if (step % 5000 == 0) {
      const std::size_t committed = stats_of(c).bytes_committed;
      peak = committed > peak ? committed : peak;
    }
  }
  EXPECT_LE(peak, bound);
  EXPECT_LE(stats_of(c).bytes_committed, bound);
  EXPECT_EQ(stats_of(c).allocations_live, live.size());
  for (auto& [r, s] : live) ASSERT_TRUE(record_ok(r, s));
  EXPECT_TRUE(pmalloc::internal::cache_check(desc(c)));
  pmalloc_cache_destroy(c);
}

TEST_F(CacheMemory, AlternatingCreateFreeAtASlabBoundaryDoesNotThrash) {
  // 85 objects fill the first page exactly; the 86th opens a second one. Creating and
  // freeing the 86th over and over keeps that page (one empty slab is kept) instead of
  // returning and refaulting it every time.
  pmalloc_cache* c = pmalloc_cache_create("boundary", 48, 0, 0);
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 85; ++i) ASSERT_NE(make_record(c, i), nullptr);
  const Record* first = make_record(c, 85);
  ASSERT_NE(first, nullptr);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(pmalloc_cache_free(c, first), 0);
    EXPECT_EQ(stats_of(c).bytes_committed, 2 * kPage);
    const Record* again = make_record(c, 86);
    ASSERT_EQ(again, first);
  }
  pmalloc_cache_destroy(c);
}

}  // namespace
