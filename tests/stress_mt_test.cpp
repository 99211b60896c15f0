// Multi-threaded stress (issue 4): several threads create, fill, check, free, protect and
// destroy their own pools, while all of them allocate from, free into and check objects of
// one shared pool, and look up addresses of each other's long-lived objects. Run under
// ThreadSanitizer in CI: the per-pool locks, the lock-free registry readers and the writer
// must be free of data races, and no object may ever change or be lost.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "pool/lock.hpp"
#include "pool/pool.hpp"

namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 30;
constexpr int kPerRound = 120;

struct Obj {
  unsigned char* p;
  std::size_t n;
  unsigned char v;
};

bool intact(const Obj& o) {
  for (std::size_t i = 0; i < o.n; ++i) {
    if (o.p[i] != o.v) return false;
  }
  return true;
}

TEST(StressMt, CreateAllocFreeProtectDestroyFromSeveralThreads) {
  pmalloc_pool* shared = pmalloc_create_pool("shared", PMALLOC_RO);
  ASSERT_NE(shared, nullptr);
  // Long-lived objects every thread looks up while the others churn pools.
  pmalloc_pool* anchor = pmalloc_create_pool("anchor", PMALLOC_RO);
  std::vector<Obj> anchors;
  for (int i = 0; i < 64; ++i) {
    auto* p = static_cast<unsigned char*>(pmalloc(anchor, 48));
    std::memset(p, i, 48);
    anchors.push_back({p, 48, static_cast<unsigned char>(i)});
  }
  ASSERT_EQ(pmalloc_protect_pool(anchor), 0);

  std::atomic<long> errors{0};
  std::mutex shared_mutex;          // guards `kept` only; the pool has its own lock
  std::vector<Obj> kept;            // shared-pool objects that stay until the end

  auto worker = [&](int id) {
    std::mt19937_64 rng(static_cast<unsigned>(id) * 7919u + 1u);
    const unsigned flag_sets[] = {PMALLOC_RO, PMALLOC_AUTO, PMALLOC_WR, PMALLOC_SEAL, PMALLOC_NO_GUARD};
    for (int round = 0; round < kRounds; ++round) {
      pmalloc_pool* mine = pmalloc_create_pool("mine", flag_sets[(id + round) % 5]);
      if (mine == nullptr) {
        ++errors;
        continue;
      }
      std::vector<Obj> objs;
      std::vector<Obj> shared_objs;
      for (int i = 0; i < kPerRound; ++i) {
        const std::size_t n = 1 + rng() % 600;
        auto* p = static_cast<unsigned char*>(pmalloc(mine, n));
        if (p == nullptr) {
          ++errors;
          continue;
        }
        const auto v = static_cast<unsigned char>(rng());
        std::memset(p, v, n);
        objs.push_back({p, n, v});
        auto* q = static_cast<unsigned char*>(pmalloc(shared, 1 + n % 100));
        if (q == nullptr) {
          ++errors;
          continue;
        }
        std::memset(q, v, 1 + n % 100);
        shared_objs.push_back({q, 1 + n % 100, v});
      }
      // Roll some back, in both pools.
      for (std::size_t i = 0; i < objs.size(); i += 4) {
        if (pfree(mine, objs[i].p) != 0) ++errors;
        objs[i].n = 0;
      }
      for (std::size_t i = 1; i < shared_objs.size(); i += 2) {
        if (pfree(shared, shared_objs[i].p) != 0) ++errors;
        shared_objs[i].n = 0;
      }
      if (rng() % 2 == 0 && pmalloc_protect_pool(mine) != 0) ++errors;
      for (const Obj& o : objs) {
        if (o.n != 0 && (!intact(o) || is_pmalloc_object(o.p, o.n) != PMALLOC_OBJECT_OK)) ++errors;
      }
      for (const Obj& o : shared_objs) {
        if (o.n != 0 && (!intact(o) || is_pmalloc_object(o.p, o.n) != PMALLOC_OBJECT_OK)) ++errors;
      }
      for (int k = 0; k < 50; ++k) {
        const Obj& a = anchors[rng() % anchors.size()];
        if (!intact(a) || is_pmalloc_object(a.p, a.n) != PMALLOC_OBJECT_OK ||
            is_pmalloc_object(a.p, a.n + 1) != PMALLOC_OBJECT_BAD) {
          ++errors;
        }
      }
      struct pmalloc_stats s {};
      if (pmalloc_pool_stats(mine, &s) != 0 || s.allocations_live != objs.size() - (objs.size() + 3) / 4) ++errors;
      pmalloc_destroy_pool(mine);
      {
        std::lock_guard<std::mutex> lock(shared_mutex);
        for (const Obj& o : shared_objs) {
          if (o.n != 0) kept.push_back(o);
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);

  ASSERT_EQ(pmalloc_protect_pool(shared), 0);
  struct pmalloc_stats s {};
  ASSERT_EQ(pmalloc_pool_stats(shared, &s), 0);
  EXPECT_EQ(s.allocations_live, kept.size());
  for (const Obj& o : kept) {
    ASSERT_TRUE(intact(o));
    ASSERT_EQ(is_pmalloc_object(o.p, o.n), PMALLOC_OBJECT_OK);
  }
  for (pmalloc_pool* p : {shared, anchor}) {
    pmalloc::internal::PoolGuard guard(pmalloc::internal::from_handle(p));
    EXPECT_TRUE(pmalloc::internal::pool_check(pmalloc::internal::from_handle(p)));
  }
  pmalloc_destroy_pool(shared);
  pmalloc_destroy_pool(anchor);
}

}  // namespace
