// A just-in-time compiler from classic BPF to x86-64, on top of pmalloc's execmem.
//
// compile_x86_64() turns a checked program into machine code for
//     uint32_t filter(const uint8_t* packet, uint32_t len)    (System V AMD64 ABI)
// and Filter / load() put that code into execmem text: read+execute from the start, trap
// filled around it, written only through execmem_update_copy, never writable and
// executable. Register use: A = eax, X = ecx, packet = rdi, len = esi; scratch M[] lives
// in the red zone below rsp (the generated function is a leaf); edx, r8-r10 are temporaries.
// Every load is bounds-checked against len; out-of-bounds loads and division by X == 0
// jump to a shared epilogue that returns 0 (semantics in bpf.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "bpf.hpp"
#include "pmalloc/execmem.hpp"

namespace bpf {

using FilterFn = std::uint32_t(const std::uint8_t* packet, std::uint32_t len);

// Machine code for a program; throws std::invalid_argument when check() rejects it.
std::vector<std::uint8_t> compile_x86_64(const Program& program);

// One compiled filter that owns its code.
class Filter {
 public:
  explicit Filter(const Program& program) : code_size_(0) {
    const std::vector<std::uint8_t> code = compile_x86_64(program);
    code_size_ = code.size();
    fn_ = pmalloc::JitFunction<FilterFn>(code);
  }
  std::uint32_t operator()(const std::uint8_t* packet, std::uint32_t len) const { return fn_(packet, len); }
  FilterFn* function() const noexcept { return fn_.get(); }
  std::size_t code_size() const noexcept { return code_size_; }

 private:
  pmalloc::JitFunction<FilterFn> fn_;
  std::size_t code_size_;
};

// Compiles into an arena shared by many filters (packed into the same text pages); the
// function lives as long as the arena (or until arena.remove(fn)).
inline FilterFn* load(pmalloc::CodeArena& arena, const Program& program) {
  return arena.add<FilterFn>(compile_x86_64(program));
}

}  // namespace bpf
