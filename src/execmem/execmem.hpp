// execmem: the typed allocator behind pmalloc/execmem.h, on the same primitives as pools
// (src/os for mappings, the write-rare writer for every change to protected bytes).
//
// One lock per type serialises allocation, free, update and protection of that type's
// packs; a type's packs are created and released only under its lock, so holding it
// keeps every pack of that type alive. Lookups by address go through the protected pack
// directory first (directory.hpp) and then take the type's lock.
//
// Choices where the issue is silent (also in docs/execmem.md):
//   * execmem_update_copy on EXECMEM_DATA is EINVAL (not a type written by update),
//     on RO_AFTER_INIT a plain copy until protected and EPERM afterwards;
//   * RO_AFTER_INIT allocations after execmem_protect_ro_after_init() come from fresh
//     packs and are writable until the next call; protected memory stays protected;
//   * execmem_free(NULL) is a no-op returning 0.
#pragma once

#include <cstddef>

#include "execmem/kind.hpp"

struct execmem_stats;

namespace pmalloc::internal::execmem {

[[nodiscard]] int alloc(unsigned type, std::size_t size, void** out) noexcept;
[[nodiscard]] int update_copy(void* dst, const void* src, std::size_t n) noexcept;
[[nodiscard]] int deallocate(void* p) noexcept;
[[nodiscard]] int protect_ro_after_init() noexcept;
[[nodiscard]] int stats(unsigned type, execmem_stats* out) noexcept;
void set_hugepages(bool enable) noexcept;
bool hugepages() noexcept;

// Where an address range lies, for other components (usercopy checks, is-pmalloc tests).
enum class Placement {
  none,  // not execmem memory
  ok,    // inside one live allocation (within its requested size)
  bad,   // execmem memory, but not inside one live allocation (guard, metadata, free, crossing)
};
struct Found {
  Kind kind = Kind::text;
  void* begin = nullptr;  // the allocation's first byte
  std::size_t size = 0;   // its requested size
  bool writable = false;  // the application may write it directly now
};
Placement locate(const void* p, std::size_t n, Found* out) noexcept;

// Runs pack_check on every pack (tests); false with a reason recorded on the first failure.
bool check_all() noexcept;

}  // namespace pmalloc::internal::execmem
