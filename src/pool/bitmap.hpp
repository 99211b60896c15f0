// Bit arrays over 64-bit words: the granule bitmaps of a region.
//
// A region keeps two bitmaps with one bit per granule (see region.hpp):
//   used  - the granule belongs to a live allocation;
//   start - the granule is the first of a live allocation.
// An allocation is therefore the run [s, e) where start[s] is set and e is the first
// granule after s whose used bit is clear or whose start bit is set. That is how pfree
// finds the size without a header inside the pool's pages (genalloc's trick, done with
// two bitmaps instead of an interleaved pair of bits).
// All indices are bit indices from the array's first word; `end` is exclusive.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pmalloc::internal::bitmap {

using Word = std::uint64_t;
inline constexpr std::size_t kBits = 64;

constexpr std::size_t words_for(std::size_t bits) noexcept { return (bits + kBits - 1) / kBits; }

inline bool test(const Word* w, std::size_t i) noexcept {
  return ((w[i / kBits] >> (i % kBits)) & 1u) != 0;
}

// Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64.
constexpr Word mask(std::size_t lo, std::size_t hi) noexcept {
  const Word upper = hi == kBits ? ~Word{0} : ((Word{1} << hi) - 1);
  return upper & ~((Word{1} << lo) - 1);
}

// Sets (kSet) or clears bits [begin, end), a word at a time. Inline: allocation and
// pfree call it on every operation, mostly for a range inside one word.
template <bool kSet>
inline void apply(Word* w, std::size_t begin, std::size_t end) noexcept {
  while (begin < end) {
    const std::size_t i = begin / kBits;
    const std::size_t lo = begin % kBits;
    const std::size_t hi = (end - i * kBits) < kBits ? end - i * kBits : kBits;
    if constexpr (kSet) {
      w[i] |= mask(lo, hi);
    } else {
      w[i] &= ~mask(lo, hi);
    }
    begin = i * kBits + hi;
  }
}

inline void set_range(Word* w, std::size_t begin, std::size_t end) noexcept { apply<true>(w, begin, end); }
inline void clear_range(Word* w, std::size_t begin, std::size_t end) noexcept { apply<false>(w, begin, end); }
// The first set (clear) bit in [begin, end), or end when there is none.
std::size_t find_set(const Word* w, std::size_t begin, std::size_t end) noexcept;
std::size_t find_clear(const Word* w, std::size_t begin, std::size_t end) noexcept;
// The last set bit in [begin, end), or end when there is none.
std::size_t find_last_set(const Word* w, std::size_t begin, std::size_t end) noexcept;
// First fit: the lowest i in [begin, end) with i % align == 0 and [i, i+len) all clear,
// or end when there is none. align is a power of two.
std::size_t find_clear_run(const Word* w, std::size_t begin, std::size_t end, std::size_t len,
                           std::size_t align) noexcept;
// The end of the allocation run that continues at `begin`: the first i in [begin, end)
// whose `used` bit is clear or whose `start` bit is set, or end. Costs the run's length,
// not the distance to `end` (pfree and locate in a packed region).
std::size_t find_run_end(const Word* used, const Word* start, std::size_t begin, std::size_t end) noexcept;
// Number of set bits in [begin, end).
std::size_t count(const Word* w, std::size_t begin, std::size_t end) noexcept;

}  // namespace pmalloc::internal::bitmap
