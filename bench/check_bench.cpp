// Object-check latency (issue 4 target: is_pmalloc_object <= 25 ns with 1,000 pools alive).
//
// 1,000 pools are created, each with a few allocations. The benchmarks then classify
// pointers picked at random over all pools (so the lookups are spread over the table, not
// one hot entry), pointers outside pmalloc memory, and bad ranges; the raw registry lookup
// is compared with the design it replaced (std::map + std::shared_mutex, rebuilt here with
// the same 1,000 reservations) side by side in one run.
// Results: docs/bench/hardening.md.
#include <benchmark/benchmark.h>
#include <pmalloc/pmalloc.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <vector>

#include "registry/registry.hpp"

namespace {

namespace registry = pmalloc::internal::registry;

constexpr int kPools = 1000;
constexpr int kPerPool = 8;

struct World {
  std::vector<pmalloc_pool*> pools;
  std::vector<char*> objects;          // kPools * kPerPool, shuffled
  std::vector<char*> heap;             // not pmalloc memory
  // The previous registry design, for comparison.
  std::shared_mutex lock;
  std::map<std::uintptr_t, std::pair<std::uintptr_t, void*>> map;

  World() {
    std::mt19937_64 rng(42);
    for (int i = 0; i < kPools; ++i) {
      pmalloc_pool* p = pmalloc_create_pool("bench", PMALLOC_RO);
      if (p == nullptr) std::abort();
      pools.push_back(p);
      for (int j = 0; j < kPerPool; ++j) objects.push_back(static_cast<char*>(pmalloc(p, 16 + 16 * (j % 4))));
      if (i % 2 == 0 && pmalloc_protect_pool(p) != 0) std::abort();
      registry::Entry e;
      if (!registry::lookup(p, &e)) std::abort();
      map[e.begin] = {e.end, e.region};
    }
    std::shuffle(objects.begin(), objects.end(), rng);
    for (int i = 0; i < 1024; ++i) heap.push_back(new char[64]);
  }
};

World& world() {
  static World* w = new World;
  return *w;
}

void* map_find(World& w, const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::shared_lock guard(w.lock);
  auto it = w.map.upper_bound(a);
  if (it == w.map.begin()) return nullptr;
  --it;
  return a < it->second.first ? it->second.second : nullptr;
}

void BM_IsPmallocObject_Ok(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(is_pmalloc_object(w.objects[i], 16));
    i = (i + 1) % w.objects.size();
  }
  state.counters["pools"] = static_cast<double>(w.pools.size());
}
BENCHMARK(BM_IsPmallocObject_Ok);

// The same few objects over and over (their metadata stays in cache): the lookup itself.
void BM_IsPmallocObject_OkHot(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(is_pmalloc_object(w.objects[i], 16));
    i = (i + 1) % 16;
  }
}
BENCHMARK(BM_IsPmallocObject_OkHot);

void BM_IsPmallocObject_Bad(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(is_pmalloc_object(w.objects[i] + 8, 64));  // crosses the end
    i = (i + 1) % w.objects.size();
  }
}
BENCHMARK(BM_IsPmallocObject_Bad);

void BM_IsPmallocObject_None(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(is_pmalloc_object(w.heap[i], 64));
    i = (i + 1) % w.heap.size();
  }
}
BENCHMARK(BM_IsPmallocObject_None);

void BM_UsercopyCheck_Ok(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : state) {
    pmalloc_usercopy_check(w.objects[i], 16, false);
    i = (i + 1) % w.objects.size();
  }
}
BENCHMARK(BM_UsercopyCheck_Ok);

void BM_RegistryFind(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(registry::find(w.objects[i]));
    i = (i + 1) % w.objects.size();
  }
}
BENCHMARK(BM_RegistryFind);

void BM_MapSharedMutexFind(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(map_find(w, w.objects[i]));
    i = (i + 1) % w.objects.size();
  }
}
BENCHMARK(BM_MapSharedMutexFind);

// Two threads looking up at once: lock-free reads scale, a shared_mutex's counter does not.
BENCHMARK(BM_RegistryFind)->Threads(2);
BENCHMARK(BM_MapSharedMutexFind)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
