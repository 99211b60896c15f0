// bpf-jit-demo: compiles classic BPF packet filters (tcpdump -dd syntax) to x86-64 with
// pmalloc's execmem and runs them next to the reference interpreter.
//
//   bpf-jit-demo                  the built-in filter ('ip and tcp dst port 80')
//   bpf-jit-demo filter.dd        a filter from `tcpdump -dd '<expression>' > filter.dd`
//
// It prints the program, the size of the generated code, where the code lives and with
// which permissions (/proc/self/maps), and the verdicts of JIT and interpreter on a
// stream of synthetic packets, then packs 10,000 compiled filters to show how few pages
// they need.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>

#include "bpf.hpp"
#include "bpf_jit.hpp"
#include "bpf_random.hpp"

namespace {

const char* const kDefaultFilter =
    "{ 0x28, 0, 0, 0x0000000c }, { 0x15, 0, 8, 0x00000800 }, { 0x30, 0, 0, 0x00000017 },"
    "{ 0x15, 0, 6, 0x00000006 }, { 0x28, 0, 0, 0x00000014 }, { 0x45, 4, 0, 0x00001fff },"
    "{ 0xb1, 0, 0, 0x0000000e }, { 0x48, 0, 0, 0x00000010 }, { 0x15, 0, 1, 0x00000050 },"
    "{ 0x6, 0, 0, 0x00040000 }, { 0x6, 0, 0, 0x00000000 }";

std::string perms_of(const void* p) {
  std::ifstream maps("/proc/self/maps");
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (std::string line; std::getline(maps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) return perms;
  }
  return "?";
}

// Ethernet + IPv4 + TCP with a random port, sometimes 80.
std::vector<std::uint8_t> packet(std::mt19937_64& rng) {
  std::vector<std::uint8_t> p(54 + rng() % 64, 0);
  p[12] = 0x08;
  p[14] = 0x45;
  p[23] = rng() % 4 == 0 ? 17 : 6;
  const std::uint16_t port = rng() % 3 == 0 ? 80 : static_cast<std::uint16_t>(rng());
  p[36] = static_cast<std::uint8_t>(port >> 8);
  p[37] = static_cast<std::uint8_t>(port);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string text = kDefaultFilter;
  if (argc > 1) {
    std::ifstream in(argv[1]);
    if (!in) {
      std::fprintf(stderr, "bpf-jit-demo: cannot read %s\n", argv[1]);
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  try {
    const bpf::Program prog = bpf::parse_dd(text);
    std::cout << bpf::disassemble(prog);
    const bpf::Filter filter(prog);
    std::printf("compiled %zu instructions to %zu bytes of x86-64 at %p (%s)\n", prog.size(), filter.code_size(),
                reinterpret_cast<void*>(filter.function()), perms_of(reinterpret_cast<void*>(filter.function())).c_str());

    std::mt19937_64 rng(1);
    long accepted = 0, disagreements = 0;
    const int n = 100000;
    for (int i = 0; i < n; ++i) {
      const auto p = packet(rng);
      const auto len = static_cast<std::uint32_t>(p.size());
      const std::uint32_t jit = filter(p.data(), len);
      disagreements += jit != bpf::interpret(prog, p.data(), len) ? 1 : 0;
      accepted += jit != 0 ? 1 : 0;
    }
    std::printf("%d packets: %ld accepted, %ld disagreements between JIT and interpreter\n", n, accepted,
                disagreements);

    // Many small filters share text pages (execmem packs them at 64-byte granularity).
    pmalloc::CodeArena arena;
    std::size_t bytes = 0;
    for (int i = 0; i < 10000; ++i) {
      const bpf::Program p = bpf::random_program(rng, 8 + rng() % 24);
      const std::vector<std::uint8_t> code = bpf::compile_x86_64(p);
      bytes += code.size();
      arena.add<bpf::FilterFn>(code);
    }
    const pmalloc::ExecStats s = pmalloc::exec_stats(pmalloc::ExecType::text);
    std::printf("10000 random filters: %zu bytes of code in %zu text pages (%zu pages if each had its own mmap)\n",
                bytes, s.bytes_committed / 4096, std::size_t{10000});
    return disagreements == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bpf-jit-demo: %s\n", e.what());
    return 1;
  }
}
