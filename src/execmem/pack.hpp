// Packs: the reservations execmem carves typed allocations from.
//
// Glossary (see docs/execmem.md): a *pack* is one contiguous reservation holding memory of
// exactly one type (text, rodata, data, ro_after_init), so a page is never both code and
// data. A *standard* pack has 2 MiB of data space, aligned to 2 MiB so that a transparent
// huge page can back it, shared by many small allocations (bpf_prog_pack's idea: one
// 2 MiB pack held ~6,000 BPF programs); an allocation above kDedicatedAbove gets a
// *dedicated* pack of its own. Layout:
//
//     [guard][meta: Pack header, used bits, start bits, committed bits, tails][data][guard]
//
// Data is handed out in granules (64 bytes for text, 16 for the data types). As in the
// pool engine, two bitmaps (used, start) find an allocation's extent without a header in
// the data pages, and a tail per granule keeps the requested size exactly.
//
// Page states (one bit per data page in `committed`):
//   uncommitted  PROT_NONE, no memory behind it (a dangling pointer into it faults);
//   committed    the type's access (text RX, rodata R, data and open ro_after_init RW),
//                contents: live allocations, and for free granules traps (text) or zeros.
// A page is committed while some live allocation touches it (checked by pack_check), and
// goes back to the OS when the last one is freed; only when that mprotect fails (ENOMEM:
// too many mappings) does a free page stay committed, trap- or zero-filled, for reuse.
// Two kinds of pack never return single pages:
//   huge   text packs committed whole at creation under madvise(MADV_HUGEPAGE): returning
//          single pages would split the huge page, so the whole pack goes back when empty;
//   closed ro_after_init packs after execmem_protect_ro_after_init(): read-only (and
//          sealed where mseal works) for good; frees there only update the accounting.
// Committing text never makes a page writable and executable: PROT_NONE -> RW, fill with
// 0xCC, -> RX, all before any address in it is handed out.
//
// The metadata pages are read-only from the moment the pack is set up, and every later
// change goes through MetaTxn (the writer), so a stray write cannot forge an allocation
// that execmem_update_copy would then write to. Callers hold the lock of the pack's type.
#pragma once

#include <cstddef>
#include <cstdint>

#include "execmem/kind.hpp"
#include "pool/bitmap.hpp"

struct execmem_stats;

namespace pmalloc::internal::execmem {

inline constexpr std::size_t kPackBytes = std::size_t{2} << 20;      // data bytes of a standard pack
inline constexpr std::size_t kDedicatedAbove = std::size_t{256} << 10;  // larger allocations get their own pack
inline constexpr std::size_t kMaxAllocation = std::size_t{1} << 40;
inline constexpr std::uint64_t kPackMagic = 0x6b6361706d656d78ULL;     // "xmempack"
inline constexpr unsigned char kTrapByte = 0xCC;                        // x86-64 int3

enum PackFlags : std::uint32_t {
  kHuge = 1u << 0,       // committed whole, MADV_HUGEPAGE advised
  kDedicated = 1u << 1,  // holds one large allocation
  kClosed = 1u << 2,     // ro_after_init, protected: read-only for good, no new allocations
  kReadOnly = 1u << 3,   // ro_after_init, closed, and its committed pages are read-only now
  kSealed = 1u << 4,     // data pages mseal()ed (cannot be unmapped either)
  kHugeAsked = 1u << 5,  // created in huge-page mode (kHuge unless the kernel refused the advice)
};

struct Pack {
  std::uint64_t magic;
  const Pack* self;  // == this while alive: a cheap forgery check
  Kind kind;
  std::uint32_t flags;
  std::uint32_t granule_shift;  // log2 of the granule size
  std::byte* reservation;
  std::size_t reservation_size;
  std::byte* meta;
  std::size_t meta_bytes;
  std::byte* data;
  std::size_t data_bytes;
  std::size_t granules;
  std::size_t pages;
  std::size_t used_granules;
  std::size_t live_allocations;
  std::size_t live_bytes;
  std::size_t committed_pages;
  bitmap::Word* used;
  bitmap::Word* start;
  bitmap::Word* committed;
  std::uint8_t* tails;  // requested size % granule, at the start granule (byte or nibble)

  std::size_t granule() const noexcept { return std::size_t{1} << granule_shift; }
  bool has(std::uint32_t f) const noexcept { return (flags & f) != 0; }
  bool contains_data(const void* p) const noexcept {
    auto* b = static_cast<const std::byte*>(p);
    return b >= data && b < data + data_bytes;
  }
};

// A live allocation inside a pack: granules [first, first + granules), `size` requested.
struct Block {
  std::size_t first = 0;
  std::size_t granules = 0;
  std::size_t size = 0;
  std::byte* begin = nullptr;
};

// Creates a pack of `kind` with at least `data_bytes` of data space (a standard pack when
// dedicated is false) and registers it in the directory. `huge` (text only) commits it
// whole under MADV_HUGEPAGE. 0 or an errno value (reason recorded).
[[nodiscard]] int pack_create(Kind kind, std::size_t data_bytes, bool dedicated, bool huge, Pack** out) noexcept;

// Unregisters and unmaps an empty pack. A sealed pack cannot be unmapped: false then (it
// stays registered, closed and empty).
bool pack_release(Pack* pack) noexcept;

// Places `size` bytes. 0, ENOSPC when this pack has no room (nothing recorded: the caller
// tries another pack), or another errno value (reason recorded; nothing changed).
[[nodiscard]] int pack_alloc(Pack* pack, std::size_t size, void** out) noexcept;

// The live allocation that starts exactly at p, if any.
bool pack_block_at(const Pack* pack, const void* p, Block* out) noexcept;
// The live allocation whose requested extent contains all of [p, p + n) (n >= 1), if any.
bool pack_block_containing(const Pack* pack, const void* p, std::size_t n, Block* out) noexcept;

// Frees a block found by pack_block_at: refill (traps or zeros), metadata, then return of
// pages that became entirely free. 0 or an errno value (reason recorded).
[[nodiscard]] int pack_free(Pack* pack, const Block& block) noexcept;

// ro_after_init: closes the pack (no new allocations), makes its committed pages
// read-only and seals them where mseal works; each step is recorded in the flags, so a
// failed call can be repeated. 0 or an errno value.
[[nodiscard]] int pack_protect(Pack* pack) noexcept;
// Whether pack_protect() has something left to do for this pack.
bool pack_needs_protect(const Pack* pack) noexcept;

bool pack_empty(const Pack* pack) noexcept;
// Adds this pack's figures to *out.
void pack_add_stats(const Pack* pack, execmem_stats* out) noexcept;
// Invariant checker (see the top of this file); false with a reason recorded on failure.
bool pack_check(const Pack* pack) noexcept;

}  // namespace pmalloc::internal::execmem
