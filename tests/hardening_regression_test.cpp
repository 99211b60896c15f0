// Regression tests for core bugs the hardening work found (the fault sweep and the scale
// test found them; these pin each one down in isolation).
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <cstdint>
#include <vector>

#include "pool/lock.hpp"
#include "pool/pool.hpp"

namespace {

using pmalloc::internal::from_handle;

bool consistent(pmalloc_pool* pool) {
  pmalloc::internal::PoolGuard guard(from_handle(pool));
  return pmalloc::internal::pool_check(from_handle(pool));
}

// PMALLOC_AUTO protects whole pages below the newest allocation, so an older allocation can
// straddle the protected boundary. Freeing it must count its unprotected tail as free
// (reusable) space; it used to leave free_below_cursor short (invariant checker fatal).
TEST(HardeningRegression, AutoProtectFreeOfAnAllocationStraddlingTheBoundary) {
  pmalloc_pool* pool = pmalloc_create_pool("straddle", PMALLOC_AUTO);
  ASSERT_NE(pool, nullptr);
  auto* a = static_cast<unsigned char*>(pmalloc(pool, 4000));  // granules 0..249 of page 0
  auto* b = static_cast<unsigned char*>(pmalloc(pool, 200));   // 4000..4200: crosses into page 1
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(b, a + 4000);
  auto* c = static_cast<unsigned char*>(pmalloc(pool, 64));    // begins on page 1: page 0 is protected
  ASSERT_NE(c, nullptr);
  struct pmalloc_stats s {};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  ASSERT_EQ(s.bytes_protected, 4096u);
  ASSERT_EQ(pfree(pool, b), 0);
  EXPECT_TRUE(consistent(pool));
  // The tail of b above the boundary is reused; its head below it is not.
  auto* d = static_cast<unsigned char*>(pmalloc(pool, 96));
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d, a + 4096);
  d[0] = 1;  // writable
  EXPECT_TRUE(consistent(pool));
  pmalloc_destroy_pool(pool);
}

// pfree and is_pmalloc_object found an allocation's end by scanning the used bitmap to the
// region's cursor: O(region) per call, O(n^2) to free a packed pool. A packed pool of
// 200,000 allocations is freed front to back here (seconds before the fix, milliseconds
// now; the test has no time limit of its own, ctest's timeout is the backstop).
TEST(HardeningRegression, FreeingAPackedPoolIsLinear) {
  pmalloc::internal::set_debug_checks(false);  // O(pool) per operation; checked once below
  pmalloc_pool* pool = pmalloc_create_pool("packed", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  std::vector<void*> v(200000);
  for (void*& p : v) ASSERT_NE(p = pmalloc(pool, 32), nullptr);
  for (std::size_t i = 0; i < v.size(); i += 1000) EXPECT_EQ(is_pmalloc_object(v[i], 32), PMALLOC_OBJECT_OK);
  for (void* p : v) ASSERT_EQ(pfree(pool, p), 0);
  pmalloc::internal::set_debug_checks(true);
  EXPECT_TRUE(consistent(pool));
  struct pmalloc_stats s {};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.allocations_live, 0u);
  pmalloc_destroy_pool(pool);
}

}  // namespace
