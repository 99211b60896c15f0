// Typed helpers of the C++ API: make<T>, make_array<T>, strdup (members of Pool and free
// functions over Pool& / pmalloc_pool*), and ro_ptr / Pool::protect(p), which keep
// protected data behind a pointer to const. API-only test.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "cpp_support/protection.hpp"

namespace {

using pmalloc_test::faults;

struct Point {
  int x, y;
  Point(int a, int b) : x(a), y(b) {}
};

struct alignas(128) Wide {
  std::uint64_t words[4]{};
};

int g_constructed = 0;
struct Fragile {
  int value = 0;
  Fragile() {
    if (g_constructed == 3) throw std::runtime_error("fourth construction fails");
    ++g_constructed;
  }
  ~Fragile() { --g_constructed; }
};

TEST(TypedHelpers, MakeConstructsInThePool) {
  pmalloc::Pool pool("typed-make");
  Point* p = pool.make<Point>(3, 4);
  EXPECT_EQ(p->x, 3);
  EXPECT_EQ(p->y, 4);
  Point* q = pmalloc::make<Point>(pool, 5, 6);
  Point* r = pmalloc::make<Point>(pool.get(), 7, 8);
  EXPECT_EQ(q->x + r->y, 13);
  EXPECT_EQ(pool.stats().allocations_live, 3u);
  Wide* w = pool.make<Wide>();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w) % 128, 0u);
  EXPECT_EQ(w->words[3], 0u);
}

TEST(TypedHelpers, MakeFreesWhenTheConstructorThrows) {
  pmalloc::Pool pool("typed-throw");
  struct Throws {
    Throws() { throw std::logic_error("no"); }
  };
  EXPECT_THROW(pool.make<Throws>(), std::logic_error);
  EXPECT_EQ(pool.stats().allocations_live, 0u);
}

TEST(TypedHelpers, MakeArrayValueInitialises) {
  pmalloc::Pool pool("typed-array");
  int* a = pool.make_array<int>(1000);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a[i], 0);
  double* d = pmalloc::make_array<double>(pool, 3);
  EXPECT_EQ(d[2], 0.0);
  Wide* w = pmalloc::make_array<Wide>(pool.get(), 2);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w) % 128, 0u);
}

TEST(TypedHelpers, MakeArrayErrors) {
  pmalloc::Pool pool("typed-array-errors");
  try {
    (void)pool.make_array<int>(0);
    FAIL() << "n == 0 must throw";
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
  }
  EXPECT_THROW((void)pool.make_array<std::uint64_t>(SIZE_MAX / 4), pmalloc::out_of_memory);
  EXPECT_THROW((void)pool.make_array<std::uint64_t>(SIZE_MAX / 4), std::bad_alloc);
  g_constructed = 0;
  EXPECT_THROW((void)pool.make_array<Fragile>(10), std::runtime_error);
  EXPECT_EQ(g_constructed, 0);  // the three built elements were destroyed
  EXPECT_EQ(pool.stats().allocations_live, 0u);
}

TEST(TypedHelpers, Strdup) {
  pmalloc::Pool pool("typed-strdup");
  char* s = pool.strdup("hello");
  EXPECT_STREQ(s, "hello");
  char* e = pmalloc::strdup(pool, "");
  EXPECT_STREQ(e, "");
  using namespace std::string_literals;
  const std::string with_nul = "a\0b"s;
  char* n = pmalloc::strdup(pool.get(), with_nul);
  EXPECT_EQ(std::string_view(n, 3), with_nul);
  EXPECT_EQ(n[3], '\0');
  const std::string long_text(5000, 'z');
  EXPECT_EQ(std::string_view(pool.strdup(long_text)), long_text);
}

TEST(TypedHelpers, HelpersOnAnInvalidPoolThrow) {
  pmalloc::Pool pool("typed-moved");
  pmalloc::Pool other(std::move(pool));
  EXPECT_THROW((void)pool.make<int>(1), pmalloc::error);  // NOLINT: moved-from on purpose
  EXPECT_THROW((void)pmalloc::strdup(static_cast<pmalloc_pool*>(nullptr), "x"), pmalloc::error);
}

// ro_ptr: the type system keeps honest code from writing protected data.
static_assert(std::is_same_v<decltype(*std::declval<pmalloc::ro_ptr<Point>>()), const Point&>);
static_assert(std::is_same_v<decltype(std::declval<pmalloc::ro_ptr<Point>>().operator->()), const Point*>);
static_assert(std::is_convertible_v<pmalloc::ro_ptr<Point>, const Point*>);
static_assert(!std::is_convertible_v<pmalloc::ro_ptr<Point>, Point*>);
static_assert(!std::is_convertible_v<Point*, pmalloc::ro_ptr<Point>>, "no silent wrapping");
static_assert(std::is_constructible_v<pmalloc::ro_ptr<Point>, Point*>);
static_assert(sizeof(pmalloc::ro_ptr<Point>) == sizeof(const Point*));
static_assert(std::is_trivially_copyable_v<pmalloc::ro_ptr<Point>>);

TEST(TypedHelpers, ProtectReturnsReadOnlyPointers) {
  pmalloc::Pool pool("typed-protect");
  Point* p = pool.make<Point>(1, 2);
  pmalloc::ro_ptr<Point> ro = pool.protect(p);
  EXPECT_TRUE(pool.stats().is_protected);
  EXPECT_EQ(ro->x, 1);
  EXPECT_EQ((*ro).y, 2);
  const Point* raw = ro;
  EXPECT_EQ(raw, p);
  EXPECT_EQ(ro.get(), p);
  EXPECT_TRUE(faults([&] { const_cast<Point*>(ro.get())->x = 99; }));
  EXPECT_EQ(ro->x, 1);
}

TEST(TypedHelpers, ProtectSeveralPointersAtOnce) {
  pmalloc::Pool pool("typed-protect-many");
  int* counts = pool.make_array<int>(4);
  counts[3] = 7;
  char* name = pool.strdup("policy");
  auto [c, n] = pool.protect(counts, name);
  static_assert(std::is_same_v<decltype(c), pmalloc::ro_ptr<int>>);
  static_assert(std::is_same_v<decltype(n), pmalloc::ro_ptr<char>>);
  EXPECT_EQ(c[3], 7);  // indexing through the conversion to const int*
  EXPECT_STREQ(n, "policy");
  EXPECT_TRUE(faults([&] { const_cast<char*>(n.get())[0] = 'P'; }));
}

TEST(TypedHelpers, ProtectRefusesPointersOutsidePoolAllocations) {
  pmalloc::Pool pool("typed-protect-refuse");
  int* in_pool = pool.make<int>(1);
  int on_stack = 2;
  EXPECT_THROW((void)pool.protect(&on_stack), pmalloc::error);
  EXPECT_THROW((void)pool.protect(in_pool, &on_stack), pmalloc::error);
  EXPECT_FALSE(pool.stats().is_protected) << "nothing is protected when a pointer is refused";
  int* freed = pool.make<int>(3);
  pool.free(freed);
  EXPECT_THROW((void)pool.protect(freed), pmalloc::error);
  EXPECT_EQ(pool.protect(static_cast<const int*>(nullptr)).get(), nullptr);
  EXPECT_EQ(*pool.protect(in_pool), 1);
}

TEST(TypedHelpers, RoPtrBasics) {
  pmalloc::ro_ptr<int> null;
  EXPECT_EQ(null.get(), nullptr);
  EXPECT_TRUE(null == nullptr);
  EXPECT_FALSE(null);
  static const int values[2] = {1, 2};
  pmalloc::ro_ptr a(&values[0]);  // deduces ro_ptr<int>
  static_assert(std::is_same_v<decltype(a), pmalloc::ro_ptr<int>>);
  pmalloc::ro_ptr<int> b(&values[0]);
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(a);
  struct Base {
    int v = 1;
  };
  struct Derived : Base {};
  static const Derived d{};
  pmalloc::ro_ptr<Derived> pd(&d);
  pmalloc::ro_ptr<Base> pb = pd;  // derived to base, like raw pointers
  EXPECT_EQ(pb->v, 1);
}

// Wilcox's split: the read-only part in a protected pool behind ro_ptr, the mutable part
// (counters, caches) in ordinary memory.
struct Limits {
  int max_connections;
  int max_requests;
};
struct Server {
  pmalloc::ro_ptr<Limits> limits;  // read-only part
  int connections = 0;             // mutable part
};

TEST(TypedHelpers, ReadOnlyPartThroughConstPointer) {
  pmalloc::Pool pool("typed-split");
  Server server{pool.protect(pool.make<Limits>(100, 1000))};
  server.connections = 5;  // the mutable part stays writable
  EXPECT_LT(server.connections, server.limits->max_connections);
  EXPECT_TRUE(faults([&] { const_cast<Limits&>(*server.limits).max_connections = 1 << 30; }));
  EXPECT_EQ(server.limits->max_connections, 100);
}

}  // namespace
