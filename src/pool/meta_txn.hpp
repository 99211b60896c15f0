// MetaTxn: one metadata update of a pool, applied in place or through the writer.
//
// Pool metadata (region headers, bitmaps, the descriptor) is read-only once the data it
// describes has been protected. Code that changes metadata does not care: it asks the
// transaction for a writable view of the bytes it wants to change, changes them, and
// commits. For metadata that is still writable the view *is* the metadata (no copy, no
// cost). For protected metadata the view is a private copy, and commit() writes all
// copies back through the writer; if a write-back fails half way, the ones already done
// are undone, so an operation is all or nothing. When even the undo fails, the pool
// would be left inconsistent and the process is stopped (fatal): the hardened choice.
//
// Callers do every fallible OS operation (commit pages, create a region) *before* they
// stage edits, so an operation that fails leaves metadata untouched.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace pmalloc::internal {

class MetaTxn {
 public:
  MetaTxn() = default;
  MetaTxn(const MetaTxn&) = delete;
  MetaTxn& operator=(const MetaTxn&) = delete;

  // A writable view of [dst, dst + n). `read_only` says whether those bytes are
  // write-protected now. Returns nullptr only when a private copy cannot be allocated.
  void* edit(void* dst, std::size_t n, bool read_only) noexcept {
    return read_only ? stage(dst, n) : dst;  // writable metadata is edited in place
  }

  template <class T>
  T* edit(T* dst, bool read_only, std::size_t count = 1) noexcept {
    return static_cast<T*>(edit(static_cast<void*>(dst), sizeof(T) * count, read_only));
  }

  // Applies staged copies. 0 or an errno value (then nothing changed).
  [[nodiscard]] int commit() noexcept { return staged_.empty() ? 0 : write_back(); }

  bool empty() const noexcept { return staged_.empty(); }

 private:
  struct Staged {
    void* dst;
    std::size_t n;
    std::unique_ptr<std::byte[]> copy;  // new contents
    std::unique_ptr<std::byte[]> old;   // contents before, for undo
  };
  void* stage(void* dst, std::size_t n) noexcept;
  int write_back() noexcept;

  std::vector<Staged> staged_;
};

}  // namespace pmalloc::internal
