// Write-rare update latency (issue 3): an 8-byte wr_assign through the writer of this
// process, side by side with a naive mprotect RW -> write -> RO window on the same kind
// of page, with one thread and with a second thread reading the page; and a batch of 64
// scattered 8-byte updates against one update.
//
// The writer is chosen once per process, so run the binary once per writer:
//   for b in procmem alias mprotect; do PMALLOC_WR_BACKEND=$b build/bench/wr_latency_bench; done
// (pkey only where the CPU has protection keys). Results: docs/bench/wr.md.
#include <benchmark/benchmark.h>
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

struct ReaderThread {  // keeps reading `word` on another CPU (forces TLB shootdowns)
  explicit ReaderThread(const long* word) : word_(word), thread_([this] {
    long sum = 0;
    while (!stop_.load(std::memory_order_relaxed)) sum += __atomic_load_n(word_, __ATOMIC_RELAXED);
    benchmark::DoNotOptimize(sum);
  }) {}
  ~ReaderThread() {
    stop_ = true;
    thread_.join();
  }
  const long* word_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct WrPool {
  WrPool() {
    pool = pmalloc_create_pool("bench-wr", PMALLOC_WR);
    // 64 fields spread over 16 KiB: one per 256 bytes, in separate allocations.
    for (int i = 0; i < 64; ++i) fields.push_back(static_cast<long*>(pzalloc(pool, 256)));
    if (pmalloc_protect_pool(pool) != 0) std::abort();
  }
  ~WrPool() { pmalloc_destroy_pool(pool); }
  pmalloc_pool* pool;
  std::vector<long*> fields;
};

void label(benchmark::State& state) { state.SetLabel(pmalloc_wr_backend()); }

void BM_WrAssign(benchmark::State& state) {
  WrPool p;
  std::unique_ptr<ReaderThread> reader;
  if (state.range(0) != 0) reader = std::make_unique<ReaderThread>(p.fields[0]);
  long v = 0;
  for (auto _ : state) {
    if (!wr_assign(*p.fields[0], ++v)) state.SkipWithError(pmalloc_last_error());
  }
  label(state);
}
BENCHMARK(BM_WrAssign)->Arg(0)->Arg(1)->ArgName("reader")->UseRealTime();

void BM_NaiveMprotectWindow(benchmark::State& state) {
  const std::size_t page = 4096, size = 64 * page;
  auto* base = static_cast<char*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (std::size_t i = 0; i < size; i += page) base[i] = 1;
  mprotect(base, size, PROT_READ);
  char* target = base + 8 * page;  // a page inside a larger read-only mapping, as in a pool
  auto* word = reinterpret_cast<long*>(target);
  std::unique_ptr<ReaderThread> reader;
  if (state.range(0) != 0) reader = std::make_unique<ReaderThread>(word);
  long v = 0;
  for (auto _ : state) {
    mprotect(target, page, PROT_READ | PROT_WRITE);
    __atomic_store_n(word, ++v, __ATOMIC_RELEASE);
    mprotect(target, page, PROT_READ);
  }
  reader.reset();
  munmap(base, size);
}
BENCHMARK(BM_NaiveMprotectWindow)->Arg(0)->Arg(1)->ArgName("reader")->UseRealTime();

// 64 scattered 8-byte updates in one batch (one iteration = the whole batch).
void BM_WrBatch64(benchmark::State& state) {
  WrPool p;
  std::vector<long> values(64);
  std::vector<wr_batch_op> ops;
  for (int i = 0; i < 64; ++i) ops.push_back(wr_batch_op{p.fields[(i * 37) % 64], &values[i], sizeof(long)});
  for (auto _ : state) {
    for (long& x : values) ++x;
    if (!wr_memcpy_batch(ops.data(), ops.size())) state.SkipWithError(pmalloc_last_error());
  }
  label(state);
}
BENCHMARK(BM_WrBatch64)->UseRealTime();

// The same 64 updates one by one, for reference.
void BM_WrSingle64(benchmark::State& state) {
  WrPool p;
  long v = 0;
  for (auto _ : state) {
    ++v;
    for (int i = 0; i < 64; ++i) {
      if (!wr_assign(*p.fields[(i * 37) % 64], v)) state.SkipWithError(pmalloc_last_error());
    }
  }
  label(state);
}
BENCHMARK(BM_WrSingle64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
