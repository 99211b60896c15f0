// bitmap::find_run_end (the end of an allocation run, used by pfree and locate) against a
// bit-by-bit model, and its cost: it must not scan past the run (a packed region of a
// million granules used to make every pfree and is_pmalloc_object scan to the cursor).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "pool/bitmap.hpp"

namespace {

namespace bitmap = pmalloc::internal::bitmap;

std::size_t model(const std::vector<bool>& used, const std::vector<bool>& start, std::size_t b, std::size_t e) {
  for (std::size_t i = b; i < e; ++i) {
    if (!used[i] || start[i]) return i;
  }
  return e;
}

TEST(BitmapRunEnd, MatchesModel) {
  std::mt19937_64 rng(99);
  constexpr std::size_t kBitsTotal = 1000;
  for (int round = 0; round < 200; ++round) {
    std::vector<bool> used(kBitsTotal), start(kBitsTotal);
    std::vector<bitmap::Word> u(bitmap::words_for(kBitsTotal)), s(bitmap::words_for(kBitsTotal));
    for (std::size_t i = 0; i < kBitsTotal; ++i) {
      used[i] = rng() % 8 != 0;
      start[i] = used[i] && rng() % 16 == 0;
      if (used[i]) bitmap::set_range(u.data(), i, i + 1);
      if (start[i]) bitmap::set_range(s.data(), i, i + 1);
    }
    for (int q = 0; q < 200; ++q) {
      const std::size_t b = rng() % kBitsTotal;
      const std::size_t e = b + rng() % (kBitsTotal - b + 1);
      ASSERT_EQ(bitmap::find_run_end(u.data(), s.data(), b, e), model(used, start, b, e)) << b << ".." << e;
    }
  }
}

TEST(BitmapRunEnd, StopsAtTheRunNotAtTheEnd) {
  // Two allocations in a fully used bitmap: the second one starts at bit 70.
  std::vector<bitmap::Word> u(4, ~bitmap::Word{0}), s(4, 0);
  bitmap::set_range(s.data(), 0, 1);
  bitmap::set_range(s.data(), 70, 71);
  EXPECT_EQ(bitmap::find_run_end(u.data(), s.data(), 1, 256), 70u);
  EXPECT_EQ(bitmap::find_run_end(u.data(), s.data(), 71, 256), 256u);
  EXPECT_EQ(bitmap::find_run_end(u.data(), s.data(), 71, 200), 200u);
  EXPECT_EQ(bitmap::find_run_end(u.data(), s.data(), 5, 5), 5u);
}

}  // namespace
