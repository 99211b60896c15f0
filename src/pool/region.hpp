// Region life cycle: reserve and lay out, commit data pages, protect/seal prefixes,
// release. Metadata layout and invariants are described in layout.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pool/layout.hpp"
#include "pool/meta_txn.hpp"

namespace pmalloc::internal {

// Reserves a region with room for `data_bytes` of data (rounded up to pages), commits
// its metadata pages and, when `pool_out` is non-null, places a pool descriptor in them
// (the pool's first region). The region is registered in the address registry.
[[nodiscard]] int region_create(Pool* pool, std::size_t data_bytes, unsigned flags, Region** out,
                                Pool** pool_out) noexcept;

// Makes data [0, bytes) accessible (bytes <= capacity). Does the OS call only; the caller
// stages the new `committed` value.
[[nodiscard]] int region_commit(Region* r, std::size_t bytes, std::size_t* committed_out) noexcept;

// Write-protects meta (if not yet) and data [protected_bytes, upto) and records it in the
// header, all or nothing: when the header cannot be written, the protection just applied
// is taken back (those pages were read-write before the call), so the header never claims
// less than the pages enforce (a page read-only behind the allocator's back would make
// the next allocation in it fault). On a region's first protection the header is still
// writable and is written in place before the mprotect; later ones go through the writer.
// With `seal`, everything protected is then mseal()ed: if recording the seal fails, the
// header under-reports what is sealed (never less safe) and the error is returned. Should
// taking the protection back fail too, the process stops (fatal). 0 or an errno value.
[[nodiscard]] int region_protect_commit(Region* r, std::size_t upto, bool seal) noexcept;

// Unregisters and unmaps the region, except the part that is sealed (which the kernel
// will not let go). Returns the bytes that had to stay mapped.
std::size_t region_release(Region* r) noexcept;

inline unsigned tail_of(const Region* r, std::size_t g) noexcept {
  return (r->tails[g / 2] >> ((g & 1) * 4)) & 0xFu;
}

// The byte of nibbles that holds granule g's, with that nibble set to `value` (0-15).
inline std::uint8_t with_tail(std::uint8_t byte, std::size_t g, unsigned value) noexcept {
  const unsigned shift = (g & 1) * 4;
  return static_cast<std::uint8_t>((byte & ~(0xFu << shift)) | (value << shift));
}

}  // namespace pmalloc::internal
