// pmalloc::allocator<T>: a standard allocator over a pool. Traits (equality, rebind,
// propagation), containers built in a pool and protected, errors. API-only test.
#include <gtest/gtest.h>
#include <pmalloc/allocator.hpp>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <scoped_allocator>
#include <string>
#include <vector>

#include "cpp_support/protection.hpp"

namespace {

using pmalloc_test::faults;
template <class T>
using PVec = std::vector<T, pmalloc::allocator<T>>;
using PString = std::basic_string<char, std::char_traits<char>, pmalloc::allocator<char>>;

using Traits = std::allocator_traits<pmalloc::allocator<int>>;
static_assert(std::is_same_v<Traits::value_type, int>);
static_assert(std::is_same_v<Traits::rebind_alloc<double>, pmalloc::allocator<double>>);
static_assert(std::is_same_v<pmalloc::allocator<int>::rebind<long>::other, pmalloc::allocator<long>>);
static_assert(!Traits::propagate_on_container_copy_assignment::value);
static_assert(!Traits::propagate_on_container_move_assignment::value);
static_assert(!Traits::propagate_on_container_swap::value);
static_assert(!Traits::is_always_equal::value);
static_assert(!std::is_default_constructible_v<pmalloc::allocator<int>>, "every container names its pool");
static_assert(std::is_nothrow_copy_constructible_v<pmalloc::allocator<int>>);
static_assert(std::is_convertible_v<pmalloc::Pool&, pmalloc::allocator<int>>);
static_assert(std::is_nothrow_constructible_v<pmalloc::allocator<int>, const pmalloc::allocator<double>&>);

TEST(Allocator, EqualityIsSamePoolAcrossValueTypes) {
  pmalloc::Pool a("alloc-eq-a");
  pmalloc::Pool b("alloc-eq-b");
  pmalloc::allocator<int> ai(a);
  pmalloc::allocator<double> ad(a);
  pmalloc::allocator<int> bi(b.get());
  pmalloc::allocator<int> bp(&b);
  EXPECT_TRUE(bi == bp);
  EXPECT_TRUE(ai == ad);
  EXPECT_TRUE(ad == ai);
  EXPECT_FALSE(ai != ad);
  EXPECT_TRUE(ai != bi);
  pmalloc::allocator<char> rebound(ai);
  EXPECT_EQ(rebound.pool(), a.get());
  EXPECT_TRUE(rebound == ai);
  // Memory from one equal allocator may be freed through the other.
  int* p = ai.allocate(10);
  pmalloc::allocator<int>(ad).deallocate(p, 10);
  EXPECT_EQ(a.stats().allocations_live, 0u);
}

TEST(Allocator, ContainersLiveInThePool) {
  pmalloc::Pool pool("alloc-containers");
  PVec<std::uint32_t> v(pool);
  for (std::uint32_t i = 0; i < 1000; ++i) v.push_back(i);
  std::list<int, pmalloc::allocator<int>> l(pool);  // rebinds to list nodes
  for (int i = 0; i < 100; ++i) l.push_back(i);
  std::map<int, int, std::less<>, pmalloc::allocator<std::pair<const int, int>>> m(pool);
  for (int i = 0; i < 100; ++i) m[i] = i * i;
  const auto s = pool.stats();
  EXPECT_GE(s.bytes_live, 1000 * sizeof(std::uint32_t));
  EXPECT_GE(s.allocations_live, 1u + 100u + 100u);
  EXPECT_EQ(m.at(9), 81);
}

TEST(Allocator, NestedContainersWithScopedAllocatorAdaptor) {
  pmalloc::Pool pool("alloc-scoped");
  using Inner = PString;
  using Outer = std::vector<Inner, std::scoped_allocator_adaptor<pmalloc::allocator<Inner>>>;
  Outer names{pmalloc::allocator<Inner>(pool)};
  names.emplace_back("a name that is clearly longer than the small string buffer");
  EXPECT_EQ(names[0].get_allocator().pool(), pool.get());
}

TEST(Allocator, ProtectedVectorServesReadsAndFaultsOnWrite) {
  pmalloc::Pool pool("alloc-protect");
  using Ids = PVec<int>;
  Ids* ids = pool.make<Ids>(pool);  // the vector object and its elements in the pool
  for (int i = 0; i < 500; ++i) ids->push_back(i * 3);
  const pmalloc::ro_ptr<Ids> ro = pool.protect(ids);
  EXPECT_EQ((*ro)[100], 300);
  EXPECT_EQ(ro->size(), 500u);
  auto& victim = const_cast<Ids&>(*ro);
  EXPECT_TRUE(faults([&] { victim[100] = 0; }));
  EXPECT_TRUE(faults([&] { victim.push_back(1); }));  // writes the vector object (or its storage)
  EXPECT_TRUE(faults([&] { victim.clear(); }));
  EXPECT_EQ((*ro)[100], 300);
  EXPECT_EQ(ro->size(), 500u);
}

TEST(Allocator, CopiesStayInTheirPools) {
  pmalloc::Pool a("alloc-copy-a");
  pmalloc::Pool b("alloc-copy-b");
  PVec<int> va({1, 2, 3}, a);
  PVec<int> copy(va);  // select_on_container_copy_construction: same pool
  EXPECT_EQ(copy.get_allocator().pool(), a.get());
  PVec<int> vb(b);
  vb = va;  // no propagation: vb keeps pool b
  EXPECT_EQ(vb.get_allocator().pool(), b.get());
  EXPECT_EQ(vb, va);
  vb = std::move(va);  // unequal pools: element-wise move into pool b
  EXPECT_EQ(vb.get_allocator().pool(), b.get());
  EXPECT_EQ(vb.size(), 3u);
  PVec<int> moved(std::move(vb));  // move construction carries the allocator along
  EXPECT_EQ(moved.get_allocator().pool(), b.get());
}

TEST(Allocator, ErrorsAreStandardExceptions) {
  pmalloc::Pool pool("alloc-errors");
  pmalloc::allocator<std::uint64_t> al(pool);
  EXPECT_THROW((void)al.allocate(std::size_t{1} << 62), std::bad_array_new_length);
  EXPECT_THROW((void)al.allocate(std::size_t{1} << 58), std::bad_alloc);
  struct alignas(8192) Huge {
    char c;
  };
  pmalloc::allocator<Huge> over(pool);
  EXPECT_THROW((void)over.allocate(1), pmalloc::error);
  EXPECT_THROW(pmalloc::allocator<int>(static_cast<pmalloc_pool*>(nullptr)), pmalloc::error);
}

TEST(Allocator, ZeroCountAndDeallocateAfterProtect) {
  pmalloc::Pool pool("alloc-zero");
  pmalloc::allocator<int> al(pool);
  int* a = al.allocate(0);
  int* b = al.allocate(0);
  EXPECT_NE(a, b);
  al.deallocate(a, 0);
  al.deallocate(b, 0);
  int* c = al.allocate(64);
  for (int i = 0; i < 64; ++i) c[i] = i;
  pool.protect();
  al.deallocate(c, 64);  // accounting only; the bytes stay
  EXPECT_EQ(pool.stats().allocations_live, 0u);
  EXPECT_EQ(c[63], 63);
  EXPECT_TRUE(faults([&] { c[0] = 9; }));
}

TEST(Allocator, AlignmentOfOveralignedTypes) {
  pmalloc::Pool pool("alloc-align");
  struct alignas(64) Line {
    char bytes[64];
  };
  PVec<Line> lines(pool);
  lines.resize(10);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(lines.data()) % 64, 0u);
}

}  // namespace
