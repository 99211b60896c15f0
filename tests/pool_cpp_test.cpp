// Tests of the C++ API (include/pmalloc/pmalloc.hpp): RAII, typed construction, errors.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <pmalloc/pmalloc.hpp>
#include <stdexcept>
#include <type_traits>

#include "support/probe.hpp"

namespace {

struct Point {
  int x, y;
  Point(int a, int b) : x(a), y(b) {}
};

struct alignas(64) Wide {
  char bytes[64];
};

struct Throws {
  explicit Throws(bool t) {
    if (t) throw std::runtime_error("constructor failed");
  }
};

}  // namespace

TEST(CppPool, IsMoveOnly) {
  static_assert(!std::is_copy_constructible_v<pmalloc::Pool>);
  static_assert(!std::is_copy_assignable_v<pmalloc::Pool>);
  static_assert(std::is_nothrow_move_constructible_v<pmalloc::Pool>);
  pmalloc::Pool a(pmalloc::PoolOptions{.name = "moved"});
  pmalloc::Pool b(std::move(a));
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
  EXPECT_STREQ(b.name(), "moved");
}

TEST(CppPool, MakeConstructsInPlaceWithAlignment) {
  pmalloc::Pool pool;
  Point* p = pool.make<Point>(3, 4);
  EXPECT_EQ(p->x, 3);
  EXPECT_EQ(p->y, 4);
  Wide* w = pool.make<Wide>();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w) % 64, 0u);
  int* arr = pool.make_array<int>(100);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(arr[i], 0);
  EXPECT_EQ(pool.stats().allocations_live, 3u);
}

TEST(CppPool, ThrowingConstructorFreesItsMemory) {
  pmalloc::Pool pool;
  EXPECT_THROW(pool.make<Throws>(true), std::runtime_error);
  EXPECT_EQ(pool.stats().allocations_live, 0u);
  EXPECT_NO_THROW(pool.make<Throws>(false));
}

TEST(CppPool, ErrorsAreExceptionsWithErrnoAndReason) {
  pmalloc::Pool pool;
  try {
    pool.alloc(0);
    FAIL() << "expected an exception";
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("size"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool.alloc(SIZE_MAX), std::bad_alloc);
  EXPECT_THROW(pool.alloc(8, 3), pmalloc::error);
  int x = 0;
  EXPECT_THROW(pool.free(&x), pmalloc::error);
  EXPECT_THROW(pmalloc::Pool("bad", 0x40u), pmalloc::error);
  EXPECT_EQ(pool.try_alloc(0), nullptr);
  EXPECT_EQ(pool.try_free(&x), EINVAL);
}

TEST(CppPool, ProtectThenStrayWriteFaults) {
  pmalloc::Pool pool(pmalloc::PoolOptions{.name = "cpp-protect"});
  char* s = pool.strdup("read-only soon");
  Point* p = pool.make<Point>(1, 2);
  pool.protect();
  const pmalloc::Stats st = pool.stats();
  EXPECT_EQ(st.is_protected, 1);
  EXPECT_TRUE(pmalloc_test::write_kills_child(s));
  EXPECT_TRUE(pmalloc_test::write_kills_child(&p->x));
  EXPECT_STREQ(s, "read-only soon");
  EXPECT_EQ(p->x, 1);
}

TEST(CppPool, OptionsMapToFlags) {
  pmalloc::PoolOptions o;
  EXPECT_EQ(o.flags(), PMALLOC_RO);
  o.write_rare = o.auto_protect = o.seal = true;
  o.guard_pages = false;
  EXPECT_EQ(o.flags(), PMALLOC_WR | PMALLOC_AUTO | PMALLOC_SEAL | PMALLOC_NO_GUARD);
}

TEST(CppPool, CMacroAndNamespaceCoexist) {
  pmalloc::Pool pool;
  void* p = pmalloc(pool.get(), 32);  // the C function, through the macro
  ASSERT_NE(p, nullptr);
  pool.free(p);
  pmalloc_pool* raw = pool.release();
  pmalloc::Pool adopted = pmalloc::Pool::adopt(raw);
  EXPECT_EQ(adopted.get(), raw);
}
