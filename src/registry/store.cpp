// The registry's protected arena, its root page and its update path (see store.hpp).
#include "registry/store.hpp"

#include <cstdint>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.hpp"
#include "os/os.hpp"

namespace pmalloc::internal::registry {

[[gnu::section(".data.rel.ro"), gnu::visibility("hidden")]] Root g_root{nullptr, false};

namespace {

bool root_kernel_writes() noexcept { return __atomic_load_n(&g_root.kernel_writes, __ATOMIC_RELAXED); }

// Writes the root once. 0 or an errno value (then the root is unchanged).
int publish_root(const Root& value) noexcept {
  if (value.kernel_writes) return os::procmem_write(&g_root, &value, sizeof value);
  const std::size_t page = os::page_size();
  auto* first = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(&g_root) & ~(page - 1));
  const auto last = (reinterpret_cast<std::uintptr_t>(&g_root + 1) - 1) & ~(page - 1);
  const std::size_t span = last - reinterpret_cast<std::uintptr_t>(first) + page;
  if (int e = os::set_access(first, span, os::Access::read_write)) return e;
  __atomic_store_n(&g_root.kernel_writes, false, __ATOMIC_RELAXED);
  __atomic_store_n(&g_root.arena, value.arena, __ATOMIC_RELEASE);
  int e = 0;
  for (int i = 0; i < 8; ++i) {
    if ((e = os::set_access(first, span, os::Access::read)) == 0) return 0;
  }
  fatal("address registry: cannot write-protect the registry's root again (errno %d)", e);
}

constexpr int kRetries = 8;

// Applies one write to the arena: through the kernel, or with atomic stores inside an
// open mprotect window. dst and n are multiples of 4.
int store(void* dst, const void* src, std::size_t n) noexcept {
  if (root_kernel_writes()) return os::procmem_write(dst, src, n);
  auto* d = static_cast<std::uint32_t*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  for (std::size_t i = 0; i < n / 4; ++i) {
    std::uint32_t v;
    std::memcpy(&v, s + 4 * i, 4);
    __atomic_store_n(d + i, v, __ATOMIC_RELEASE);  // after the odd counter, before the even one
  }
  return 0;
}

// A write that must happen (undo, closing seq, closing window): retried, then fatal.
void store_or_die(void* dst, const void* src, std::size_t n, const char* what) noexcept {
  int e = 0;
  for (int i = 0; i < kRetries; ++i) {
    if ((e = store(dst, src, n)) == 0) return;
  }
  fatal("address registry: cannot %s (errno %d); the registry cannot be trusted", what, e);
}

int open_window(Arena* a) noexcept {
  if (root_kernel_writes()) return 0;
  return os::set_access(a, arena_bytes(), os::Access::read_write);
}

void close_window(Arena* a) noexcept {
  if (root_kernel_writes()) return;
  int e = 0;
  for (int i = 0; i < kRetries; ++i) {
    if ((e = os::set_access(a, arena_bytes(), os::Access::read)) == 0) return;
  }
  fatal("address registry: cannot write-protect the registry again (errno %d)", e);
}

}  // namespace

std::size_t arena_bytes() noexcept { return os::round_up_to_page(sizeof(Arena)); }


bool kernel_writes() noexcept { return root_kernel_writes(); }

const void* root_address() noexcept { return &g_root; }

int ensure_arena(Arena** out) noexcept {
  *out = __atomic_load_n(&g_root.arena, __ATOMIC_RELAXED);
  if (*out != nullptr) return 0;
  const std::size_t bytes = arena_bytes();
  void* base = nullptr;
  if (int e = os::reserve(bytes, &base)) {
    return fail(e, "pmalloc: cannot reserve the address registry (errno %d)", e);
  }
  // Read-only from the start: untouched pages read as zeros (the empty registry) and
  // cost nothing; the kernel allocates a page when an update first writes it.
  if (int e = os::set_access(base, bytes, os::Access::read)) {
    (void)os::release(base, bytes);
    return fail(e, "pmalloc: cannot map the address registry (errno %d)", e);
  }
  // PMALLOC_REGISTRY_WRITER=window forces the mprotect fallback (tests of that path).
  const char* forced = std::getenv("PMALLOC_REGISTRY_WRITER");
  const bool window = forced != nullptr && std::strcmp(forced, "window") == 0;
  const bool kernel = !window && os::procmem_available();
  if (int e = publish_root(Root{static_cast<Arena*>(base), kernel})) {
    (void)os::release(base, bytes);
    return fail(e, "pmalloc: cannot publish the address registry (errno %d)", e);
  }
  // Sealing is for good, so only when no mprotect window will ever be needed; best effort.
  if (kernel && os::seal_supported()) (void)os::seal(base, bytes);
  *out = static_cast<Arena*>(base);
  return 0;
}

namespace {
// The arena is created while the library loads, before the program can have threads, so
// that no lookup ever races with the root's one write (a kernel copy might tear the
// pointer for a concurrent reader). Should this fail, the first registration retries
// (registry.cpp, under the update lock).
[[maybe_unused]] const bool g_created_at_load = [] {
  Arena* a = nullptr;
  return ensure_arena(&a) == 0;
}();
}  // namespace

int Update::begin() noexcept {
  if (int e = open_window(a_)) return error_ = e;
  seq_ = ld(a_->header.seq);
  const std::uint64_t odd = seq_ + 1;
  if (int e = store(&a_->header.seq, &odd, sizeof odd)) {
    close_window(a_);
    return error_ = e;
  }
  begun_ = true;
  return 0;
}

int Update::put(void* dst, const void* src, std::size_t n) noexcept {
  if (error_ != 0) return error_;
  try {
    const std::size_t offset = log_.size();
    log_.insert(log_.end(), static_cast<const unsigned char*>(dst), static_cast<const unsigned char*>(dst) + n);
    undo_.push_back(Undo{dst, n, offset});
  } catch (const std::bad_alloc&) {
    return error_ = ENOMEM;
  }
  if (int e = store(dst, src, n)) return error_ = e;
  return 0;
}

void Update::finish(bool commit) noexcept {
  if (!begun_ || finished_) return;
  finished_ = true;
  if (!commit || error_ != 0) {
    for (std::size_t i = undo_.size(); i-- > 0;) {
      store_or_die(undo_[i].dst, log_.data() + undo_[i].offset, undo_[i].n, "undo a failed update");
    }
  }
  // Even when the update was undone the counter moves on: a reader that saw the
  // intermediate state must retry.
  const std::uint64_t even = seq_ + 2;
  store_or_die(&a_->header.seq, &even, sizeof even, "end an update");
  close_window(a_);
}

}  // namespace pmalloc::internal::registry
