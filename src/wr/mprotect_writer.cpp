// The mprotect back end, the last resort: make the target pages writable, copy, restore.
//
// During the window *every* thread of the process can write those pages: this is the
// weakness Kees Cook's review of the kernel proposal warned about, and the reason this
// back end is used only when nothing else works (it says so once on stderr). Windows are
// serialised by one lock so that two windows on one page never interleave (a second
// writer's restore would cut the first one's copy short). A batch whose chunks lie in one
// region's read-only prefix (all pages `read`) opens one window over their span instead of
// one per chunk.
//
// Text (restore == read_exec) gets no window: other threads may be running code on the
// same page, and a page that is RW for the update would kill them (SIGSEGV). Its pages are
// copied to a fresh mapping elsewhere, updated there (RW), made RX and moved over the old
// ones in one mremap: a thread executing there runs the old code or the new, never faults,
// and no page is writable and executable at once, nor writable at its usual address.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "os/os.hpp"
#include "pool/layout.hpp"
#include "wr/backends.hpp"

namespace pmalloc::internal::wr::detail {
namespace {

void warn_once() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    if (backend() == Backend::mprotect) {
      std::fprintf(stderr, "pmalloc: write-rare back end is 'mprotect': during each update the "
                           "target page is writable by every thread of the process\n");
    } else {
      std::fprintf(stderr, "pmalloc: pages the '%s' writer cannot reach are updated through mprotect "
                           "windows (no writable /proc/self/mem): during each such update the target page "
                           "is writable by every thread of the process\n", backend_name(backend()));
    }
  });
}

std::mutex g_window_lock;

struct Span {
  std::uintptr_t begin, end;  // page-aligned
};

Span pages_of(const void* dst, std::size_t n) noexcept {
  const std::uintptr_t page = os::page_size();
  const auto a = reinterpret_cast<std::uintptr_t>(dst);
  return {a & ~(page - 1), (a + n + page - 1) & ~(page - 1)};
}

// Text: copy, update, RX, move over the old pages (see the top of the file). Only this
// writer changes these pages (under g_window_lock), so the copy misses no other update.
int replace(Span s, const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  void* base = reinterpret_cast<void*>(s.begin);
  const std::size_t len = s.end - s.begin;
  void* copy = nullptr;
  if (int e = os::reserve(len, &copy)) return e;
  int e = os::set_access(copy, len, os::Access::read_write);
  if (e == 0) {
    auto* at = static_cast<std::byte*>(copy);
    std::memcpy(at, base, len);
    for (std::size_t i = 0; i < count; ++i) {
      copy_bytes(at + (reinterpret_cast<std::uintptr_t>(chunks[i].dst) - s.begin), chunks[i].src, chunks[i].n);
    }
    e = os::set_access(copy, len, restore);
  }
  if (e == 0) e = os::move_onto(copy, len, base);
  if (e != 0) (void)os::release(copy, len);
  return e;
}

int window(Span s, const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  if (restore == os::Access::read_exec) return replace(s, chunks, count, restore);
  void* base = reinterpret_cast<void*>(s.begin);
  if (int e = os::set_access(base, s.end - s.begin, os::Access::read_write)) return e;
  for (std::size_t i = 0; i < count; ++i) copy_bytes(chunks[i].dst, chunks[i].src, chunks[i].n);
  return os::set_access(base, s.end - s.begin, restore);
}

}  // namespace

int mprotect_write(const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  warn_once();
  std::lock_guard<std::mutex> guard(g_window_lock);
  if (count > 1) {
    // One window when every chunk is in the same region's uniformly read-only prefix.
    const Target first = classify(chunks[0]);
    bool one_window = first.region != nullptr && first.uniform_read && !first.sealed;
    Span all = pages_of(chunks[0].dst, chunks[0].n);
    for (std::size_t i = 1; one_window && i < count; ++i) {
      const Target t = classify(chunks[i]);
      one_window = t.region == first.region && t.uniform_read && !t.sealed;
      const Span s = pages_of(chunks[i].dst, chunks[i].n);
      all.begin = s.begin < all.begin ? s.begin : all.begin;
      all.end = s.end > all.end ? s.end : all.end;
    }
    if (one_window) return window(all, chunks, count, restore);
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (int e = window(pages_of(chunks[i].dst, chunks[i].n), &chunks[i], 1, restore)) return e;
  }
  return 0;
}

}  // namespace pmalloc::internal::wr::detail
