// Unit tests of the granule bitmaps (src/pool/bitmap.hpp) against a std::vector<bool> model.
#include "pool/bitmap.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace bm = pmalloc::internal::bitmap;

namespace {

struct Model {
  explicit Model(std::size_t n) : words(bm::words_for(n)), bits(n) {}
  std::vector<bm::Word> words;
  std::vector<bool> bits;
};

std::size_t model_find(const std::vector<bool>& b, std::size_t begin, std::size_t end, bool value) {
  for (std::size_t i = begin; i < end; ++i)
    if (b[i] == value) return i;
  return end;
}

}  // namespace

TEST(Bitmap, SetClearTestAcrossWordBoundaries) {
  Model m(300);
  bm::set_range(m.words.data(), 60, 130);
  for (std::size_t i = 0; i < 300; ++i) EXPECT_EQ(bm::test(m.words.data(), i), i >= 60 && i < 130) << i;
  bm::clear_range(m.words.data(), 64, 128);
  EXPECT_EQ(bm::count(m.words.data(), 0, 300), 6u);
  EXPECT_TRUE(bm::test(m.words.data(), 63));
  EXPECT_FALSE(bm::test(m.words.data(), 64));
  EXPECT_TRUE(bm::test(m.words.data(), 128));
}

TEST(Bitmap, EmptyRangesAreNoOps) {
  Model m(128);
  bm::set_range(m.words.data(), 10, 10);
  EXPECT_EQ(bm::count(m.words.data(), 0, 128), 0u);
  EXPECT_EQ(bm::find_set(m.words.data(), 5, 5), 5u);
  EXPECT_EQ(bm::find_last_set(m.words.data(), 5, 5), 5u);
}

TEST(Bitmap, RandomOperationsMatchModel) {
  std::mt19937_64 rng(42);
  constexpr std::size_t kBits = 1000;
  Model m(kBits);
  for (int step = 0; step < 5000; ++step) {
    std::size_t a = rng() % kBits, b = rng() % (kBits + 1);
    if (a > b) std::swap(a, b);
    switch (rng() % 6) {
      case 0:
        bm::set_range(m.words.data(), a, b);
        for (std::size_t i = a; i < b; ++i) m.bits[i] = true;
        break;
      case 1:
        bm::clear_range(m.words.data(), a, b);
        for (std::size_t i = a; i < b; ++i) m.bits[i] = false;
        break;
      case 2:
        ASSERT_EQ(bm::find_set(m.words.data(), a, b), model_find(m.bits, a, b, true));
        break;
      case 3:
        ASSERT_EQ(bm::find_clear(m.words.data(), a, b), model_find(m.bits, a, b, false));
        break;
      case 4: {
        std::size_t expect = b;
        for (std::size_t i = b; i-- > a;)
          if (m.bits[i]) {
            expect = i;
            break;
          }
        ASSERT_EQ(bm::find_last_set(m.words.data(), a, b), expect);
        break;
      }
      case 5: {
        const std::size_t len = 1 + rng() % 40;
        const std::size_t align = std::size_t{1} << (rng() % 4);
        std::size_t expect = b;
        for (std::size_t i = (a + align - 1) & ~(align - 1); i + len <= b; i += align) {
          if (model_find(m.bits, i, i + len, true) == i + len) {
            expect = i;
            break;
          }
        }
        ASSERT_EQ(bm::find_clear_run(m.words.data(), a, b, len, align), expect) << a << " " << b << " " << len;
        break;
      }
    }
    std::size_t c = 0;
    for (bool bit : m.bits) c += bit;
    ASSERT_EQ(bm::count(m.words.data(), 0, kBits), c);
  }
}
