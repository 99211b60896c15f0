// Memory given back by a rollback is reused, whatever region it is in.
//
// A parser that loads a large input into a pool, rejects it and frees everything (the
// SELinux policy-reload case, seeds/002), then loads the next input, must find the pool's
// memory again instead of growing new regions: otherwise every rejected input leaves its
// regions behind as dead weight, and the reload pays fresh page faults. Found by the
// benchmark report (bench/report, warm allocation), which saw a second pass of
// allocations grow an extra region after the first pass spanning three regions had been
// freed.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <vector>

#include "support/small_regions.hpp"

namespace {

// Every pool of this file starts with a 1 MiB region, so that three regions take 21 MiB.
const test_support::SmallFirstRegion small_regions;

pmalloc_stats stats_of(pmalloc_pool* pool) {
  pmalloc_stats s{};
  EXPECT_EQ(pmalloc_pool_stats(pool, &s), 0);
  return s;
}

constexpr std::size_t kObject = 1024;

// Allocates objects until the pool has `regions` regions, then `more` objects.
std::vector<void*> fill(pmalloc_pool* pool, std::size_t regions, std::size_t more) {
  std::vector<void*> objects;
  while (stats_of(pool).regions < regions) {
    for (int i = 0; i < 16; ++i) {
      void* p = pmalloc(pool, kObject);
      EXPECT_NE(p, nullptr);
      if (p == nullptr) return objects;
      objects.push_back(p);
    }
  }
  for (std::size_t i = 0; i < more; ++i) objects.push_back(pmalloc(pool, kObject));
  return objects;
}

class PoolReuse : public ::testing::TestWithParam<bool> {};  // true: free in reverse order

TEST_P(PoolReuse, ReloadAfterRollbackAddsNoRegion) {
  pmalloc_pool* pool = pmalloc_create_pool("reuse", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  // Regions grow geometrically (1, 4, 16 MiB of data...). Fill part of the third region,
  // so that the reload spans all three again.
  std::vector<void*> first = fill(pool, 3, 3500);
  const pmalloc_stats loaded = stats_of(pool);
  ASSERT_EQ(loaded.regions, 3u);
  ASSERT_GT(first.size() * kObject, 5u << 20);

  if (GetParam()) {
    for (std::size_t i = first.size(); i-- > 0;) ASSERT_EQ(pfree(pool, first[i]), 0);
  } else {
    for (void* p : first) ASSERT_EQ(pfree(pool, p), 0);
  }
  EXPECT_EQ(stats_of(pool).allocations_live, 0u);

  // The same load again fits in the memory the rollback gave back.
  std::vector<void*> second;
  for (std::size_t i = 0; i < first.size(); ++i) {
    void* p = pmalloc(pool, kObject);
    ASSERT_NE(p, nullptr);
    second.push_back(p);
  }
  const pmalloc_stats reloaded = stats_of(pool);
  EXPECT_EQ(reloaded.regions, loaded.regions);
  EXPECT_EQ(reloaded.bytes_reserved, loaded.bytes_reserved);
  EXPECT_EQ(reloaded.allocations_live, first.size());
  EXPECT_EQ(pmalloc_protect_pool(pool), 0);
  pmalloc_destroy_pool(pool);
}

// A full rollback sends allocation back to the first region: the reload gets the very
// same addresses in the same order (pages already resident), and commits nothing new.
TEST(PoolRollback, ReloadReusesTheSameAddressesInOrder) {
  pmalloc_pool* pool = pmalloc_create_pool("same", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  std::vector<void*> first = fill(pool, 3, 100);
  const pmalloc_stats loaded = stats_of(pool);
  for (std::size_t i = first.size(); i-- > 0;) ASSERT_EQ(pfree(pool, first[i]), 0);
  for (std::size_t i = 0; i < first.size(); ++i) {
    ASSERT_EQ(pmalloc(pool, kObject), first[i]) << "allocation " << i << " of " << first.size();
  }
  const pmalloc_stats reloaded = stats_of(pool);
  EXPECT_EQ(reloaded.bytes_committed, loaded.bytes_committed);
  EXPECT_EQ(reloaded.regions, loaded.regions);
  pmalloc_destroy_pool(pool);
}

// Sizes whose granule runs end inside a bitmap word, exactly at its end, or cross into
// the next one (16 granules of 16 bytes per 256 bytes; 64 granules per word), freed in
// every order pfree's in-place path and its general path divide between them. Each
// order must leave the accounting exact and give the same memory back: after a reverse
// rollback the same addresses, after any other order the same number of allocations
// without growing. (Debug builds also run the invariant checker after each call.)
TEST(PoolRollback, RunsAtBitmapWordEdgesFreeExactly) {
  const std::size_t sizes[] = {48, 1, 1008, 1024, 1040, 64, 33, 2048, 16, 100};
  for (int order = 0; order < 3; ++order) {  // reverse, forward, odd ones first
    pmalloc_pool* pool = pmalloc_create_pool("edges", PMALLOC_RO);
    ASSERT_NE(pool, nullptr);
    std::vector<void*> objects;
    std::size_t bytes = 0;
    for (int round = 0; round < 40; ++round) {
      for (std::size_t size : sizes) {
        objects.push_back(pmalloc(pool, size));
        ASSERT_NE(objects.back(), nullptr);
        bytes += size;
      }
    }
    const pmalloc_stats loaded = stats_of(pool);
    ASSERT_EQ(loaded.bytes_live, bytes);
    std::vector<std::size_t> turn(objects.size());
    for (std::size_t i = 0; i < turn.size(); ++i) turn[i] = order == 0 ? turn.size() - 1 - i : i;
    if (order == 2) {
      std::stable_partition(turn.begin(), turn.end(), [](std::size_t i) { return i % 2 == 1; });
    }
    std::size_t left = bytes;
    for (std::size_t k = 0; k < turn.size(); ++k) {
      const std::size_t i = turn[k];
      ASSERT_EQ(pfree(pool, objects[i]), 0) << "object " << i << ", order " << order;
      ASSERT_EQ(pfree(pool, objects[i]), EINVAL) << "double free of object " << i;
      left -= sizes[i % std::size(sizes)];
      ASSERT_EQ(stats_of(pool).bytes_live, left) << "after freeing object " << i << ", order " << order;
    }
    EXPECT_EQ(stats_of(pool).allocations_live, 0u);
    for (std::size_t i = 0; i < objects.size(); ++i) {
      void* p = pmalloc(pool, sizes[i % std::size(sizes)]);
      ASSERT_NE(p, nullptr);
      if (order == 0) {
        EXPECT_EQ(p, objects[i]) << "allocation " << i;
      }
    }
    EXPECT_EQ(stats_of(pool).bytes_live, bytes);
    EXPECT_EQ(stats_of(pool).bytes_committed, loaded.bytes_committed) << "order " << order;
    pmalloc_destroy_pool(pool);
  }
}

INSTANTIATE_TEST_SUITE_P(Order, PoolReuse, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "reverse" : "forward"; });

TEST(PoolReuseProtected, ProtectedRegionsAreNotReused) {
  // After protect, freed memory is only unaccounted: a new allocation must come from
  // fresh (writable) pages, never from a protected region, even one with free space.
  pmalloc_pool* pool = pmalloc_create_pool("reuse-protected", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  std::vector<void*> first = fill(pool, 2, 100);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  for (void* p : first) ASSERT_EQ(pfree(pool, p), 0);
  void* fresh = pmalloc(pool, kObject);
  ASSERT_NE(fresh, nullptr);
  for (void* p : first) EXPECT_NE(p, fresh);
  static_cast<volatile char*>(fresh)[0] = 1;  // writable
  pmalloc_destroy_pool(pool);
}

}  // namespace
