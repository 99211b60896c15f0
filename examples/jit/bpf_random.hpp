// Random valid classic BPF programs and random packets, for differential testing of the
// JIT against the interpreter (tests/jit) and for the benchmark. Header-only.
//
// Programs are valid by construction (check() == ""), but otherwise exercise everything:
// every opcode, loads inside, across and far outside the packet, IND offsets that would
// wrap in 32 bits, division by X == 0, shifts by X >= 32, scratch memory read before it is
// written, jumps of every length, and RETs in the middle.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "bpf.hpp"

namespace bpf {

inline std::uint32_t random_k(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0: return static_cast<std::uint32_t>(rng());
    case 1: return 0xffffffffu - static_cast<std::uint32_t>(rng() % 8);
    case 2: return 0x80000000u + static_cast<std::uint32_t>(rng() % 8) - 4;
    case 3: return 0;
    default: return static_cast<std::uint32_t>(rng() % 100);
  }
}

inline std::uint32_t random_offset(std::mt19937_64& rng) {
  switch (rng() % 10) {
    case 0: return random_k(rng);
    default: return static_cast<std::uint32_t>(rng() % 72);
  }
}

inline Program random_program(std::mt19937_64& rng, std::size_t length) {
  using namespace op;
  if (length == 0) length = 1;
  Program p;
  p.reserve(length);
  static const std::uint16_t widths[] = {W, H, B};
  static const std::uint16_t alus[] = {ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR};
  static const std::uint16_t jumps[] = {JA, JEQ, JGT, JGE, JSET};
  for (std::size_t pc = 0; pc + 1 < length; ++pc) {
    const std::size_t room = length - pc - 1;  // valid jump offsets are 0 .. room - 1
    const unsigned pick = static_cast<unsigned>(rng() % 100);
    Insn i{};
    if (pick < 18) {
      const std::uint16_t w = widths[rng() % 3];
      i = stmt(LD | w | (rng() % 2 ? ABS : IND), random_offset(rng));
    } else if (pick < 24) {
      static const std::uint16_t modes[] = {IMM, LEN, MEM};
      const std::uint16_t m = modes[rng() % 3];
      i = stmt(LD | W | m, m == MEM ? static_cast<std::uint32_t>(rng() % kMemWords) : random_k(rng));
    } else if (pick < 32) {
      static const std::uint16_t modes[] = {IMM, LEN, MEM, MSH};
      const std::uint16_t m = modes[rng() % 4];
      if (m == MSH) {
        i = stmt(LDX | B | MSH, random_offset(rng));
      } else {
        i = stmt(LDX | W | m, m == MEM ? static_cast<std::uint32_t>(rng() % kMemWords) : random_k(rng) % 64);
      }
    } else if (pick < 38) {
      i = stmt(rng() % 2 ? ST : STX, static_cast<std::uint32_t>(rng() % kMemWords));
    } else if (pick < 68) {
      const std::uint16_t a = alus[rng() % 11];
      const bool x = a != NEG && rng() % 3 == 0;
      std::uint32_t k = random_k(rng);
      if ((a == DIV || a == MOD) && k == 0) k = 1 + static_cast<std::uint32_t>(rng() % 9);
      if (a == LSH || a == RSH) k %= 32;
      i = stmt(ALU | a | (x ? X : K), a == NEG ? 0 : k);
    } else if (pick < 90) {
      const std::uint16_t j = jumps[rng() % 5];
      const auto off = [&] { return static_cast<std::uint8_t>(rng() % (room < 256 ? room : 256)); };
      if (j == JA) {
        i = stmt(JMP | JA, static_cast<std::uint32_t>(rng() % room));
      } else {
        // Compare with small constants often, so that equality is taken now and then.
        std::uint32_t k = rng() % 2 ? static_cast<std::uint32_t>(rng() % 4) : random_k(rng);
        i = jump(JMP | j | (rng() % 4 == 0 ? X : K), k, off(), off());
      }
    } else if (pick < 96) {
      i = stmt(MISC | (rng() % 2 ? TAX : TXA), 0);
    } else {
      i = rng() % 2 ? stmt(RET | A, 0) : stmt(RET | K, random_k(rng));
    }
    p.push_back(i);
  }
  p.push_back(rng() % 2 ? stmt(RET | A, 0) : stmt(RET | K, random_k(rng)));
  return p;
}

inline std::vector<std::uint8_t> random_packet(std::mt19937_64& rng, std::size_t max_len) {
  std::vector<std::uint8_t> pkt(rng() % (max_len + 1));
  for (auto& b : pkt) b = rng() % 3 == 0 ? static_cast<std::uint8_t>(rng() % 4) : static_cast<std::uint8_t>(rng());
  return pkt;
}

}  // namespace bpf
