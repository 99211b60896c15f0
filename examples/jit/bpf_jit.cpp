// The classic BPF to x86-64 code generator (see bpf_jit.hpp for the register plan).
//
// One pass emits code for each instruction in order, recording where each BPF
// instruction starts; jumps are emitted with 32-bit displacements and patched at the end,
// once every target's offset is known. Jumps to the next instruction are dropped, and a
// conditional jump with one fall-through arm becomes a single jcc.
#include <cstring>
#include <stdexcept>

#include "bpf_jit.hpp"

namespace bpf {
namespace {

// Condition codes for jcc rel32 (0x0f 0x80+cc).
enum Cond : std::uint8_t { kB = 0x2, kAE = 0x3, kE = 0x4, kNE = 0x5, kBE = 0x6, kA = 0x7 };

constexpr std::size_t kRet0 = SIZE_MAX;  // jump target: the shared "return 0" epilogue

class Emitter {
 public:
  std::vector<std::uint8_t> code;

  void b(std::initializer_list<std::uint8_t> bytes) { code.insert(code.end(), bytes); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) code.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  // jcc/jmp with a rel32 to BPF instruction `target` (or kRet0), patched later.
  void jcc(Cond c, std::size_t target) {
    b({0x0f, static_cast<std::uint8_t>(0x80 | c)});
    fixup(target);
  }
  void jmp(std::size_t target) {
    b({0xe9});
    fixup(target);
  }
  void patch(const std::vector<std::size_t>& insn_offset, std::size_t ret0) {
    for (const Fixup& f : fixups_) {
      const std::size_t target = f.target == kRet0 ? ret0 : insn_offset[f.target];
      const auto rel = static_cast<std::int32_t>(static_cast<std::int64_t>(target) - static_cast<std::int64_t>(f.at + 4));
      std::memcpy(code.data() + f.at, &rel, 4);
    }
  }

 private:
  struct Fixup {
    std::size_t at;
    std::size_t target;
  };
  void fixup(std::size_t target) {
    fixups_.push_back({code.size(), target});
    u32(0);
  }
  std::vector<Fixup> fixups_;
};

// disp8 of M[k] below rsp (red zone).
std::uint8_t mem_disp(std::uint32_t k) { return static_cast<std::uint8_t>(-64 + 4 * static_cast<int>(k)); }

// Loads of `bytes` bytes at packet offset k (ABS) into eax, or the MSH form into ecx.
void emit_abs_load(Emitter& e, std::uint16_t mode, std::uint16_t width, std::uint32_t k) {
  const std::uint32_t n = width == op::W ? 4 : width == op::H ? 2 : 1;
  if (std::uint64_t{k} + n > 0xffffffffULL) {  // no packet is that long
    e.jmp(kRet0);
    return;
  }
  e.b({0x81, 0xfe});  // cmp esi, k + n
  e.u32(k + n);
  e.jcc(kB, kRet0);   // len < k + n: out of bounds
  const bool disp = k <= 0x7fffffffu;
  if (!disp) {
    e.b({0xba});  // mov edx, k (zero-extends into rdx)
    e.u32(k);
  }
  if (mode == op::MSH) {
    if (disp) {
      e.b({0x0f, 0xb6, 0x8f});  // movzx ecx, byte [rdi + k]
      e.u32(k);
    } else {
      e.b({0x0f, 0xb6, 0x0c, 0x17});  // movzx ecx, byte [rdi + rdx]
    }
    e.b({0x83, 0xe1, 0x0f});  // and ecx, 0xf
    e.b({0xc1, 0xe1, 0x02});  // shl ecx, 2
    return;
  }
  switch (width) {
    case op::W:
      if (disp) {
        e.b({0x8b, 0x87});  // mov eax, [rdi + k]
        e.u32(k);
      } else {
        e.b({0x8b, 0x04, 0x17});  // mov eax, [rdi + rdx]
      }
      e.b({0x0f, 0xc8});  // bswap eax
      break;
    case op::H:
      if (disp) {
        e.b({0x0f, 0xb7, 0x87});  // movzx eax, word [rdi + k]
        e.u32(k);
      } else {
        e.b({0x0f, 0xb7, 0x04, 0x17});  // movzx eax, word [rdi + rdx]
      }
      e.b({0x66, 0xc1, 0xc0, 0x08});  // rol ax, 8
      break;
    default:
      if (disp) {
        e.b({0x0f, 0xb6, 0x87});  // movzx eax, byte [rdi + k]
        e.u32(k);
      } else {
        e.b({0x0f, 0xb6, 0x04, 0x17});  // movzx eax, byte [rdi + rdx]
      }
      break;
  }
}

// A = P[X + k : n], the offset computed in 64 bits (no wrap-around).
void emit_ind_load(Emitter& e, std::uint16_t width, std::uint32_t k) {
  const std::uint8_t n = width == op::W ? 4 : width == op::H ? 2 : 1;
  e.b({0x89, 0xca});          // mov edx, ecx          rdx = X
  e.b({0x41, 0xb8});          // mov r8d, k
  e.u32(k);
  e.b({0x4c, 0x01, 0xc2});    // add rdx, r8           rdx = X + k
  e.b({0x4c, 0x8d, 0x4a, n}); // lea r9, [rdx + n]
  e.b({0x41, 0x89, 0xf2});    // mov r10d, esi         r10 = len
  e.b({0x4d, 0x3b, 0xca});    // cmp r9, r10
  e.jcc(kA, kRet0);           // X + k + n > len: out of bounds
  switch (width) {
    case op::W:
      e.b({0x8b, 0x04, 0x17});  // mov eax, [rdi + rdx]
      e.b({0x0f, 0xc8});        // bswap eax
      break;
    case op::H:
      e.b({0x0f, 0xb7, 0x04, 0x17});  // movzx eax, word [rdi + rdx]
      e.b({0x66, 0xc1, 0xc0, 0x08});  // rol ax, 8
      break;
    default: e.b({0x0f, 0xb6, 0x04, 0x17}); break;  // movzx eax, byte [rdi + rdx]
  }
}

void emit_alu(Emitter& e, const Insn& i) {
  using namespace op;
  const bool x = src(i.code) == X;
  switch (alu_op(i.code)) {
    case ADD: x ? e.b({0x01, 0xc8}) : (e.b({0x05}), e.u32(i.k)); break;  // add eax, ecx / imm
    case SUB: x ? e.b({0x29, 0xc8}) : (e.b({0x2d}), e.u32(i.k)); break;
    case AND: x ? e.b({0x21, 0xc8}) : (e.b({0x25}), e.u32(i.k)); break;
    case OR: x ? e.b({0x09, 0xc8}) : (e.b({0x0d}), e.u32(i.k)); break;
    case XOR: x ? e.b({0x31, 0xc8}) : (e.b({0x35}), e.u32(i.k)); break;
    case MUL: x ? e.b({0x0f, 0xaf, 0xc1}) : (e.b({0x69, 0xc0}), e.u32(i.k)); break;  // imul eax, ecx / eax, imm
    case LSH: x ? e.b({0xd3, 0xe0}) : e.b({0xc1, 0xe0, static_cast<std::uint8_t>(i.k)}); break;  // shl eax, cl / imm8
    case RSH: x ? e.b({0xd3, 0xe8}) : e.b({0xc1, 0xe8, static_cast<std::uint8_t>(i.k)}); break;  // shr
    case NEG: e.b({0xf7, 0xd8}); break;                                                           // neg eax
    case DIV:
    case MOD:
      if (x) {
        e.b({0x85, 0xc9});  // test ecx, ecx
        e.jcc(kE, kRet0);   // X == 0: return 0
        e.b({0x31, 0xd2});  // xor edx, edx
        e.b({0xf7, 0xf1});  // div ecx
      } else {
        e.b({0x31, 0xd2});  // xor edx, edx
        e.b({0x41, 0xb8});  // mov r8d, k
        e.u32(i.k);
        e.b({0x41, 0xf7, 0xf0});  // div r8d
      }
      if (alu_op(i.code) == MOD) e.b({0x89, 0xd0});  // mov eax, edx
      break;
  }
}

void emit_jump(Emitter& e, const Insn& i, std::size_t pc) {
  using namespace op;
  if (alu_op(i.code) == JA) {
    if (i.k != 0) e.jmp(pc + 1 + i.k);
    return;
  }
  if (i.jt == i.jf) {  // both arms agree: no test needed
    if (i.jt != 0) e.jmp(pc + 1 + i.jt);
    return;
  }
  const bool x = src(i.code) == X;
  Cond taken = kE;
  Cond not_taken = kNE;
  switch (alu_op(i.code)) {
    case JEQ: taken = kE, not_taken = kNE; break;
    case JGT: taken = kA, not_taken = kBE; break;
    case JGE: taken = kAE, not_taken = kB; break;
    case JSET: taken = kNE, not_taken = kE; break;
  }
  if (alu_op(i.code) == JSET) {
    x ? e.b({0x85, 0xc8}) : (e.b({0xa9}), e.u32(i.k));  // test eax, ecx / imm
  } else {
    x ? e.b({0x39, 0xc8}) : (e.b({0x3d}), e.u32(i.k));  // cmp eax, ecx / imm
  }
  if (i.jt == 0) {
    e.jcc(not_taken, pc + 1 + i.jf);
  } else if (i.jf == 0) {
    e.jcc(taken, pc + 1 + i.jt);
  } else {
    e.jcc(taken, pc + 1 + i.jt);
    e.jmp(pc + 1 + i.jf);
  }
}

}  // namespace

std::vector<std::uint8_t> compile_x86_64(const Program& program) {
  using namespace op;
  if (const std::string why = check(program); !why.empty()) throw std::invalid_argument("bpf: " + why);
  Emitter e;
  e.code.reserve(program.size() * 16 + 64);
  e.b({0x31, 0xc0});  // xor eax, eax    A = 0
  e.b({0x31, 0xc9});  // xor ecx, ecx    X = 0
  bool reads_mem = false;
  for (const Insn& i : program) reads_mem |= (cls(i.code) == LD || cls(i.code) == LDX) && mode(i.code) == MEM;
  if (reads_mem) {
    e.b({0x31, 0xd2});  // xor edx, edx; then M[0..15] = 0, 8 bytes at a time
    for (int q = 0; q < 8; ++q) e.b({0x48, 0x89, 0x54, 0x24, static_cast<std::uint8_t>(-64 + 8 * q)});
  }
  std::vector<std::size_t> offset(program.size());
  for (std::size_t pc = 0; pc < program.size(); ++pc) {
    offset[pc] = e.code.size();
    const Insn& i = program[pc];
    switch (cls(i.code)) {
      case LD:
      case LDX: {
        const bool to_a = cls(i.code) == LD;
        switch (mode(i.code)) {
          case IMM:
            e.b({static_cast<std::uint8_t>(to_a ? 0xb8 : 0xb9)});  // mov eax/ecx, k
            e.u32(i.k);
            break;
          case LEN: e.b({0x89, static_cast<std::uint8_t>(to_a ? 0xf0 : 0xf1)}); break;  // mov eax/ecx, esi
          case MEM: e.b({0x8b, static_cast<std::uint8_t>(to_a ? 0x44 : 0x4c), 0x24, mem_disp(i.k)}); break;
          case ABS: emit_abs_load(e, ABS, size(i.code), i.k); break;
          case MSH: emit_abs_load(e, MSH, B, i.k); break;
          case IND: emit_ind_load(e, size(i.code), i.k); break;
        }
        break;
      }
      case ST: e.b({0x89, 0x44, 0x24, mem_disp(i.k)}); break;   // mov [rsp - 64 + 4k], eax
      case STX: e.b({0x89, 0x4c, 0x24, mem_disp(i.k)}); break;  // mov [rsp - 64 + 4k], ecx
      case ALU: emit_alu(e, i); break;
      case JMP: emit_jump(e, i, pc); break;
      case RET:
        if (rval(i.code) == K) {
          e.b({0xb8});  // mov eax, k
          e.u32(i.k);
        }
        e.b({0xc3});  // ret
        break;
      case MISC: e.b({0x89, static_cast<std::uint8_t>(misc_op(i.code) == TAX ? 0xc1 : 0xc8)}); break;
    }
  }
  const std::size_t ret0 = e.code.size();
  e.b({0x31, 0xc0, 0xc3});  // xor eax, eax; ret
  e.patch(offset, ret0);
  return std::move(e.code);
}

}  // namespace bpf
