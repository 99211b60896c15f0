// SmallArray<T, N>: room for a run-time number of trivial elements, inside the object up
// to N and on the heap beyond. The cache's write paths size their scratch arrays per call
// (header words, pieces, chunks, images); for the common single-object call everything
// fits inline, so creating or freeing an object performs no heap allocation of its own.
// Neither copyable nor movable (the data pointer may point into the object).
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>

namespace pmalloc::internal {

template <class T, std::size_t N>
class SmallArray {
  static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>);

 public:
  SmallArray() = default;
  SmallArray(const SmallArray&) = delete;
  SmallArray& operator=(const SmallArray&) = delete;
  ~SmallArray() { delete[] heap_; }

  // Room for n elements (contents unspecified); false when the heap has none.
  [[nodiscard]] bool reserve(std::size_t n) noexcept {
    delete[] heap_;
    heap_ = nullptr;
    if (n <= N) {
      data_ = local_;
      return true;
    }
    heap_ = new (std::nothrow) T[n];
    data_ = heap_;
    return heap_ != nullptr;
  }
  T* get() const noexcept { return data_; }
  T& operator[](std::size_t i) const noexcept { return data_[i]; }

 private:
  T local_[N];
  T* heap_ = nullptr;
  T* data_ = local_;
};

}  // namespace pmalloc::internal
