// The invariant checker (internal::pool_check) accepts every state the API can produce
// and rejects corrupted metadata.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <random>
#include <vector>

#include "pool/pool.hpp"

using pmalloc::internal::from_handle;
using pmalloc::internal::pool_check;
using pmalloc::internal::Region;

TEST(PoolCheck, HoldsThroughRandomOperations) {
  std::mt19937 rng(3);
  pmalloc_pool* pool = pmalloc_create_pool("check", 0);
  std::vector<void*> live;
  for (int step = 0; step < 4000; ++step) {
    const unsigned op = rng() % 10;
    if (op < 6 || live.empty()) {
      void* p = pmalloc_aligned(pool, 1 + rng() % 500, size_t{16} << (rng() % 4));
      ASSERT_NE(p, nullptr);
      live.push_back(p);
    } else if (op < 9) {
      const size_t i = rng() % live.size();
      ASSERT_EQ(pfree(pool, live[i]), 0);
      live.erase(live.begin() + static_cast<long>(i));
    } else if (step % 500 == 0) {
      ASSERT_EQ(pmalloc_protect_pool(pool), 0);
    }
    ASSERT_TRUE(pool_check(from_handle(pool))) << "step " << step;
  }
  pmalloc_destroy_pool(pool);
}

TEST(PoolCheck, DetectsCorruptedBitmaps) {
  pmalloc_pool* pool = pmalloc_create_pool("corrupt", 0);
  for (int i = 0; i < 10; ++i) ASSERT_NE(pmalloc(pool, 40), nullptr);
  Region* r = from_handle(pool)->first;
  ASSERT_TRUE(pool_check(from_handle(pool)));
  r->start[0] ^= 1u << 1;  // a start bit inside an allocation
  EXPECT_FALSE(pool_check(from_handle(pool)));
  r->start[0] ^= 1u << 1;
  r->used[0] &= ~(1ull << 0);  // a used run without its first granule
  EXPECT_FALSE(pool_check(from_handle(pool)));
  r->used[0] |= 1;
  r->used[r->cursor / 64] |= 1ull << (r->cursor % 64);  // used beyond the cursor
  EXPECT_FALSE(pool_check(from_handle(pool)));
  r->used[r->cursor / 64] &= ~(1ull << (r->cursor % 64));
  r->live_allocations += 1;
  EXPECT_FALSE(pool_check(from_handle(pool)));
  r->live_allocations -= 1;
  EXPECT_TRUE(pool_check(from_handle(pool)));
  pmalloc_destroy_pool(pool);
}
