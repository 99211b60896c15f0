// execmem benchmarks (Google Benchmark). Results and the command line: docs/bench/execmem.md.
//
//   Pages/*       10,000 functions of 100-300 bytes: text pages used by execmem (page by
//                 page, and with 2 MiB huge-page packs) against one mmap per function;
//                 counters: pages, the physical minimum ceil(bytes / 4096), their ratio,
//                 and the mappings the process gained. Run once each (no timing).
//   Update/*      rewriting n bytes of live code: execmem_update_copy (the writer, here
//                 /proc/self/mem) against an mprotect RX -> RW -> RX flip of the page.
//   Load/*        publishing a new function: execmem_alloc + update + free against
//                 mmap + memcpy + mprotect(RX) + munmap.
//   Call/*        call throughput: one JIT function in a pack against the same function
//                 compiled statically; then round-robin over 1,024 distinct functions,
//                 packed by execmem, compiled statically, or one mmap per function
//                 (where every call touches another page: iTLB misses).
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "pmalloc/pmalloc.h"

namespace {

const std::size_t kPage = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

std::size_t count_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

// AnonHugePages of the whole process, in kB (/proc/self/smaps_rollup).
long anon_huge_kb() {
  std::ifstream rollup("/proc/self/smaps_rollup");
  for (std::string line; std::getline(rollup, line);) {
    if (line.rfind("AnonHugePages:", 0) == 0) return std::strtol(line.c_str() + 14, nullptr, 10);
  }
  return 0;
}

// A function of `size` bytes returning `value`: nop padding, mov eax, imm32; ret.
std::vector<std::uint8_t> padded_function(std::uint32_t value, std::size_t size) {
  std::vector<std::uint8_t> c(size - 6, 0x90);
  c.push_back(0xb8);
  for (int i = 0; i < 4; ++i) c.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
  c.push_back(0xc3);
  return c;
}

std::vector<std::size_t> function_sizes() {
  std::mt19937 rng(10000);
  std::vector<std::size_t> sizes(10000);
  for (auto& s : sizes) s = 100 + rng() % 201;
  return sizes;
}

void pages_execmem(benchmark::State& state, bool huge) {
  const std::vector<std::size_t> sizes = function_sizes();
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  for (auto _ : state) {
    (void)execmem_set_hugepages(huge ? 1 : 0);
    execmem_stats before{}, after{};
    (void)execmem_get_stats(EXECMEM_TEXT, &before);
    const std::size_t maps_before = count_mappings();
    const long huge_before = anon_huge_kb();
    std::vector<void*> fns;
    fns.reserve(sizes.size());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      void* p = execmem_alloc(EXECMEM_TEXT, sizes[i]);
      if (p == nullptr) {
        state.SkipWithError("execmem_alloc failed");
        return;
      }
      const std::vector<std::uint8_t> code = padded_function(static_cast<std::uint32_t>(i), sizes[i]);
      (void)execmem_update_copy(p, code.data(), code.size());
      fns.push_back(p);
    }
    (void)execmem_get_stats(EXECMEM_TEXT, &after);
    const double pages = static_cast<double>(after.bytes_committed - before.bytes_committed) / static_cast<double>(kPage);
    const double minimum = static_cast<double>((total + kPage - 1) / kPage);
    state.counters["pages"] = pages;
    state.counters["min_pages"] = minimum;
    state.counters["ratio"] = pages / minimum;
    state.counters["packs"] = static_cast<double>(after.packs - before.packs);
    state.counters["thp_kB"] = static_cast<double>(anon_huge_kb() - huge_before);
    state.counters["new_mappings"] = static_cast<double>(count_mappings()) - static_cast<double>(maps_before);
    for (void* p : fns) (void)execmem_free(p);
    (void)execmem_set_hugepages(0);
  }
}
void BM_Pages_Execmem(benchmark::State& state) { pages_execmem(state, false); }
void BM_Pages_ExecmemHugePacks(benchmark::State& state) { pages_execmem(state, true); }

void BM_Pages_MmapPerFunction(benchmark::State& state) {
  const std::vector<std::size_t> sizes = function_sizes();
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  for (auto _ : state) {
    const std::size_t maps_before = count_mappings();
    std::vector<std::pair<void*, std::size_t>> maps;
    std::size_t pages = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::size_t len = (sizes[i] + kPage - 1) / kPage * kPage;
      void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        state.SkipWithError("mmap failed");
        return;
      }
      const std::vector<std::uint8_t> code = padded_function(static_cast<std::uint32_t>(i), sizes[i]);
      std::memcpy(p, code.data(), code.size());
      (void)mprotect(p, len, PROT_READ | PROT_EXEC);
      maps.emplace_back(p, len);
      pages += len / kPage;
    }
    const double minimum = static_cast<double>((total + kPage - 1) / kPage);
    state.counters["pages"] = static_cast<double>(pages);
    state.counters["min_pages"] = minimum;
    state.counters["ratio"] = static_cast<double>(pages) / minimum;
    state.counters["new_mappings"] = static_cast<double>(count_mappings()) - static_cast<double>(maps_before);
    for (auto& [p, len] : maps) munmap(p, len);
  }
}

void BM_Update_Execmem(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  void* keep = execmem_alloc(EXECMEM_TEXT, 4096);
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, n));
  const std::vector<std::uint8_t> a = padded_function(1, n), b = padded_function(2, n);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& code = (i++ & 1) ? a : b;
    if (execmem_update_copy(p, code.data(), n) != 0) state.SkipWithError("update failed");
  }
  benchmark::DoNotOptimize(p[0]);
  (void)execmem_free(p);
  (void)execmem_free(keep);
}

void BM_Update_MprotectFlip(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto* p = static_cast<unsigned char*>(mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  const std::vector<std::uint8_t> a = padded_function(1, n), b = padded_function(2, n);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& code = (i++ & 1) ? a : b;
    mprotect(p, kPage, PROT_READ | PROT_WRITE);  // RX -> RW -> RX: never W+X
    std::memcpy(p, code.data(), n);
    mprotect(p, kPage, PROT_READ | PROT_EXEC);
  }
  benchmark::DoNotOptimize(p[0]);
  munmap(p, kPage);
}

void BM_Load_Execmem(benchmark::State& state) {
  const std::vector<std::uint8_t> code = padded_function(7, 200);
  void* keep = execmem_alloc(EXECMEM_TEXT, 64);  // the pack stays, as in a running JIT
  for (auto _ : state) {
    void* p = execmem_alloc(EXECMEM_TEXT, code.size());
    (void)execmem_update_copy(p, code.data(), code.size());
    benchmark::DoNotOptimize(reinterpret_cast<int (*)()>(p)());
    (void)execmem_free(p);
  }
  (void)execmem_free(keep);
}

void BM_Load_Mmap(benchmark::State& state) {
  const std::vector<std::uint8_t> code = padded_function(7, 200);
  for (auto _ : state) {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::memcpy(p, code.data(), code.size());
    mprotect(p, kPage, PROT_READ | PROT_EXEC);
    benchmark::DoNotOptimize(reinterpret_cast<int (*)()>(p)());
    munmap(p, kPage);
  }
}

// ---- call throughput ---------------------------------------------------------------
// f_N(x) = x * 7 + N, compiled statically; the JIT copies are made from them (jit_fn).
template <int N>
[[gnu::noinline]] int static_fn(int x) {
  return x * 7 + N;
}
template <std::size_t... I>
constexpr std::array<int (*)(int), sizeof...(I)> static_table(std::index_sequence<I...>) {
  return {&static_fn<static_cast<int>(I)>...};
}
constexpr std::size_t kFunctions = 1024;
const auto kStatic = static_table(std::make_index_sequence<kFunctions>{});

// The JIT version of f_N is a copy of the compiler's own machine code for static_fn<N>
// (position independent, at most 16 bytes: the functions are 16 bytes apart), so the
// static and the execmem variants run byte-identical code and differ only in placement.
std::vector<std::uint8_t> jit_fn(std::uint32_t n) {
  const auto* code = reinterpret_cast<const std::uint8_t*>(kStatic[n]);
  return std::vector<std::uint8_t>(code, code + 16);
}

// The table escapes (DoNotOptimize on its address, then a memory clobber), so the
// compiler cannot see which function is called: every call is a real indirect call.
void call_loop(benchmark::State& state, std::vector<int (*)(int)> fns) {
  const std::size_t count = fns.size();  // a power of two
  auto* table = fns.data();
  benchmark::DoNotOptimize(table);
  benchmark::ClobberMemory();
  int acc = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    acc = table[i](acc) & 0xffff;
    i = (i + 1) & (count - 1);
  }
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_Call_Static(benchmark::State& state) {
  call_loop(state, {kStatic[3]});
}

void BM_Call_Execmem(benchmark::State& state) {
  const std::vector<std::uint8_t> code = jit_fn(3);
  void* p = execmem_alloc(EXECMEM_TEXT, code.size());
  (void)execmem_update_copy(p, code.data(), code.size());
  call_loop(state, {reinterpret_cast<int (*)(int)>(p)});
  (void)execmem_free(p);
}

// The same code alone in a page of its own (a JIT without packing): like execmem's copy,
// it lies far from the caller, unlike the static function.
void BM_Call_MmapOne(benchmark::State& state) {
  const std::vector<std::uint8_t> code = jit_fn(3);
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  std::memcpy(p, code.data(), code.size());
  mprotect(p, kPage, PROT_READ | PROT_EXEC);
  call_loop(state, {reinterpret_cast<int (*)(int)>(p)});
  munmap(p, kPage);
}

void BM_Call1024_Static(benchmark::State& state) { call_loop(state, {kStatic.begin(), kStatic.end()}); }

void BM_Call1024_Execmem(benchmark::State& state) {
  std::vector<int (*)(int)> fns;
  for (std::size_t i = 0; i < kFunctions; ++i) {
    const std::vector<std::uint8_t> code = jit_fn(static_cast<std::uint32_t>(i));
    void* p = execmem_alloc(EXECMEM_TEXT, code.size());
    (void)execmem_update_copy(p, code.data(), code.size());
    fns.push_back(reinterpret_cast<int (*)(int)>(p));
  }
  call_loop(state, fns);
  for (auto f : fns) (void)execmem_free(reinterpret_cast<void*>(f));
}

void BM_Call1024_MmapPerFunction(benchmark::State& state) {
  std::vector<int (*)(int)> fns;
  for (std::size_t i = 0; i < kFunctions; ++i) {
    const std::vector<std::uint8_t> code = jit_fn(static_cast<std::uint32_t>(i));
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::memcpy(p, code.data(), code.size());
    mprotect(p, kPage, PROT_READ | PROT_EXEC);
    fns.push_back(reinterpret_cast<int (*)(int)>(p));
  }
  call_loop(state, fns);
  for (auto f : fns) munmap(reinterpret_cast<void*>(f), kPage);
}

BENCHMARK(BM_Pages_Execmem)->Iterations(1);
BENCHMARK(BM_Pages_ExecmemHugePacks)->Iterations(1);
BENCHMARK(BM_Pages_MmapPerFunction)->Iterations(1);
BENCHMARK(BM_Update_Execmem)->Arg(8)->Arg(200);
BENCHMARK(BM_Update_MprotectFlip)->Arg(8)->Arg(200);
BENCHMARK(BM_Load_Execmem);
BENCHMARK(BM_Load_Mmap);
BENCHMARK(BM_Call_Static);
BENCHMARK(BM_Call_Execmem);
BENCHMARK(BM_Call_MmapOne);
BENCHMARK(BM_Call1024_Static);
BENCHMARK(BM_Call1024_Execmem);
BENCHMARK(BM_Call1024_MmapPerFunction);

}  // namespace

BENCHMARK_MAIN();
