// Write-rare under concurrency: a reader never sees a torn pointer published with
// wr_rcu_assign_pointer; updates from several threads to different fields of one pool
// all land, also while the pool's metadata changes (allocation after protect).
// Registered once per writer.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "wr_support.hpp"

namespace {

class WrConcurrency : public ::testing::Test {
 protected:
  void SetUp() override {
    WR_REQUIRE_BACKEND();
    pool_ = pmalloc_create_pool("wr-concurrency", PMALLOC_WR);
    ASSERT_NE(pool_, nullptr);
  }
  void TearDown() override { pmalloc_destroy_pool(pool_); }
  pmalloc_pool* pool_ = nullptr;
};

TEST_F(WrConcurrency, ReaderNeverSeesATornPointer) {
  struct Slot {
    void* ptr;
  };
  auto* slot = static_cast<Slot*>(pzalloc(pool_, sizeof(Slot)));
  ASSERT_NE(slot, nullptr);
  // Two values that differ in every byte: a torn read would mix them.
  void* const a = reinterpret_cast<void*>(std::uintptr_t{0x1111111111111111});
  void* const b = reinterpret_cast<void*>(std::uintptr_t{0x7EEEEEEEEEEEEEEE});
  slot->ptr = a;
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);

  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, torn{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      void* p = wr_rcu_dereference(slot->ptr);
      if (p != a && p != b) torn.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (reads.load() == 0) std::this_thread::yield();
  const long n = wr_test::rounds(20000);
  for (long i = 0; i < n; ++i) {
    ASSERT_TRUE(wr_rcu_assign_pointer(slot->ptr, (i & 1) ? a : b)) << pmalloc_last_error();
  }
  stop = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0) << "torn pointer reads out of " << reads.load();
  EXPECT_EQ(slot->ptr, (n - 1) & 1 ? a : b);
}

// What a published pointer points to is complete when a reader sees the pointer: each
// table is written (wr_memcpy) before it is published, and never rewritten afterwards.
TEST_F(WrConcurrency, PublishedObjectIsCompleteWhenSeen) {
  struct Table {
    long version;
    long check;  // == version * 3 once written
  };
  struct Root {
    Table* current;
  };
  const long kTables = wr_test::rounds(3000);
  auto* root = static_cast<Root*>(pzalloc(pool_, sizeof(Root)));
  auto* tables = static_cast<Table*>(pzalloc(pool_, kTables * sizeof(Table)));
  ASSERT_TRUE(root && tables);
  root->current = &tables[0];
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  std::atomic<bool> stop{false};
  std::atomic<long> incomplete{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const Table* t = wr_rcu_dereference(root->current);
      const long v = __atomic_load_n(&t->version, __ATOMIC_RELAXED);
      const long c = __atomic_load_n(&t->check, __ATOMIC_RELAXED);
      if (c != v * 3) incomplete.fetch_add(1);
    }
  });
  for (long i = 1; i < kTables; ++i) {
    const Table fresh{i, i * 3};
    ASSERT_TRUE(wr_memcpy(&tables[i], &fresh, sizeof fresh));
    ASSERT_TRUE(wr_rcu_assign_pointer(root->current, &tables[i]));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(incomplete.load(), 0);
  EXPECT_EQ(root->current, &tables[kTables - 1]);
}

TEST_F(WrConcurrency, UpdatesFromSeveralThreadsToDifferentFieldsAllLand) {
  constexpr int kThreads = 4, kFieldsPerThread = 16;
  const long kRounds = wr_test::rounds(160);
  auto* fields = static_cast<long*>(pzalloc(pool_, kThreads * kFieldsPerThread * sizeof(long)));
  ASSERT_NE(fields, nullptr);  // all on one or two pages
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (long r = 0; r < kRounds; ++r) {
        for (int f = 0; f < kFieldsPerThread; ++f) {
          long* field = &fields[t * kFieldsPerThread + f];
          if (!wr_assign(*field, *field + 1)) failures.fetch_add(1);
        }
        if (r % 10 == 0) {  // a batch now and then
          std::vector<wr_batch_op> ops;
          std::vector<long> values(kFieldsPerThread);
          for (int f = 0; f < kFieldsPerThread; ++f) {
            values[f] = fields[t * kFieldsPerThread + f];
            ops.push_back(wr_batch_op{&fields[t * kFieldsPerThread + f], &values[f], sizeof(long)});
          }
          if (!wr_memcpy_batch(ops.data(), ops.size())) failures.fetch_add(1);
        }
      }
    });
  }
  // Meanwhile the pool's protected metadata changes: allocations after protect.
  std::vector<void*> later;
  for (int i = 0; i < 200; ++i) later.push_back(pmalloc(pool_, 48));
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < kThreads * kFieldsPerThread; ++i) EXPECT_EQ(fields[i], kRounds) << "field " << i;
  for (void* p : later) EXPECT_NE(p, nullptr);
  struct pmalloc_stats st {};
  ASSERT_EQ(pmalloc_pool_stats(pool_, &st), 0);
  EXPECT_EQ(st.allocations_live, 201u);
}

}  // namespace
