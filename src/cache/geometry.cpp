// Slab geometry: how many pages a slab spans and how many slots it holds.
//
// A slab is [header: one live bit per slot, in 64-bit words][pad to align][slot 0][slot 1]...
// The header sits in the slab's own first page so that, for most back ends, setting a
// live bit and writing the object touch a single page (see slab_write.cpp). The slab size
// is the smallest run of pages whose unused tail is at most 1/32 of it (about 3%); when
// no run up to the search limit reaches that, the run with the least waste wins. For the
// common small objects one page is enough: 48-byte objects give 85 slots and a 16-byte
// header in exactly 4096 bytes, 64-byte objects 63 slots and 56 bytes left over.
#include <cstddef>

#include "cache/layout.hpp"
#include "os/os.hpp"

namespace pmalloc::internal {
namespace {

std::size_t align_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }

std::size_t words_for(std::size_t slots) noexcept { return (slots + 63) / 64; }

// Largest slot count that fits a slab of `bytes` (0 when not even one fits).
std::size_t slots_fitting(std::size_t bytes, std::size_t slot, std::size_t align) noexcept {
  std::size_t n = bytes / slot;
  while (n > 0 && align_up(words_for(n) * 8, align) + n * slot > bytes) --n;
  return n;
}

}  // namespace

Geometry make_geometry(std::size_t object_size, std::size_t align) noexcept {
  const std::size_t page = os::page_size();
  Geometry g{};
  g.object_size = object_size;
  g.align = align;
  g.slot_size = align_up(object_size, align);
  const std::size_t min_pages = (align_up(8, align) + g.slot_size + page - 1) / page;
  const std::size_t max_pages = min_pages * 2 > 64 ? min_pages * 2 : 64;
  std::size_t best_pages = min_pages;
  std::size_t best_slots = slots_fitting(min_pages * page, g.slot_size, align);
  for (std::size_t pages = min_pages; pages <= max_pages; ++pages) {
    const std::size_t bytes = pages * page;
    const std::size_t n = slots_fitting(bytes, g.slot_size, align);
    if (n == 0) continue;
    const std::size_t waste = bytes - n * g.slot_size;
    if (waste * 32 <= bytes) {
      best_pages = pages;
      best_slots = n;
      break;
    }
    // Compare waste fractions: waste / bytes < best_waste / best_bytes.
    const std::size_t best_bytes = best_pages * page;
    const std::size_t best_waste = best_bytes - best_slots * g.slot_size;
    if (waste * best_bytes < best_waste * bytes) {
      best_pages = pages;
      best_slots = n;
    }
  }
  g.slab_bytes = best_pages * page;
  g.slots_per_slab = best_slots;
  g.header_words = words_for(best_slots);
  g.first_slot_offset = align_up(g.header_words * 8, align);
  return g;
}

}  // namespace pmalloc::internal
