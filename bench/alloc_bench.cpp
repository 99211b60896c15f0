// Allocation fast path: pmalloc(pool, 64) and pfree against glibc malloc/free, on memory
// that is already resident (no page faults), so only the allocators' own work is timed.
//
// Each iteration allocates a batch of 4,096 objects and frees them again in reverse (a
// rollback for the pool: the cursor returns to where it was, so every batch reuses the
// same pages). The timed part is the allocation loop; the frees run with the timer paused
// in the *Alloc* benchmarks and are timed in the *AllocFree* ones. Items = allocations.
//
//   build-bench/bench/alloc_bench [--threaded] --benchmark_repetitions=10 \
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
// --threaded starts (and joins) a thread first: neither allocator may then take its
// single-thread shortcuts (glibc never returns to single-threaded mode).
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <pmalloc/pmalloc.h>

#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kBatch = 4096;
constexpr std::size_t kSize = 64;

struct PoolAlloc {
  pmalloc_pool* pool = pmalloc_create_pool("alloc_bench", PMALLOC_RO);
  PoolAlloc() {
    if (pool == nullptr) std::abort();
  }
  ~PoolAlloc() { pmalloc_destroy_pool(pool); }
  void* alloc() { return pmalloc(pool, kSize); }
  void release(void* p) {
    if (pfree(pool, p) != 0) std::abort();
  }
};

struct MallocAlloc {
  MallocAlloc() {
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // keep freed heap memory resident, as the pool does
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
  }
  void* alloc() { return std::malloc(kSize); }
  void release(void* p) { std::free(p); }
};

template <class A>
void batch(benchmark::State& state, A& a, std::vector<void*>& objects, bool time_free) {
  for (std::size_t i = 0; i < kBatch; ++i) {
    objects[i] = a.alloc();
    if (objects[i] == nullptr) std::abort();
  }
  benchmark::DoNotOptimize(objects.data());
  if (!time_free) state.PauseTiming();
  for (std::size_t i = kBatch; i-- > 0;) a.release(objects[i]);
  if (!time_free) state.ResumeTiming();
}

template <class A>
void run(benchmark::State& state, bool time_free) {
  A a;
  std::vector<void*> objects(kBatch);
  batch(state, a, objects, true);  // warm-up: the pages become resident
  for (auto _ : state) batch(state, a, objects, time_free);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void BM_Alloc_Pmalloc(benchmark::State& state) { run<PoolAlloc>(state, false); }
void BM_Alloc_Malloc(benchmark::State& state) { run<MallocAlloc>(state, false); }
void BM_AllocFree_Pmalloc(benchmark::State& state) { run<PoolAlloc>(state, true); }
void BM_AllocFree_Malloc(benchmark::State& state) { run<MallocAlloc>(state, true); }

BENCHMARK(BM_Alloc_Pmalloc);
BENCHMARK(BM_Alloc_Malloc);
BENCHMARK(BM_AllocFree_Pmalloc);
BENCHMARK(BM_AllocFree_Malloc);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--threaded") {
      std::thread([] {}).join();
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
