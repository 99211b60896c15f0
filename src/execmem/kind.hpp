// The four execmem memory types and what each one means for pages, granules and fills.
//
// Everything type-specific about a page is decided here, in one table, so that pack.cpp
// and execmem.cpp never spell out permissions per type themselves:
//   text           RX, 64-byte granules (cache-line aligned code), free bytes are int3;
//   rodata         R,  16-byte granules, free bytes are zero; written only by update;
//   data           RW, 16-byte granules, free bytes are zero; never executable;
//   ro_after_init  RW until protected, then R for good; 16-byte granules; zeros.
#pragma once

#include <cstddef>
#include <cstdint>

#include "os/os.hpp"

namespace pmalloc::internal::execmem {

// Same values as enum execmem_type in pmalloc/execmem.h.
enum class Kind : std::uint32_t { text = 0, rodata = 1, data = 2, ro_after_init = 3 };
inline constexpr unsigned kKinds = 4;

inline constexpr const char* kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::text: return "text";
    case Kind::rodata: return "rodata";
    case Kind::data: return "data";
    case Kind::ro_after_init: return "ro_after_init";
  }
  return "?";
}

inline constexpr bool valid_kind(unsigned k) noexcept { return k < kKinds; }

// log2 of the granule size.
inline constexpr std::uint32_t granule_shift(Kind k) noexcept { return k == Kind::text ? 6 : 4; }

// The access committed pages of this type have (ro_after_init: while still open).
inline constexpr os::Access page_access(Kind k) noexcept {
  switch (k) {
    case Kind::text: return os::Access::read_exec;
    case Kind::rodata: return os::Access::read;
    case Kind::data:
    case Kind::ro_after_init: return os::Access::read_write;
  }
  return os::Access::none;
}

// The byte free granules hold.
inline constexpr unsigned char fill_byte(Kind k) noexcept { return k == Kind::text ? 0xCC : 0x00; }

// Whether the application may write pages of this type directly (otherwise only the
// writer changes them).
inline constexpr bool directly_writable(Kind k) noexcept { return page_access(k) == os::Access::read_write; }

}  // namespace pmalloc::internal::execmem
