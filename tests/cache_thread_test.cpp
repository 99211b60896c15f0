// Sealed object caches: concurrency. Several threads create and free objects of one
// cache (single and batched) while checking their own objects; readers of live objects
// never see a byte change while other threads write neighbouring slots; a racing double
// free succeeds exactly once. Run under ThreadSanitizer in the tsan tier.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cache/cache_test_support.hpp"

using namespace cache_test;

namespace {

class CacheThreads : public CacheTest {};

TEST_F(CacheThreads, ConcurrentCreationAndFreeing) {
  pmalloc_cache* c = pmalloc_cache_create("threads", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  constexpr int kThreads = 4;
  const int kRounds = static_cast<int>(reduced_volume() ? 400 : 1500);
  std::atomic<int> failures{0};
  std::vector<std::vector<std::pair<const Record*, std::uint64_t>>> kept(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<unsigned>(t) + 1);
      auto& mine = kept[t];
      std::uint64_t seq = static_cast<std::uint64_t>(t) << 40;
      for (int i = 0; i < kRounds; ++i) {
        const Record* r = make_record(c, seq);
        if (r == nullptr || !record_ok(r, seq)) {
          failures++;
          return;
        }
        mine.emplace_back(r, seq++);
        if (i % 50 == 49) {
          // A batch, checked and mostly freed again.
          std::vector<const void*> batch(40);
          struct Ctx {
            std::uint64_t base;
          } ctx{seq};
          auto init = [](void* staging, const void* self, std::size_t k, void* arg) -> int {
            std::uint64_t s = static_cast<Ctx*>(arg)->base + k;
            return record_init(staging, self, &s);
          };
          if (pmalloc_cache_alloc_init_many(c, batch.size(), batch.data(), init, &ctx) != 0) {
            failures++;
            return;
          }
          for (std::size_t k = 0; k < batch.size(); ++k) {
            if (!record_ok(static_cast<const Record*>(batch[k]), seq + k)) failures++;
          }
          mine.emplace_back(static_cast<const Record*>(batch[0]), seq);
          if (pmalloc_cache_free_many(c, batch.data() + 1, batch.size() - 1) != 0) failures++;
          seq += batch.size();
        }
        if ((rng() % 3) == 0 && !mine.empty()) {
          const std::size_t k = rng() % mine.size();
          if (!record_ok(mine[k].first, mine[k].second) || pmalloc_cache_free(c, mine[k].first) != 0) failures++;
          mine[k] = mine.back();
          mine.pop_back();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::size_t total = 0;
  for (auto& mine : kept) {
    total += mine.size();
    for (auto& [r, s] : mine) ASSERT_TRUE(record_ok(r, s));
  }
  EXPECT_EQ(stats_of(c).allocations_live, total);
  EXPECT_TRUE(pmalloc::internal::cache_check(desc(c)));
  pmalloc_cache_destroy(c);
}

TEST_F(CacheThreads, ReadersNeverSeeLiveObjectsChange) {
  pmalloc_cache* c = pmalloc_cache_create("readers", 64, 0, 0);
  ASSERT_NE(c, nullptr);
  // Every other slot of the first pages holds a stable object; writers fill and free the
  // slots between them, so every write lands right next to objects being read.
  std::vector<const void*> all(630);
  auto init = [](void* staging, const void*, std::size_t i, void*) -> int {
    std::memset(staging, static_cast<int>(i % 200) + 1, 64);
    return 0;
  };
  ASSERT_EQ(pmalloc_cache_alloc_init_many(c, all.size(), all.data(), init, nullptr), 0);
  std::vector<const void*> stable, gaps;
  for (std::size_t i = 0; i < all.size(); ++i) (i % 2 == 0 ? stable : gaps).push_back(all[i]);
  ASSERT_EQ(pmalloc_cache_free_many(c, gaps.data(), gaps.size()), 0);

  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      for (std::size_t k = 0; k < stable.size(); ++k) {
        const auto* b = static_cast<const unsigned char*>(stable[k]);
        const unsigned char want = static_cast<unsigned char>((2 * k) % 200 + 1);
        for (std::size_t i = 0; i < 64; ++i) {
          if (b[i] != want) bad++;
        }
      }
    }
  });
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < 400; ++i) {
        std::pair<int, int> v{i, 0};
        std::pair<const void*, std::size_t> src{&v, sizeof v};
        const void* p = pmalloc_cache_alloc_init(c, copy_init, &src);
        if (p == nullptr || pmalloc_cache_free(c, p) != 0) failures++;
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheThreads, RacingDoubleFreeSucceedsOnce) {
  pmalloc_cache* c = pmalloc_cache_create("double", 32, 0, 0);
  ASSERT_NE(c, nullptr);
  for (int round = 0; round < 200; ++round) {
    int v = round;
    std::pair<const void*, std::size_t> src{&v, sizeof v};
    const void* p = pmalloc_cache_alloc_init(c, copy_init, &src);
    ASSERT_NE(p, nullptr);
    std::atomic<int> ok{0}, refused{0};
    auto free_it = [&] { (pmalloc_cache_free(c, p) == 0 ? ok : refused)++; };
    std::thread a(free_it), b(free_it);
    a.join();
    b.join();
    ASSERT_EQ(ok.load(), 1);
    ASSERT_EQ(refused.load(), 1);
  }
  EXPECT_EQ(stats_of(c).allocations_live, 0u);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheThreads, SeveralCachesInParallel) {
  constexpr int kThreads = 3;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 5; ++k) {
        pmalloc_cache* c = pmalloc_cache_create("parallel", 24 + 8 * static_cast<std::size_t>(t), 0,
                                                k % 2 == 0 ? 0u : unsigned{PMALLOC_SEAL});
        if (c == nullptr) {
          failures++;
          return;
        }
        for (std::uint64_t i = 0; i < 200; ++i) {
          std::pair<const void*, std::size_t> src{&i, sizeof i};
          const void* p = pmalloc_cache_alloc_init(c, copy_init, &src);
          if (p == nullptr || std::memcmp(p, &i, sizeof i) != 0) failures++;
        }
        pmalloc_cache_destroy(c);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
