// JIT vs interpreter for classic BPF (Google Benchmark). Each iteration filters one packet
// from a fixed set of 1,024 synthetic Ethernet/IPv4 packets; items/s = packets/s.
//   build-*/examples/jit/bpf_jit_bench --benchmark_min_time=0.5
// Results: docs/bench/execmem.md.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "bpf.hpp"
#include "bpf_jit.hpp"
#include "bpf_random.hpp"

namespace {

const char* const kTcpDstPort80 =
    "{ 0x28, 0, 0, 0x0000000c }, { 0x15, 0, 8, 0x00000800 }, { 0x30, 0, 0, 0x00000017 },"
    "{ 0x15, 0, 6, 0x00000006 }, { 0x28, 0, 0, 0x00000014 }, { 0x45, 4, 0, 0x00001fff },"
    "{ 0xb1, 0, 0, 0x0000000e }, { 0x48, 0, 0, 0x00000010 }, { 0x15, 0, 1, 0x00000050 },"
    "{ 0x6, 0, 0, 0x00040000 }, { 0x6, 0, 0, 0x00000000 }";

// A straight-line arithmetic filter of 64 instructions: loads, ALU, scratch memory.
bpf::Program arithmetic_program() {
  using namespace bpf::op;
  bpf::Program p;
  for (int i = 0; i < 15; ++i) {
    p.push_back(bpf::stmt(LD | B | ABS, static_cast<std::uint32_t>(14 + i)));
    p.push_back(bpf::stmt(ALU | MUL | K, 31));
    p.push_back(bpf::stmt(ALU | ADD | X, 0));
    p.push_back(bpf::stmt(MISC | TAX, 0));
  }
  p.push_back(bpf::stmt(ST, 0));
  p.push_back(bpf::stmt(LD | W | MEM, 0));
  p.push_back(bpf::stmt(ALU | AND | K, 0xffff));
  p.push_back(bpf::stmt(RET | A, 0));
  return p;
}

struct Packets {
  std::vector<std::vector<std::uint8_t>> all;
  Packets() {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 1024; ++i) {
      std::vector<std::uint8_t> p(60 + rng() % 200);
      for (auto& b : p) b = static_cast<std::uint8_t>(rng());
      p[12] = 0x08;
      p[13] = 0x00;
      p[14] = 0x45;
      p[20] = 0;
      p[21] = 0;
      p[23] = rng() % 2 ? 6 : 17;
      if (rng() % 2) p[36] = 0, p[37] = 80;
      all.push_back(std::move(p));
    }
  }
};
const Packets& packets() {
  static const Packets p;
  return p;
}

template <class Run>
void filter_loop(benchmark::State& state, Run run) {
  const auto& all = packets().all;
  std::size_t i = 0;
  std::uint64_t accepted = 0;
  for (auto _ : state) {
    const auto& p = all[i++ & 1023];
    accepted += run(p.data(), static_cast<std::uint32_t>(p.size()));
  }
  benchmark::DoNotOptimize(accepted);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_TcpPort80_Interpreter(benchmark::State& state) {
  const bpf::Program prog = bpf::parse_dd(kTcpDstPort80);
  filter_loop(state, [&](const std::uint8_t* p, std::uint32_t n) { return bpf::interpret(prog, p, n); });
}
void BM_TcpPort80_Jit(benchmark::State& state) {
  const bpf::Filter f(bpf::parse_dd(kTcpDstPort80));
  bpf::FilterFn* fn = f.function();
  benchmark::DoNotOptimize(fn);
  filter_loop(state, [&](const std::uint8_t* p, std::uint32_t n) { return fn(p, n); });
}
void BM_Arithmetic64_Interpreter(benchmark::State& state) {
  const bpf::Program prog = arithmetic_program();
  filter_loop(state, [&](const std::uint8_t* p, std::uint32_t n) { return bpf::interpret(prog, p, n); });
}
void BM_Arithmetic64_Jit(benchmark::State& state) {
  const bpf::Filter f(arithmetic_program());
  bpf::FilterFn* fn = f.function();
  benchmark::DoNotOptimize(fn);
  filter_loop(state, [&](const std::uint8_t* p, std::uint32_t n) { return fn(p, n); });
}
// Compilation cost: check + code generation + execmem_alloc + execmem_update_copy + free.
void BM_CompileAndLoad_TcpPort80(benchmark::State& state) {
  const bpf::Program prog = bpf::parse_dd(kTcpDstPort80);
  for (auto _ : state) {
    bpf::Filter f(prog);
    benchmark::DoNotOptimize(f.function());
  }
}

BENCHMARK(BM_TcpPort80_Interpreter);
BENCHMARK(BM_TcpPort80_Jit);
BENCHMARK(BM_Arithmetic64_Interpreter);
BENCHMARK(BM_Arithmetic64_Jit);
BENCHMARK(BM_CompileAndLoad_TcpPort80);

}  // namespace

BENCHMARK_MAIN();
