// Word-at-a-time bit array operations (see bitmap.hpp).
#include "pool/bitmap.hpp"

#include <bit>

namespace pmalloc::internal::bitmap {
namespace {

// First bit in [begin, end) whose value equals kSet.
template <bool kSet>
std::size_t find(const Word* w, std::size_t begin, std::size_t end) noexcept {
  while (begin < end) {
    const std::size_t i = begin / kBits;
    Word v = kSet ? w[i] : ~w[i];
    v &= ~((Word{1} << (begin % kBits)) - 1);
    if (v != 0) {
      const std::size_t hit = i * kBits + static_cast<std::size_t>(std::countr_zero(v));
      return hit < end ? hit : end;
    }
    begin = (i + 1) * kBits;
  }
  return end;
}

}  // namespace


std::size_t find_set(const Word* w, std::size_t begin, std::size_t end) noexcept {
  return find<true>(w, begin, end);
}
std::size_t find_clear(const Word* w, std::size_t begin, std::size_t end) noexcept {
  return find<false>(w, begin, end);
}

std::size_t find_last_set(const Word* w, std::size_t begin, std::size_t end) noexcept {
  std::size_t hi = end;  // search [begin, hi)
  while (hi > begin) {
    const std::size_t i = (hi - 1) / kBits;
    const std::size_t lo_bit = i * kBits < begin ? begin - i * kBits : 0;
    const std::size_t hi_bit = hi - i * kBits;
    const Word v = w[i] & mask(lo_bit, hi_bit);
    if (v != 0) return i * kBits + (kBits - 1 - static_cast<std::size_t>(std::countl_zero(v)));
    hi = i * kBits > begin ? i * kBits : begin;
  }
  return end;
}

std::size_t find_clear_run(const Word* w, std::size_t begin, std::size_t end, std::size_t len,
                           std::size_t align) noexcept {
  std::size_t i = (begin + align - 1) & ~(align - 1);
  while (i < end && len <= end - i) {
    const std::size_t set = find_set(w, i, i + len);
    if (set == i + len) return i;
    // Skip past the obstacle, then past the used run that follows it.
    std::size_t next = find_clear(w, set + 1, end);
    i = (next + align - 1) & ~(align - 1);
  }
  return end;
}

std::size_t find_run_end(const Word* used, const Word* start, std::size_t begin, std::size_t end) noexcept {
  while (begin < end) {
    const std::size_t i = begin / kBits;
    Word v = ~used[i] | start[i];
    v &= ~((Word{1} << (begin % kBits)) - 1);
    if (v != 0) {
      const std::size_t hit = i * kBits + static_cast<std::size_t>(std::countr_zero(v));
      return hit < end ? hit : end;
    }
    begin = (i + 1) * kBits;
  }
  return end;
}

std::size_t count(const Word* w, std::size_t begin, std::size_t end) noexcept {
  std::size_t n = 0;
  while (begin < end) {
    const std::size_t i = begin / kBits;
    const std::size_t lo = begin % kBits;
    const std::size_t hi = (end - i * kBits) < kBits ? end - i * kBits : kBits;
    n += static_cast<std::size_t>(std::popcount(w[i] & mask(lo, hi)));
    begin = i * kBits + hi;
  }
  return n;
}

}  // namespace pmalloc::internal::bitmap
