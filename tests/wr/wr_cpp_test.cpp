// The C++ write-rare API: pmalloc::wr_assign and the global wr_assign from pmalloc.h alone,
// pmalloc::wr<T> fields, pmalloc::wr_transaction. Registered once per writer.
#include <gtest/gtest.h>

#include <pmalloc/pmalloc.h>  // wr_assign(x, v) must work with this header alone

#include <cerrno>
#include <cstdint>
#include <type_traits>

#include <pmalloc/pmalloc.hpp>
#include <pmalloc/wr.hpp>

#include "wr_support.hpp"

namespace {

struct Rules {
  int limit;
  char tag[12];
};

struct Config {
  pmalloc::wr<int> level;
  pmalloc::wr<double> ratio;
  pmalloc::wr<const Rules*> rules;
  long plain;
};

static_assert(sizeof(pmalloc::wr<int>) == sizeof(int));
static_assert(std::is_standard_layout_v<pmalloc::wr<long>>);
static_assert(!std::is_copy_assignable_v<pmalloc::wr<int>>, "writes only through set()");
static_assert(!std::is_assignable_v<pmalloc::wr<int>&, int>, "writes only through set()");

class WrCpp : public ::testing::Test {
 protected:
  void SetUp() override { WR_REQUIRE_BACKEND(); }
  pmalloc::Pool pool_{pmalloc::PoolOptions{"wr-cpp", true}};
};

TEST_F(WrCpp, GlobalAndNamespacedWrAssign) {
  auto* v = pool_.make<long>(1);
  pool_.protect();
  EXPECT_TRUE(wr_assign(*v, 2));  // global, as C code would write it
  EXPECT_EQ(*v, 2);
  EXPECT_TRUE(pmalloc::wr_assign(*v, 3));
  EXPECT_EQ(*v, 3);
  pmalloc::wr_set(*v, 4L);
  EXPECT_EQ(*v, 4);
  long local = 0;
  EXPECT_FALSE(pmalloc::wr_assign(local, 5));
  EXPECT_EQ(errno, EINVAL);
  EXPECT_THROW(pmalloc::wr_set(local, 5L), pmalloc::error);
  EXPECT_EQ(local, 0);
}

TEST_F(WrCpp, FieldsReadLikeConstRefsAndWriteThroughSet) {
  static const Rules strict{3, "strict"}, lax{9, "lax"};
  auto* c = pool_.make<Config>();
  EXPECT_EQ(c->level, 0);
  const int& ref = c->level;  // reads like a const T&
  c->rules.set(&strict);      // works before protection too
  pool_.protect();
  ASSERT_TRUE(wr_test::write_kills_child(&c->plain));
  c->level.set(7);
  EXPECT_EQ(ref, 7);
  EXPECT_EQ(c->level.get(), 7);
  c->ratio.set(0.5);
  EXPECT_DOUBLE_EQ(c->ratio, 0.5);
  EXPECT_EQ(c->rules->limit, 3);
  c->rules.set(&lax);
  EXPECT_EQ(c->rules.load(), &lax);
  EXPECT_STREQ(c->rules->tag, "lax");
}

TEST_F(WrCpp, SetOutsideAPoolOrOnAReadOnlyPoolThrows) {
  pmalloc::wr<int> on_stack{1};
  try {
    on_stack.set(2);
    FAIL() << "set() on the stack must throw";
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
  }
  EXPECT_EQ(on_stack, 1);
  pmalloc::Pool ro{pmalloc::PoolOptions{"wr-cpp-ro"}};
  auto* c = ro.make<Config>();
  ro.protect();
  try {
    c->level.set(5);
    FAIL() << "set() in a write-once pool must throw";
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EPERM);
  }
  EXPECT_FALSE(c->level.try_set(5));
  EXPECT_EQ(c->level, 0);
}

TEST_F(WrCpp, TransactionCommitsAllOrNothing) {
  auto* a = pool_.make<Config>();
  auto* b = pool_.make<Config>();
  auto* raw = static_cast<char*>(pool_.zalloc(64));
  pool_.protect();
  {
    pmalloc::wr_transaction tx;
    tx.set(a->level, 1).set(b->level, 2).assign(a->plain, 10L).copy(raw, "hello", 6).fill(raw + 10, 'z', 3);
    EXPECT_EQ(tx.size(), 5u);
    EXPECT_EQ(a->level, 0) << "nothing is written before commit";
    tx.commit();
    EXPECT_TRUE(tx.empty());
  }
  EXPECT_EQ(a->level, 1);
  EXPECT_EQ(b->level, 2);
  EXPECT_EQ(a->plain, 10);
  EXPECT_STREQ(raw, "hello");
  EXPECT_EQ(raw[12], 'z');
  {
    pmalloc::wr_transaction tx;
    tx.set(a->level, 100);
  }  // destroyed without commit: discarded
  EXPECT_EQ(a->level, 1);
  long local = 0;
  pmalloc::wr_batch tx;
  tx.set(a->level, 5).assign(local, 6L);
  EXPECT_THROW(tx.commit(), pmalloc::error);
  EXPECT_EQ(a->level, 1) << "a refused transaction writes nothing";
  EXPECT_EQ(local, 0);
  EXPECT_EQ(tx.size(), 2u) << "kept for inspection";
}

TEST_F(WrCpp, RcuPointerHelpers) {
  struct Node {
    int value;
  };
  static Node n1{1}, n2{2};
  struct Holder {
    Node* head;
  };
  auto* h = pool_.make<Holder>(Holder{&n1});
  pool_.protect();
  EXPECT_TRUE(wr_rcu_assign_pointer(h->head, &n2));
  EXPECT_EQ(pmalloc::wr_rcu_dereference(h->head)->value, 2);
  EXPECT_TRUE(pmalloc::wr_rcu_assign_pointer(h->head, nullptr));
  EXPECT_EQ(h->head, nullptr);
}

}  // namespace
