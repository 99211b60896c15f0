// The PKRU register of memory protection keys: its bit arithmetic and the two
// unprivileged instructions that read and write it (see os/pkey.cpp for the background).
//
// For key k, bit 2k is AD (access disabled) and bit 2k+1 is WD (write disabled). The
// arithmetic is pure and unit-tested on every machine; rdpkru()/wrpkru() may only run
// where os::cpu_has_pkeys() is true (they are #UD otherwise).
#pragma once

#include <cstdint>

namespace pmalloc::os::pkru {

inline constexpr unsigned kKeys = 16;

constexpr std::uint32_t ad_bit(int key) noexcept { return 1u << (2 * key); }
constexpr std::uint32_t wd_bit(int key) noexcept { return 1u << (2 * key + 1); }

// Full access to `key`, other keys unchanged.
constexpr std::uint32_t allow_write(std::uint32_t pkru, int key) noexcept {
  return pkru & ~(ad_bit(key) | wd_bit(key));
}
// Read-only access to `key` (AD clear, WD set), other keys unchanged.
constexpr std::uint32_t deny_write(std::uint32_t pkru, int key) noexcept {
  return (pkru & ~ad_bit(key)) | wd_bit(key);
}
constexpr bool may_write(std::uint32_t pkru, int key) noexcept { return (pkru & (ad_bit(key) | wd_bit(key))) == 0; }
constexpr bool may_read(std::uint32_t pkru, int key) noexcept { return (pkru & ad_bit(key)) == 0; }

#if defined(__x86_64__) || defined(__i386__)
inline std::uint32_t read() noexcept {
  std::uint32_t eax = 0, edx = 0;
  asm volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));  // RDPKRU
  return eax;
}
// The "memory" clobber keeps the compiler from moving stores across the switch.
inline void write(std::uint32_t value) noexcept {
  asm volatile(".byte 0x0f, 0x01, 0xef" : : "a"(value), "c"(0), "d"(0) : "memory");  // WRPKRU
}
#else
inline std::uint32_t read() noexcept { return 0; }
inline void write(std::uint32_t) noexcept {}
#endif

}  // namespace pmalloc::os::pkru
