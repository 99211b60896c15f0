// MetaTxn implementation (see meta_txn.hpp).
#include "pool/meta_txn.hpp"

#include <cerrno>
#include <cstring>
#include <new>

#include "core/error.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal {

void* MetaTxn::stage(void* dst, std::size_t n) noexcept {
  // Editing the same bytes twice in one transaction returns the same copy.
  for (Staged& s : staged_) {
    if (s.dst == dst && s.n == n) return s.copy.get();
  }
  try {
    Staged s{dst, n, std::make_unique<std::byte[]>(n), std::make_unique<std::byte[]>(n)};
    std::memcpy(s.copy.get(), dst, n);
    std::memcpy(s.old.get(), dst, n);
    staged_.push_back(std::move(s));
    return staged_.back().copy.get();
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

int MetaTxn::write_back() noexcept {
  for (std::size_t i = 0; i < staged_.size(); ++i) {
    const Staged& s = staged_[i];
    const int e = wr::write(s.dst, s.copy.get(), s.n, os::Access::read);
    if (e == 0) continue;
    for (std::size_t j = i; j-- > 0;) {
      if (wr::write(staged_[j].dst, staged_[j].old.get(), staged_[j].n, os::Access::read) != 0) {
        fatal("metadata write-back failed and could not be undone (errno %d)", e);
      }
    }
    staged_.clear();
    return fail(e, "pmalloc: cannot update protected pool metadata through the '%s' writer (errno %d)",
                wr::backend_name(wr::backend()), e);
  }
  staged_.clear();
  return 0;
}

}  // namespace pmalloc::internal
