// Sealed object caches, C++ API: pmalloc::SealedCache<T> and the Sealable concept.
#include <gtest/gtest.h>
#include <pmalloc/cache.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/cache_test_support.hpp"
#include "support/probe.hpp"

namespace {

class SealedCacheTest : public cache_test::CacheTest {};

struct Policy {
  Policy(int lvl, const char* label) : level(lvl) { std::strncpy(name, label, sizeof name - 1); }
  int level;
  char name[28] = {};
};

struct Aggregate {
  std::uint64_t a;
  double b;
  int c;
};

struct Node {
  const Node* self;
  const Node* parent;
  int depth;
};

struct Throws {
  explicit Throws(int v) : value(v) {
    if (v < 0) throw std::invalid_argument("negative");
  }
  int value;
};

struct alignas(64) Wide {
  std::array<std::uint64_t, 3> v;
};

// Not trivially copyable (user-provided copy constructor) but safe to relocate by bytes:
// opted in explicitly.
struct Counted {
  Counted() = default;
  Counted(const Counted& o) : n(o.n) {}
  int n = 0;
};

}  // namespace

template <>
inline constexpr bool pmalloc::sealed_relocatable<Counted> = true;

namespace {

static_assert(pmalloc::Sealable<Policy>);
static_assert(pmalloc::Sealable<Aggregate>);
static_assert(pmalloc::Sealable<Wide>);
static_assert(pmalloc::Sealable<Counted>);
static_assert(pmalloc::Sealable<int>);
static_assert(!pmalloc::Sealable<std::string>);              // owns heap memory, non-trivial destructor
static_assert(!pmalloc::Sealable<std::unique_ptr<int>>);     // non-trivial destructor
static_assert(!pmalloc::Sealable<std::vector<int>>);
static_assert(!pmalloc::Sealable<const Policy>);
static_assert(!pmalloc::Sealable<int[4]>);
static_assert(!pmalloc::Sealable<int&>);
struct Huge {
  char bytes[PMALLOC_CACHE_OBJECT_MAX + 1];
};
static_assert(!pmalloc::Sealable<Huge>);
// The cache type itself only exists for Sealable types.
template <class T>
concept has_cache = requires { typename pmalloc::SealedCache<T>; sizeof(pmalloc::SealedCache<T>); };
static_assert(has_cache<Policy>);
static_assert(!has_cache<std::string>);

TEST_F(SealedCacheTest, CreateConstructsAndSeals) {
  pmalloc::SealedCache<Policy> policies("policies", 0);
  const Policy* p = policies.create(3, "strict");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->level, 3);
  EXPECT_STREQ(p->name, "strict");
  EXPECT_TRUE(cache_test::write_kills_child(p));
  EXPECT_EQ(policies.stats().allocations_live, 1u);
  EXPECT_STREQ(policies.name(), "policies");
  policies.free(p);
  EXPECT_EQ(policies.stats().allocations_live, 0u);
  pmalloc::SealedCache<Policy> named("named");  // flags default to 0
  named.destroy(named.create(1, "x"));
  EXPECT_EQ(named.stats().allocations_live, 0u);
  pmalloc::SealedCache<Policy> defaulted;
  EXPECT_STREQ(defaulted.name(), "");
}

TEST_F(SealedCacheTest, AggregatesAndAlignment) {
  pmalloc::SealedCache<Aggregate> aggregates;
  const Aggregate* a = aggregates.create(std::uint64_t{7}, 2.5, 9);
  EXPECT_EQ(a->a, 7u);
  EXPECT_EQ(a->b, 2.5);
  EXPECT_EQ(a->c, 9);
  pmalloc::SealedCache<Wide> wide(pmalloc::CacheOptions{"wide", false, true});
  for (int i = 0; i < 100; ++i) {
    const Wide* w = wide.create(Wide{{1, 2, static_cast<std::uint64_t>(i)}});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w) % 64, 0u);
    EXPECT_EQ(w->v[2], static_cast<std::uint64_t>(i));
  }
  pmalloc::SealedCache<Counted> counted;
  Counted proto;
  proto.n = 5;
  EXPECT_EQ(counted.create(proto)->n, 5);
}

TEST_F(SealedCacheTest, CreateWithGivesTheFinalAddress) {
  pmalloc::SealedCache<Node> nodes("nodes", PMALLOC_SEAL);
  const Node* root = nodes.create_with([](const Node* self) { return Node{self, nullptr, 0}; });
  const Node* child = nodes.create_with([&](const Node* self) { return Node{self, root, root->depth + 1}; });
  EXPECT_EQ(root->self, root);
  EXPECT_EQ(child->self, child);
  EXPECT_EQ(child->parent, root);
  EXPECT_EQ(child->depth, 1);
}

TEST_F(SealedCacheTest, ConstructorExceptionsPropagateAndAllocateNothing) {
  pmalloc::SealedCache<Throws> cache;
  EXPECT_THROW(cache.create(-1), std::invalid_argument);
  EXPECT_EQ(cache.stats().allocations_live, 0u);
  EXPECT_THROW(cache.try_create(-1), std::invalid_argument);
  const Throws* ok = cache.create(1);
  EXPECT_EQ(ok->value, 1);
  auto many = [](std::size_t i, const Throws*) { return Throws(i == 3 ? -1 : static_cast<int>(i)); };
  EXPECT_THROW(cache.create_many(10, many), std::invalid_argument);
  EXPECT_EQ(cache.stats().allocations_live, 1u);
}

TEST_F(SealedCacheTest, LibraryErrorsThrow) {
  EXPECT_THROW(pmalloc::SealedCache<Policy>(std::string(100, 'x').c_str(), 0), pmalloc::error);
  EXPECT_THROW(pmalloc::SealedCache<Policy>("flags", PMALLOC_WR), pmalloc::error);
  pmalloc::SealedCache<Policy> cache;
  const Policy* p = cache.create(1, "a");
  cache.free(p);
  try {
    cache.free(p);
    FAIL() << "double free did not throw";
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("double free"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache.try_free(p), EINVAL);
  int local = 0;
  EXPECT_EQ(cache.try_free(reinterpret_cast<const Policy*>(&local)), EINVAL);
}

TEST_F(SealedCacheTest, CreateManyLinksSiblings) {
  pmalloc::SealedCache<Node> nodes;
  std::vector<const Node*> ring(50);
  nodes.create_many(std::span<const Node*>(ring), [&](std::size_t i, const Node* self) {
    return Node{self, ring[(i + 1) % ring.size()], static_cast<int>(i)};
  });
  for (std::size_t i = 0; i < ring.size(); ++i) {
    EXPECT_EQ(ring[i]->self, ring[i]);
    EXPECT_EQ(ring[i]->parent, ring[(i + 1) % ring.size()]);
    EXPECT_EQ(ring[i]->depth, static_cast<int>(i));
  }
  EXPECT_EQ(nodes.stats().allocations_live, 50u);
  nodes.free_many(std::span<const Node* const>(ring.data(), 25));
  EXPECT_EQ(nodes.stats().allocations_live, 25u);
  EXPECT_THROW(nodes.free_many(std::span<const Node* const>(ring.data(), 26)), pmalloc::error);
  EXPECT_EQ(nodes.stats().allocations_live, 25u);
}

TEST_F(SealedCacheTest, MoveOnlyOwnership) {
  pmalloc::SealedCache<int> a;
  const int* x = a.create(41);
  pmalloc::SealedCache<int> b(std::move(a));
  EXPECT_FALSE(static_cast<bool>(a));
  EXPECT_EQ(*x, 41);
  pmalloc::SealedCache<int> c;
  c = std::move(b);
  EXPECT_EQ(*c.create(42), 42);
  EXPECT_EQ(c.stats().allocations_live, 2u);
  pmalloc_cache* raw = c.release();
  EXPECT_FALSE(static_cast<bool>(c));
  pmalloc_cache_destroy(raw);
}

}  // namespace
