// Classic BPF: the checker, the reference interpreter, the `tcpdump -dd` reader and a
// disassembler (semantics in bpf.hpp).
#include <cctype>
#include <cstdio>
#include <stdexcept>

#include "bpf.hpp"

namespace bpf {
namespace {

bool known(std::uint16_t code) {
  using namespace op;
  switch (cls(code)) {
    case LD:
      if (mode(code) == IMM || mode(code) == MEM || mode(code) == LEN) return size(code) == W && (code & ~0xe0) == LD;
      if (mode(code) == ABS || mode(code) == IND) return size(code) != 0x18 && (code & ~0xf8) == LD;
      return false;
    case LDX:
      if (mode(code) == IMM || mode(code) == MEM || mode(code) == LEN) return code == (LDX | W | mode(code));
      return code == (LDX | B | MSH);
    case ST:
    case STX: return code == ST || code == STX;
    case ALU:
      if (alu_op(code) == NEG) return code == (ALU | NEG);
      return alu_op(code) <= XOR && (code & ~0xf8) == ALU;
    case JMP:
      if (alu_op(code) == JA) return code == (JMP | JA);
      return alu_op(code) <= JSET && (code & ~0xf8) == JMP;
    case RET: return code == (RET | K) || code == (RET | A);
    case MISC: return code == (MISC | TAX) || code == (MISC | TXA);
  }
  return false;
}

std::uint32_t load(const std::uint8_t* p, std::uint16_t width) {
  switch (width) {
    case op::W: return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
    case op::H: return (std::uint32_t{p[0]} << 8) | p[1];
    default: return p[0];
  }
}

std::uint32_t width_bytes(std::uint16_t width) { return width == op::W ? 4 : width == op::H ? 2 : 1; }

}  // namespace

std::string check(const Program& program) {
  using namespace op;
  if (program.empty() || program.size() > kMaxInsns) return "a program has 1 to 4096 instructions";
  const std::size_t n = program.size();
  for (std::size_t pc = 0; pc < n; ++pc) {
    const Insn& i = program[pc];
    const std::string at = "instruction " + std::to_string(pc) + ": ";
    if (!known(i.code)) return at + "unknown opcode " + std::to_string(i.code);
    const std::uint16_t c = cls(i.code);
    if (((c == LD || c == LDX) && mode(i.code) == MEM) || c == ST || c == STX) {
      if (i.k >= kMemWords) return at + "scratch memory index out of range";
    }
    if (c == ALU && src(i.code) == K) {
      if ((alu_op(i.code) == DIV || alu_op(i.code) == MOD) && i.k == 0) return at + "division by constant 0";
      if ((alu_op(i.code) == LSH || alu_op(i.code) == RSH) && i.k >= 32) return at + "shift by 32 or more";
    }
    if (c == JMP) {
      if (alu_op(i.code) == JA) {
        if (i.k >= n - pc - 1) return at + "jump out of the program";
      } else if (i.jt >= n - pc - 1 || i.jf >= n - pc - 1) {
        return at + "jump out of the program";
      }
    }
  }
  if (cls(program.back().code) != RET) return "the last instruction must be a RET";
  return "";
}

std::uint32_t interpret(const Program& program, const std::uint8_t* packet, std::uint32_t len) {
  using namespace op;
  std::uint32_t a = 0, x = 0;
  std::uint32_t mem[kMemWords] = {};
  for (std::size_t pc = 0;; ++pc) {
    const Insn& i = program[pc];
    switch (cls(i.code)) {
      case LD:
      case LDX: {
        std::uint32_t v = 0;
        switch (mode(i.code)) {
          case IMM: v = i.k; break;
          case LEN: v = len; break;
          case MEM: v = mem[i.k]; break;
          case ABS:
          case IND:
          case MSH: {
            const std::uint16_t width = mode(i.code) == MSH ? B : size(i.code);
            const std::uint64_t off = std::uint64_t{i.k} + (mode(i.code) == IND ? x : 0);
            if (off + width_bytes(width) > len) return 0;
            v = load(packet + off, width);
            if (mode(i.code) == MSH) v = 4 * (v & 0xf);
            break;
          }
        }
        (cls(i.code) == LD ? a : x) = v;
        break;
      }
      case ST: mem[i.k] = a; break;
      case STX: mem[i.k] = x; break;
      case ALU: {
        const std::uint32_t v = src(i.code) == X ? x : i.k;
        switch (alu_op(i.code)) {
          case ADD: a += v; break;
          case SUB: a -= v; break;
          case MUL: a *= v; break;
          case DIV:
            if (v == 0) return 0;
            a /= v;
            break;
          case MOD:
            if (v == 0) return 0;
            a %= v;
            break;
          case AND: a &= v; break;
          case OR: a |= v; break;
          case XOR: a ^= v; break;
          case LSH: a <<= (v & 31); break;
          case RSH: a >>= (v & 31); break;
          case NEG: a = 0u - a; break;
        }
        break;
      }
      case JMP: {
        if (alu_op(i.code) == JA) {
          pc += i.k;
          break;
        }
        const std::uint32_t v = src(i.code) == X ? x : i.k;
        bool taken = false;
        switch (alu_op(i.code)) {
          case JEQ: taken = a == v; break;
          case JGT: taken = a > v; break;
          case JGE: taken = a >= v; break;
          case JSET: taken = (a & v) != 0; break;
        }
        pc += taken ? i.jt : i.jf;
        break;
      }
      case RET: return rval(i.code) == A ? a : i.k;
      case MISC:
        if (misc_op(i.code) == TAX) {
          x = a;
        } else {
          a = x;
        }
        break;
    }
  }
}

Program parse_dd(std::string_view text) {
  Program out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  auto number = [&]() -> std::uint64_t {
    skip_space();
    std::size_t start = i;
    int base = 10;
    if (i + 1 < text.size() && text[i] == '0' && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
      base = 16;
      i += 2;
      start = i;
    }
    std::uint64_t v = 0;
    while (i < text.size() && std::isxdigit(static_cast<unsigned char>(text[i]))) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
      const unsigned d = c >= 'a' ? static_cast<unsigned>(c - 'a' + 10) : static_cast<unsigned>(c - '0');
      if (d >= static_cast<unsigned>(base)) break;
      v = v * static_cast<unsigned>(base) + d;
      if (v > 0xffffffffULL) throw std::invalid_argument("parse_dd: number too large");
      ++i;
    }
    if (i == start) throw std::invalid_argument("parse_dd: number expected at offset " + std::to_string(i));
    return v;
  };
  auto expect = [&](char c) {
    skip_space();
    if (i >= text.size() || text[i] != c) {
      throw std::invalid_argument(std::string("parse_dd: '") + c + "' expected at offset " + std::to_string(i));
    }
    ++i;
  };
  for (;;) {
    skip_space();
    if (i >= text.size()) break;
    expect('{');
    const std::uint64_t code = number();
    expect(',');
    const std::uint64_t jt = number();
    expect(',');
    const std::uint64_t jf = number();
    expect(',');
    const std::uint64_t k = number();
    expect('}');
    if (code > 0xffff || jt > 0xff || jf > 0xff) throw std::invalid_argument("parse_dd: field out of range");
    out.push_back(Insn{static_cast<std::uint16_t>(code), static_cast<std::uint8_t>(jt), static_cast<std::uint8_t>(jf),
                       static_cast<std::uint32_t>(k)});
    skip_space();
    if (i < text.size() && text[i] == ',') ++i;
  }
  return out;
}

std::string disassemble(const Program& program) {
  using namespace op;
  std::string out;
  char line[96];
  for (std::size_t pc = 0; pc < program.size(); ++pc) {
    const Insn& i = program[pc];
    const char* name = "?";
    switch (cls(i.code)) {
      case LD: name = size(i.code) == H ? "ldh" : size(i.code) == B ? "ldb" : "ld"; break;
      case LDX: name = mode(i.code) == MSH ? "ldxb" : "ldx"; break;
      case ST: name = "st"; break;
      case STX: name = "stx"; break;
      case ALU: {
        static const char* const names[] = {"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor"};
        const unsigned k = alu_op(i.code) >> 4;
        name = k < 11 ? names[k] : "alu?";
        break;
      }
      case JMP: {
        static const char* const names[] = {"ja", "jeq", "jgt", "jge", "jset"};
        const unsigned k = alu_op(i.code) >> 4;
        name = k < 5 ? names[k] : "jmp?";
        break;
      }
      case RET: name = "ret"; break;
      case MISC: name = misc_op(i.code) == TAX ? "tax" : "txa"; break;
    }
    std::snprintf(line, sizeof line, "(%03zu) %-5s code=0x%02x jt=%u jf=%u k=0x%x\n", pc, name, i.code, i.jt, i.jf, i.k);
    out += line;
  }
  return out;
}

}  // namespace bpf
