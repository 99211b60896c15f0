// Writer back-end selection and the procmem and mprotect back ends (see writer.hpp).
#include "wr/writer.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace pmalloc::internal::wr {
namespace {

Backend choose() noexcept {
  const char* forced = std::getenv("PMALLOC_WR_BACKEND");
  if (forced != nullptr && *forced != '\0') {
    for (Backend b : {Backend::pkey, Backend::procmem, Backend::alias, Backend::mprotect}) {
      if (std::strcmp(forced, backend_name(b)) != 0) continue;
      if (backend_available(b)) return b;
      std::fprintf(stderr, "pmalloc: PMALLOC_WR_BACKEND=%s is not available on this machine; "
                           "write-rare updates will fail\n", forced);
      return Backend::none;
    }
    std::fprintf(stderr, "pmalloc: PMALLOC_WR_BACKEND=%s is unknown (pkey, procmem, alias, "
                         "mprotect); write-rare updates will fail\n", forced);
    return Backend::none;
  }
  for (Backend b : {Backend::pkey, Backend::procmem, Backend::alias, Backend::mprotect}) {
    if (backend_available(b)) return b;
  }
  return Backend::none;
}

void warn_mprotect_once() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    std::fprintf(stderr, "pmalloc: write-rare back end is 'mprotect': during each update the "
                         "target page is writable by every thread of the process\n");
  });
}

// The mprotect window: one lock so that two windows on one page never interleave
// (a second writer's restore would cut the first one's write short).
std::mutex g_window_lock;

int mprotect_write_many(const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  warn_mprotect_once();
  const std::size_t page = os::page_size();
  std::lock_guard<std::mutex> guard(g_window_lock);
  for (std::size_t i = 0; i < count; ++i) {
    if (chunks[i].n == 0) continue;
    auto begin = reinterpret_cast<std::uintptr_t>(chunks[i].dst) & ~(page - 1);
    auto end = (reinterpret_cast<std::uintptr_t>(chunks[i].dst) + chunks[i].n + page - 1) & ~(page - 1);
    void* base = reinterpret_cast<void*>(begin);
    // Never writable and executable at once: text goes RX -> RW -> RX.
    if (int e = os::set_access(base, end - begin, os::Access::read_write)) return e;
    std::memcpy(chunks[i].dst, chunks[i].src, chunks[i].n);
    if (int e = os::set_access(base, end - begin, restore)) return e;
  }
  return 0;
}

}  // namespace

const char* backend_name(Backend b) noexcept {
  switch (b) {
    case Backend::pkey: return "pkey";
    case Backend::procmem: return "procmem";
    case Backend::alias: return "alias";
    case Backend::mprotect: return "mprotect";
    case Backend::none: return "none";
  }
  return "none";
}

bool backend_available(Backend b) noexcept {
  switch (b) {
    case Backend::procmem: return os::procmem_available();
    case Backend::mprotect: return true;
    case Backend::pkey:
    case Backend::alias:
    case Backend::none: return false;
  }
  return false;
}

Backend backend() noexcept {
  static const Backend chosen = choose();
  return chosen;
}

int write_many(const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    if (chunks[i].n != 0 && (chunks[i].dst == nullptr || chunks[i].src == nullptr)) return EINVAL;
  }
  switch (backend()) {
    case Backend::procmem:
      for (std::size_t i = 0; i < count; ++i) {
        if (int e = os::procmem_write(chunks[i].dst, chunks[i].src, chunks[i].n)) return e;
      }
      return 0;
    case Backend::mprotect: return mprotect_write_many(chunks, count, restore);
    case Backend::pkey:
    case Backend::alias:
    case Backend::none: return ENOTSUP;
  }
  return ENOTSUP;
}

int write(void* dst, const void* src, std::size_t n, os::Access restore) noexcept {
  Chunk c{dst, src, n};
  return write_many(&c, 1, restore);
}

int fill(void* dst, int byte, std::size_t n, os::Access restore) noexcept {
  if (n == 0) return 0;
  std::vector<unsigned char> buffer;
  try {
    buffer.assign(n, static_cast<unsigned char>(byte));
  } catch (...) {
    return ENOMEM;
  }
  return write(dst, buffer.data(), n, restore);
}

}  // namespace pmalloc::internal::wr
