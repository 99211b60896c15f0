// Classic BPF (the packet filter language of tcpdump, libpcap and SO_ATTACH_FILTER):
// instructions, the checker, a reference interpreter, and a reader for `tcpdump -dd`
// output. The JIT (bpf_jit.hpp) must agree with interpret() on every valid program and
// packet; the tests in tests/jit compare the two on thousands of random programs.
//
// Machine model (McCanne & Jacobson 1993, as in Linux and the BSDs): 32-bit accumulator
// A and index register X, 16 words of scratch memory M[], the packet P of `len` bytes.
// Execution starts with A = X = 0 and M[] all zero, and ends at a RET, whose value is the
// number of bytes to accept (0 = drop). Semantics where implementations differ, fixed here:
//   * a load outside the packet returns 0 from the filter (drop), as in Linux and BSD;
//     offsets are computed without wrap-around (X + k in 64 bits); there are no Linux
//     ancillary loads (negative offsets simply lie outside the packet);
//   * A / X and A % X with X == 0 return 0 from the filter; the checker rejects / 0 and % 0
//     with a constant;
//   * shifts by X use X mod 32 (what x86 does); constant shifts must be < 32;
//   * programs hold 1..4096 instructions, jumps go forward and stay inside the program,
//     and the last instruction is a RET, so every run ends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bpf {

// Layout of struct sock_filter.
struct Insn {
  std::uint16_t code;
  std::uint8_t jt;
  std::uint8_t jf;
  std::uint32_t k;
};

using Program = std::vector<Insn>;

inline constexpr std::size_t kMaxInsns = 4096;
inline constexpr std::uint32_t kMemWords = 16;

// Opcode fields (values as in <linux/filter.h>).
namespace op {
inline constexpr std::uint16_t LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06,
                               MISC = 0x07;
inline constexpr std::uint16_t W = 0x00, H = 0x08, B = 0x10;
inline constexpr std::uint16_t IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, LEN = 0x80, MSH = 0xa0;
inline constexpr std::uint16_t ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60,
                               RSH = 0x70, NEG = 0x80, MOD = 0x90, XOR = 0xa0;
inline constexpr std::uint16_t JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
inline constexpr std::uint16_t K = 0x00, X = 0x08, A = 0x10;  // source: constant / X; RET A
inline constexpr std::uint16_t TAX = 0x00, TXA = 0x80;

constexpr std::uint16_t cls(std::uint16_t code) { return code & 0x07; }
constexpr std::uint16_t size(std::uint16_t code) { return code & 0x18; }
constexpr std::uint16_t mode(std::uint16_t code) { return code & 0xe0; }
constexpr std::uint16_t alu_op(std::uint16_t code) { return code & 0xf0; }
constexpr std::uint16_t src(std::uint16_t code) { return code & 0x08; }
constexpr std::uint16_t rval(std::uint16_t code) { return code & 0x18; }
constexpr std::uint16_t misc_op(std::uint16_t code) { return code & 0xf8; }
}  // namespace op

inline Insn stmt(std::uint16_t code, std::uint32_t k) { return Insn{code, 0, 0, k}; }
inline Insn jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) { return Insn{code, jt, jf, k}; }

// "" when the program is valid, else why not (with the instruction index).
std::string check(const Program& program);

// Runs a valid program (check() == "") on a packet.
std::uint32_t interpret(const Program& program, const std::uint8_t* packet, std::uint32_t len);

// Reads `tcpdump -dd` output: one "{ code, jt, jf, k }," per instruction (C initialiser
// syntax; numbers in decimal or 0x hex). Throws std::invalid_argument on bad input.
Program parse_dd(std::string_view text);

// A short disassembly (tcpdump -d style) for messages.
std::string disassemble(const Program& program);

}  // namespace bpf
