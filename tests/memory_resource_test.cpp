// pmalloc::memory_resource: std::pmr containers built in a pool, protected, and the
// resource's contract (allocation, deallocation before/after protection, equality,
// errors, thread safety). API-only test: include/pmalloc headers.
#include <gtest/gtest.h>
#include <pmalloc/memory_resource.hpp>

#include <algorithm>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cpp_support/protection.hpp"

namespace {

using pmalloc_test::allocating_mutation_faults;
using pmalloc_test::faults;

std::size_t live_allocations(const pmalloc::Pool& pool) { return pool.stats().allocations_live; }

TEST(MemoryResource, IsAStdPmrMemoryResource) {
  static_assert(std::is_base_of_v<std::pmr::memory_resource, pmalloc::memory_resource>);
  pmalloc::Pool pool("mr-basic");
  pmalloc::memory_resource mr(pool);
  EXPECT_EQ(mr.pool(), pool.get());
  std::pmr::memory_resource& base = mr;
  void* p = base.allocate(100, 8);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(live_allocations(pool), 1u);
  EXPECT_GE(pool.stats().bytes_live, 100u);
  base.deallocate(p, 100, 8);
  EXPECT_EQ(live_allocations(pool), 0u);
}

TEST(MemoryResource, ContainersAllocateFromThePool) {
  pmalloc::Pool pool("mr-containers");
  pmalloc::memory_resource mr(pool);
  std::pmr::vector<std::uint64_t> v(&mr);
  for (std::uint64_t i = 0; i < 1000; ++i) v.push_back(i * i);
  std::pmr::string s("a string long enough to leave the small-string buffer", &mr);
  std::pmr::unordered_map<int, std::pmr::string> m(&mr);
  for (int i = 0; i < 50; ++i) m.emplace(i, std::pmr::string(40, static_cast<char>('a' + i % 26)));
  const auto stats = pool.stats();
  EXPECT_GE(stats.bytes_live, 1000 * sizeof(std::uint64_t) + 50 * 40);
  EXPECT_GE(stats.allocations_live, 50u + 2u);
  // Nested strings got the map's resource (uses-allocator construction).
  EXPECT_EQ(m.at(7).get_allocator().resource(), &mr);
}

// The point of it all: a table built in the pool, protected, serves lookups, and a
// write into it faults without changing a byte.
TEST(MemoryResource, ProtectedContainerServesReadsAndFaultsOnWrite) {
  pmalloc::Pool pool("mr-protect");
  auto* mr = pool.make<pmalloc::memory_resource>(pool);
  using Map = std::pmr::unordered_map<std::pmr::string, std::pmr::vector<int>>;
  Map* built = pool.make<Map>(mr);
  for (int i = 0; i < 200; ++i) {
    auto& v = (*built)[std::pmr::string("key-number-" + std::to_string(i) + "-with-a-long-suffix", mr)];
    v.assign({i, i + 1, i + 2});
  }
  const pmalloc::ro_ptr<Map> map = pool.protect(built);
  EXPECT_TRUE(pool.stats().is_protected);

  // Reads: find, at, count, iteration.
  const auto it = map->find("key-number-42-with-a-long-suffix");
  ASSERT_NE(it, map->end());
  EXPECT_EQ(it->second.at(2), 44);
  EXPECT_EQ(map->count("nope"), 0u);
  long sum = 0;
  for (const auto& [k, v] : *map) sum += v.front();
  EXPECT_EQ(sum, 199 * 200 / 2);

  // Writes fault: element, key, insertion (links into the protected bucket array).
  auto& victim = const_cast<Map&>(*map);
  EXPECT_TRUE(faults([&] { victim.find("key-number-42-with-a-long-suffix")->second[0] = -1; }));
  EXPECT_TRUE(faults([&] { const_cast<char&>(victim.begin()->first[0]) = 'X'; }));
  EXPECT_TRUE(allocating_mutation_faults(
      [&] { victim[std::pmr::string("a-brand-new-key-that-needs-a-node", mr)].push_back(1); }));
  EXPECT_TRUE(faults([&] { victim.erase("key-number-7-with-a-long-suffix"); }));
  // Nothing changed.
  EXPECT_EQ(map->size(), 200u);
  EXPECT_EQ(map->at("key-number-42-with-a-long-suffix")[0], 42);
  EXPECT_EQ(map->count("key-number-7-with-a-long-suffix"), 1u);
}

TEST(MemoryResource, AllocationAfterProtectComesFromFreshWritablePages) {
  pmalloc::Pool pool("mr-after");
  pmalloc::memory_resource mr(pool);
  std::pmr::vector<int> before({1, 2, 3}, &mr);
  pool.protect();
  std::pmr::vector<int> after(&mr);
  for (int i = 0; i < 1000; ++i) after.push_back(i);  // grows through reallocation
  EXPECT_EQ(after[999], 999);
  EXPECT_EQ(before[2], 3);
  EXPECT_FALSE(pool.stats().is_protected);  // new pages are writable until the next protect
  pool.protect();
  EXPECT_TRUE(faults([&] { after[0] = 7; }));
}

TEST(MemoryResource, DeallocateAfterProtectOnlyUpdatesAccounting) {
  pmalloc::Pool pool("mr-dealloc");
  pmalloc::memory_resource mr(pool);
  auto* v = new std::pmr::vector<int>(&mr);  // the vector object outside the pool
  v->assign(256, 5);
  const int* data = v->data();
  pool.protect();
  const auto before = pool.stats();
  delete v;  // deallocates through pfree: accounting only
  const auto after = pool.stats();
  EXPECT_EQ(after.allocations_live, before.allocations_live - 1);
  EXPECT_LT(after.bytes_live, before.bytes_live);
  EXPECT_TRUE(after.is_protected);
  EXPECT_TRUE(std::all_of(data, data + 256, [](int x) { return x == 5; }));  // bytes unchanged
  EXPECT_TRUE(faults([&] { *const_cast<volatile int*>(data) = 0; }));       // and still read-only
  // The freed space is not reused: a new allocation lands elsewhere.
  void* p = mr.allocate(256 * sizeof(int), alignof(int));
  EXPECT_TRUE(static_cast<const int*>(p) >= data + 256 || static_cast<const int*>(p) + 256 <= data);
  mr.deallocate(p, 256 * sizeof(int), alignof(int));
}

TEST(MemoryResource, ZeroBytesGiveDistinctPointers) {
  pmalloc::Pool pool("mr-zero");
  pmalloc::memory_resource mr(pool);
  void* a = mr.allocate(0, 1);
  void* b = mr.allocate(0, 1);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  mr.deallocate(a, 0, 1);
  mr.deallocate(b, 0, 1);
  EXPECT_EQ(live_allocations(pool), 0u);
}

TEST(MemoryResource, AlignmentIsHonouredUpToThePageSize) {
  pmalloc::Pool pool("mr-align");
  pmalloc::memory_resource mr(pool);
  for (std::size_t align : {1u, 2u, 8u, 16u, 64u, 256u, 4096u}) {
    void* p = mr.allocate(24, align);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << align;
  }
  EXPECT_THROW((void)mr.allocate(24, 8192), pmalloc::error);
}

TEST(MemoryResource, ImpossibleSizeThrowsBadAlloc) {
  pmalloc::Pool pool("mr-huge");
  pmalloc::memory_resource mr(pool);
  EXPECT_THROW((void)mr.allocate(std::size_t{1} << 62, 16), std::bad_alloc);
  EXPECT_THROW((void)mr.allocate(std::size_t{1} << 62, 16), pmalloc::out_of_memory);
}

TEST(MemoryResource, EqualityMeansSamePool) {
  pmalloc::Pool a("mr-eq-a");
  pmalloc::Pool b("mr-eq-b");
  pmalloc::memory_resource a1(a), a2(a.get()), a3(&a), b1(b);
  EXPECT_TRUE(a1.is_equal(a3));
  EXPECT_TRUE(a1.is_equal(a1));
  EXPECT_TRUE(a1.is_equal(a2));
  EXPECT_TRUE(a2.is_equal(a1));
  EXPECT_TRUE(a1 == a2);
  EXPECT_FALSE(a1.is_equal(b1));
  EXPECT_FALSE(a1.is_equal(*std::pmr::new_delete_resource()));
  EXPECT_FALSE(std::pmr::new_delete_resource()->is_equal(a1));
  // Memory from one equal resource may be returned through the other.
  void* p = a1.allocate(32, 16);
  a2.deallocate(p, 32, 16);
  EXPECT_EQ(live_allocations(a), 0u);
  // Containers over equal resources move without copying elements.
  std::pmr::vector<int> v1({1, 2, 3}, &a1);
  const int* data = v1.data();
  std::pmr::vector<int> v2(&a2);
  v2 = std::move(v1);
  EXPECT_EQ(v2.data(), data);
}

TEST(MemoryResource, NullPoolIsRefused) {
  EXPECT_THROW(pmalloc::memory_resource(static_cast<pmalloc_pool*>(nullptr)), pmalloc::error);
  pmalloc::Pool pool("mr-moved");
  pmalloc::Pool other(std::move(pool));
  EXPECT_THROW(pmalloc::memory_resource{pool}, pmalloc::error);  // NOLINT: moved-from on purpose
  try {
    pmalloc::memory_resource mr(static_cast<pmalloc_pool*>(nullptr));
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
  }
}

TEST(MemoryResource, ResourceInsideTheProtectedPoolKeepsWorking) {
  pmalloc::Pool pool("mr-inside");
  auto* mr = pool.make<pmalloc::memory_resource>(pool);
  auto* v = pool.make<std::pmr::vector<int>>(mr);
  v->assign({4, 5, 6});
  pool.protect();
  // The resource object (and its vtable pointer) is read-only now...
  EXPECT_TRUE(faults([&] { *reinterpret_cast<volatile char*>(mr) = 0; }));
  // ...and still allocates (fresh pages) and compares.
  std::pmr::vector<int> w({7, 8}, mr);
  EXPECT_EQ(w[1], 8);
  EXPECT_TRUE(mr->is_equal(pmalloc::memory_resource(pool)));
}

TEST(MemoryResource, ConcurrentUseFromThreads) {
  pmalloc::Pool pool("mr-threads");
  pmalloc::memory_resource mr(pool);
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&mr, t] {
      std::pmr::vector<std::pmr::string> mine(&mr);
      for (int i = 0; i < kRounds; ++i) mine.emplace_back(std::to_string(t) + ":" + std::string(32, 'x'));
      for (int i = 0; i < kRounds; i += 2) mine[static_cast<std::size_t>(i)].clear();
      mine.clear();
      mine.shrink_to_fit();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(live_allocations(pool), 0u);
}

}  // namespace
