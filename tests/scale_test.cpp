// Scale (issue 4): one pool holds 1,000,000 live 32-byte allocations and protects them with
// a handful of kernel mappings (libsodium's sodium_malloc needs several mappings per
// allocation and fails after ~16k live ones here, at vm.max_map_count: bench/scale_compare).
// Every allocation keeps its contents, a sample of them faults on write, the invariants
// hold, and destroy gives every mapping back.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "pool/lock.hpp"
#include "pool/pool.hpp"
#include "hardening_support.hpp"
#include "support/probe.hpp"

namespace {

constexpr std::size_t kCount = 1000000;
constexpr std::size_t kSize = 32;

TEST(Scale, MillionAllocationsProtectedWithAHandfulOfMappings) {
  // The per-operation invariant check of debug builds costs O(pool) per call; it runs once
  // at the end instead.
  pmalloc::internal::set_debug_checks(false);
  std::vector<std::uint64_t*> objects(kCount);  // before counting: malloc maps it
  hardening_test::warm_up_writer();
  const std::size_t maps_before = pmalloc_test::count_mappings();
  pmalloc_pool* pool = pmalloc_create_pool("million", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  for (std::size_t i = 0; i < kCount; ++i) {
    auto* p = static_cast<std::uint64_t*>(pmalloc(pool, kSize));
    ASSERT_NE(p, nullptr) << "allocation " << i << ": " << pmalloc_last_error();
    p[0] = i;
    p[1] = ~i;
    p[2] = i * 0x9e3779b97f4a7c15ULL;
    p[3] = 42;
    objects[i] = p;
  }
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  const std::size_t maps_protected = pmalloc_test::count_mappings();
  const std::vector<hardening_test::Range> ranges = hardening_test::region_ranges(pool);
  const std::size_t own = hardening_test::mappings_within(ranges);
  std::printf("1,000,000 protected allocations: %zu kernel mappings for %zu regions (process: %zu added)\n", own,
              ranges.size(), maps_protected - maps_before);
  EXPECT_LE(own, 16u) << "mappings of the pool's own reservations";
  if (!hardening_test::kSanitized) {  // sanitizers map memory of their own meanwhile
    EXPECT_LE(maps_protected - maps_before, 16u)
        << "mappings before " << maps_before << ", after protecting a million objects " << maps_protected;
  }

  struct pmalloc_stats s {};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.allocations_live, kCount);
  EXPECT_EQ(s.bytes_live, kCount * kSize);
  EXPECT_EQ(s.is_protected, 1);
  EXPECT_LE(s.bytes_committed, kCount * kSize + (std::size_t{4} << 20)) << "packing: no per-object overhead";
  for (std::size_t i = 0; i < kCount; ++i) {
    const std::uint64_t* p = objects[i];
    ASSERT_TRUE(p[0] == i && p[1] == ~i && p[2] == i * 0x9e3779b97f4a7c15ULL && p[3] == 42) << "object " << i;
  }
  std::mt19937_64 rng(3);
  std::vector<volatile unsigned char*> sample;
  for (int k = 0; k < 200; ++k) sample.push_back(reinterpret_cast<unsigned char*>(objects[rng() % kCount]) + rng() % kSize);
  EXPECT_EQ(pmalloc_test::count_faulting_writes(sample), static_cast<long>(sample.size()));
  for (int k = 0; k < 1000; ++k) {
    const std::size_t i = rng() % kCount;
    ASSERT_EQ(is_pmalloc_object(objects[i], kSize), PMALLOC_OBJECT_OK);
    ASSERT_EQ(is_pmalloc_object(objects[i], kSize + 1), PMALLOC_OBJECT_BAD);
  }
  {
    pmalloc::internal::PoolGuard guard(pmalloc::internal::from_handle(pool));
    EXPECT_TRUE(pmalloc::internal::pool_check(pmalloc::internal::from_handle(pool)));
  }
  pmalloc_destroy_pool(pool);
  EXPECT_EQ(hardening_test::mappings_within(ranges, nullptr, /*skip_foreign=*/true), 0u);
  if (!hardening_test::kSanitized) {
    EXPECT_EQ(pmalloc_test::count_mappings(), maps_before);
  }
  pmalloc::internal::set_debug_checks(true);
}

}  // namespace
