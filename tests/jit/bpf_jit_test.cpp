// The classic BPF JIT (examples/jit) against its reference interpreter: thousands of random
// valid programs run on random packets must give the same result compiled and
// interpreted; real tcpdump filters accept and drop the right packets; the checker refuses
// bad programs; and the compiled code sits in execmem text that nobody can write.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bpf.hpp"
#include "bpf_jit.hpp"
#include "bpf_random.hpp"

namespace {

using namespace bpf;
using namespace bpf::op;

// tcpdump -dd 'ip and tcp dst port 80' (Ethernet).
const char* const kTcpDstPort80 = R"(
{ 0x28, 0, 0, 0x0000000c },
{ 0x15, 0, 8, 0x00000800 },
{ 0x30, 0, 0, 0x00000017 },
{ 0x15, 0, 6, 0x00000006 },
{ 0x28, 0, 0, 0x00000014 },
{ 0x45, 4, 0, 0x00001fff },
{ 0xb1, 0, 0, 0x0000000e },
{ 0x48, 0, 0, 0x00000010 },
{ 0x15, 0, 1, 0x00000050 },
{ 0x6, 0, 0, 0x00040000 },
{ 0x6, 0, 0, 0x00000000 },
)";

// tcpdump -dd 'ip and udp port 53' (Ethernet).
const char* const kUdpPort53 = R"(
{ 0x28, 0, 0, 0x0000000c }, { 0x15, 0, 10, 0x00000800 },
{ 0x30, 0, 0, 0x00000017 }, { 0x15, 0, 8, 0x00000011 },
{ 0x28, 0, 0, 0x00000014 }, { 0x45, 6, 0, 0x00001fff },
{ 0xb1, 0, 0, 0x0000000e }, { 0x48, 0, 0, 0x0000000e },
{ 0x15, 2, 0, 0x00000035 }, { 0x48, 0, 0, 0x00000010 },
{ 0x15, 0, 1, 0x00000035 }, { 0x6, 0, 0, 0x00040000 },
{ 0x6, 0, 0, 0x00000000 }
)";

// IPv4 payload longer than 100 bytes: accept the payload length (ALU, X, RET A).
const Program kPayloadOver100 = {
    stmt(LD | H | ABS, 12),  jump(JMP | JEQ | K, 0x800, 0, 8), stmt(LD | B | ABS, 14), stmt(ALU | AND | K, 0xf),
    stmt(ALU | LSH | K, 2),  stmt(MISC | TAX, 0),               stmt(LD | H | ABS, 16), stmt(ALU | SUB | X, 0),
    jump(JMP | JGT | K, 100, 0, 1), stmt(RET | A, 0),           stmt(RET | K, 0),
};

// An Ethernet + IPv4 + TCP/UDP packet.
std::vector<std::uint8_t> ip_packet(std::uint8_t proto, std::uint16_t sport, std::uint16_t dport,
                                    std::size_t payload = 20, std::uint16_t frag = 0) {
  std::vector<std::uint8_t> p(14 + 20 + 8 + payload, 0);
  p[12] = 0x08;
  p[13] = 0x00;
  p[14] = 0x45;
  const std::size_t total = 20 + 8 + payload;
  p[16] = static_cast<std::uint8_t>(total >> 8);
  p[17] = static_cast<std::uint8_t>(total);
  p[20] = static_cast<std::uint8_t>(frag >> 8);
  p[21] = static_cast<std::uint8_t>(frag);
  p[22] = 64;
  p[23] = proto;
  p[34] = static_cast<std::uint8_t>(sport >> 8);
  p[35] = static_cast<std::uint8_t>(sport);
  p[36] = static_cast<std::uint8_t>(dport >> 8);
  p[37] = static_cast<std::uint8_t>(dport);
  return p;
}

std::uint32_t run_jit(const Filter& f, const std::vector<std::uint8_t>& p) {
  return f(p.data(), static_cast<std::uint32_t>(p.size()));
}
std::uint32_t run_interp(const Program& prog, const std::vector<std::uint8_t>& p) {
  return interpret(prog, p.data(), static_cast<std::uint32_t>(p.size()));
}

TEST(BpfJit, TcpdumpFilters) {
  const Program tcp80 = parse_dd(kTcpDstPort80);
  const Program udp53 = parse_dd(kUdpPort53);
  ASSERT_EQ(tcp80.size(), 11u);
  ASSERT_EQ(udp53.size(), 13u);
  Filter f_tcp(tcp80), f_udp(udp53), f_len(kPayloadOver100);

  struct Case {
    std::vector<std::uint8_t> packet;
    std::uint32_t tcp80, udp53, len;
  };
  std::vector<std::uint8_t> truncated = ip_packet(6, 1234, 80);
  truncated.resize(37);  // the port is cut in half
  std::vector<std::uint8_t> arp = ip_packet(6, 1, 80);
  arp[13] = 0x06;
  const std::vector<Case> cases = {
      {ip_packet(6, 1234, 80), 262144, 0, 0},
      {ip_packet(6, 80, 1234), 0, 0, 0},
      {ip_packet(17, 1234, 53), 0, 262144, 0},
      {ip_packet(17, 53, 9999, 200), 0, 262144, 208},
      {ip_packet(6, 1234, 80, 20, 0x0001), 0, 0, 0},  // a fragment: no TCP header to look at
      {ip_packet(6, 1234, 81, 300), 0, 0, 308},
      {truncated, 0, 0, 0},
      {arp, 0, 0, 0},
      {{}, 0, 0, 0},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(run_interp(tcp80, c.packet), c.tcp80);
    EXPECT_EQ(run_jit(f_tcp, c.packet), c.tcp80);
    EXPECT_EQ(run_interp(udp53, c.packet), c.udp53);
    EXPECT_EQ(run_jit(f_udp, c.packet), c.udp53);
    EXPECT_EQ(run_interp(kPayloadOver100, c.packet), c.len);
    EXPECT_EQ(run_jit(f_len, c.packet), c.len);
  }
}

TEST(BpfJit, RandomProgramsAgreeWithTheInterpreter) {
  std::mt19937_64 rng(20240601);
  pmalloc::CodeArena arena;  // all programs packed into shared text pages
  long compared = 0;
  for (int round = 0; round < 3000; ++round) {
    const Program prog = random_program(rng, 1 + rng() % 64);
    ASSERT_EQ(check(prog), "");
    FilterFn* fn = load(arena, prog);
    for (int k = 0; k < 8; ++k) {
      const std::vector<std::uint8_t> pkt = random_packet(rng, 96);
      const auto len = static_cast<std::uint32_t>(pkt.size());
      const std::uint32_t want = interpret(prog, pkt.data(), len);
      const std::uint32_t got = fn(pkt.data(), len);
      ASSERT_EQ(got, want) << "round " << round << ", packet of " << len << " bytes\n" << disassemble(prog);
      ++compared;
    }
    if (arena.blocks() >= 500) arena.clear();  // free in bulk: pages go back and get reused
  }
  EXPECT_EQ(compared, 24000);
}

TEST(BpfJit, LongProgramsAgreeWithTheInterpreter) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 40; ++round) {
    const Program prog = random_program(rng, 1000 + rng() % 3097);
    Filter f(prog);
    for (int k = 0; k < 10; ++k) {
      const std::vector<std::uint8_t> pkt = random_packet(rng, 128);
      ASSERT_EQ(run_jit(f, pkt), run_interp(prog, pkt)) << "round " << round;
    }
  }
}

TEST(BpfJit, EdgeSemantics) {
  const std::vector<std::uint8_t> pkt = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
  struct Case {
    Program prog;
    std::uint32_t want;
  };
  const std::vector<Case> cases = {
      {{stmt(LD | W | ABS, 0), stmt(RET | A, 0)}, 0x12345678},
      {{stmt(LD | H | ABS, 6), stmt(RET | A, 0)}, 0xdef0},
      {{stmt(LD | B | ABS, 7), stmt(RET | A, 0)}, 0xf0},
      {{stmt(LD | W | ABS, 5), stmt(RET | K, 1)}, 0},            // crosses the end
      {{stmt(LD | B | ABS, 0xffffffff), stmt(RET | K, 1)}, 0},   // far outside
      {{stmt(LD | W | ABS, 0x80000000), stmt(RET | K, 1)}, 0},
      {{stmt(LDX | W | IMM, 0xffffffff), stmt(LD | B | IND, 1), stmt(RET | K, 1)}, 0},  // X + k wraps in 32 bits
      {{stmt(LDX | W | IMM, 3), stmt(LD | H | IND, 1), stmt(RET | A, 0)}, 0x9abc},
      {{stmt(LD | W | IMM, 10), stmt(ALU | DIV | X, 0), stmt(RET | K, 5)}, 0},  // X == 0
      {{stmt(LD | W | IMM, 10), stmt(ALU | MOD | X, 0), stmt(RET | K, 5)}, 0},
      {{stmt(LD | W | IMM, 17), stmt(ALU | MOD | K, 5), stmt(RET | A, 0)}, 2},
      {{stmt(LD | W | IMM, 1), stmt(LDX | W | IMM, 33), stmt(ALU | LSH | X, 0), stmt(RET | A, 0)}, 2},  // 33 mod 32
      {{stmt(LD | W | IMM, 5), stmt(ALU | NEG, 0), stmt(RET | A, 0)}, 0xfffffffb},
      {{stmt(LD | W | MEM, 15), stmt(RET | A, 0)}, 0},  // scratch memory starts zeroed
      {{stmt(LD | W | IMM, 9), stmt(ST, 3), stmt(LD | W | IMM, 0), stmt(LDX | W | MEM, 3), stmt(MISC | TXA, 0),
        stmt(RET | A, 0)},
       9},
      {{stmt(LD | W | LEN, 0), stmt(RET | A, 0)}, 8},
      {{stmt(LDX | B | MSH, 0), stmt(MISC | TXA, 0), stmt(RET | A, 0)}, 8},  // 4 * (0x12 & 0xf)
      {{stmt(JMP | JA, 1), stmt(RET | K, 1), stmt(RET | K, 2)}, 2},
      {{stmt(LD | W | IMM, 6), jump(JMP | JSET | K, 4, 1, 0), stmt(RET | K, 1), stmt(RET | K, 2)}, 2},
      {{stmt(LD | W | IMM, 6), jump(JMP | JGE | K, 6, 0, 1), stmt(RET | K, 1), stmt(RET | K, 2)}, 1},
      {{stmt(LD | W | IMM, 6), jump(JMP | JGT | K, 6, 0, 1), stmt(RET | K, 1), stmt(RET | K, 2)}, 2},
      {{stmt(LD | W | IMM, 6), jump(JMP | JEQ | K, 6, 1, 1), stmt(RET | K, 1), stmt(RET | K, 2)}, 2},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    ASSERT_EQ(check(cases[i].prog), "") << i;
    Filter f(cases[i].prog);
    EXPECT_EQ(run_interp(cases[i].prog, pkt), cases[i].want) << "case " << i;
    EXPECT_EQ(run_jit(f, pkt), cases[i].want) << "case " << i;
  }
}

TEST(BpfJit, CheckerRefusesBadPrograms) {
  const std::vector<Program> bad = {
      {},
      {stmt(LD | W | IMM, 1)},                                    // no RET at the end
      {stmt(ALU | DIV | K, 0), stmt(RET | K, 0)},                 // / 0
      {stmt(ALU | LSH | K, 32), stmt(RET | K, 0)},                // shift too far
      {stmt(ST, 16), stmt(RET | K, 0)},                           // scratch index
      {stmt(JMP | JA, 1), stmt(RET | K, 0)},                      // jumps past the end
      {jump(JMP | JEQ | K, 0, 0, 1), stmt(RET | K, 0)},
      {stmt(0xffff, 0), stmt(RET | K, 0)},                        // unknown opcode
      {stmt(RET | X, 0)},
      Program(kMaxInsns + 1, stmt(RET | K, 0)),
  };
  for (const Program& p : bad) {
    EXPECT_NE(check(p), "");
    EXPECT_THROW(compile_x86_64(p), std::invalid_argument);
  }
  EXPECT_THROW(parse_dd("{ 0x28, 0, 0 }"), std::invalid_argument);
  EXPECT_THROW(parse_dd("{ 0x28, 0, 0, 0x100000000 }"), std::invalid_argument);
  EXPECT_THROW(parse_dd("{ 0x10000, 0, 0, 1 }"), std::invalid_argument);
  EXPECT_THROW(parse_dd("garbage"), std::invalid_argument);
}

TEST(BpfJit, CompiledCodeLivesInProtectedText) {
  Filter f(parse_dd(kTcpDstPort80));
  const auto a = reinterpret_cast<std::uintptr_t>(f.function());
  std::ifstream maps("/proc/self/maps");
  std::string perms;
  for (std::string line; std::getline(maps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    char p[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, p) == 3 && a >= lo && a < hi) perms = p;
  }
  EXPECT_EQ(perms, "r-xp");
  EXPECT_EQ(a % EXECMEM_TEXT_ALIGN, 0u);
  // The bytes after the code up to the next granule are traps.
  auto* code = reinterpret_cast<const std::uint8_t*>(a);
  for (std::size_t i = f.code_size(); i % EXECMEM_TEXT_ALIGN != 0; ++i) EXPECT_EQ(code[i], 0xCC);
}

TEST(BpfJit, CompileAndRunFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<long> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &mismatches] {
      std::mt19937_64 rng(100 + static_cast<unsigned>(t));
      pmalloc::CodeArena arena;
      for (int round = 0; round < 300; ++round) {
        const Program prog = random_program(rng, 1 + rng() % 40);
        FilterFn* fn = load(arena, prog);
        for (int k = 0; k < 4; ++k) {
          const std::vector<std::uint8_t> pkt = random_packet(rng, 80);
          const auto len = static_cast<std::uint32_t>(pkt.size());
          if (fn(pkt.data(), len) != interpret(prog, pkt.data(), len)) mismatches.fetch_add(1);
        }
        if (round % 50 == 49) arena.clear();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
