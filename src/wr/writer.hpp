// The writer: the one internal path that changes bytes in write-protected pmalloc pages.
//
// Pool metadata updates after protection, write-rare updates (wr_*), sealed-cache
// initialisation and execmem code updates all end here. The back end is chosen once, at
// first use, best first (see DESIGN.md "writer"):
//   pkey     - protection keys: writes enabled for the calling thread only (no syscall);
//   procmem  - the kernel writes through /proc/self/mem; no permission ever changes;
//   alias    - a temporary writable alias of the page at a random address;
//   mprotect - last resort: the page is writable for every thread during the window.
// PMALLOC_WR_BACKEND=<name> forces one; an unavailable forced back end is refused with a
// message on stderr, and every write then fails with ENOTSUP.
//
// The writer checks nothing about its target: callers validate (pool metadata, registry).
// `restore` is the access the target pages have now and must have again afterwards; only
// the mprotect back end needs it.
#pragma once

#include <cstddef>

#include "os/os.hpp"

namespace pmalloc::internal::wr {

enum class Backend { pkey, procmem, alias, mprotect, none };

struct Chunk {
  void* dst;
  const void* src;
  std::size_t n;
};

// The back end in use (chosen on first call; `none` when a forced one is unavailable).
Backend backend() noexcept;
const char* backend_name(Backend b) noexcept;
// Whether a back end can work on this machine (probed, cached).
bool backend_available(Backend b) noexcept;

// 0 or an errno value. Nothing is written on EINVAL/ENOTSUP.
[[nodiscard]] int write(void* dst, const void* src, std::size_t n, os::Access restore) noexcept;
[[nodiscard]] int write_many(const Chunk* chunks, std::size_t count, os::Access restore) noexcept;
[[nodiscard]] int fill(void* dst, int byte, std::size_t n, os::Access restore) noexcept;

}  // namespace pmalloc::internal::wr
