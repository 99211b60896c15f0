// Linux implementation of the OS primitive layer (contract in os.hpp).
#include "os/os.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "os/fault.hpp"
#include "os/syscall_util.hpp"

#ifndef SYS_mseal
#define SYS_mseal 462  // x86-64 and most other architectures since Linux 6.10
#endif

namespace pmalloc::os {

using detail::errno_or;
using detail::prot_bits;

namespace {

bool valid_range(const void* addr, std::size_t size) noexcept {
  return addr != nullptr && size != 0 && is_page_aligned(addr) && (size & (page_size() - 1)) == 0;
}

}  // namespace

const char* access_name(Access a) noexcept {
  switch (a) {
    case Access::none: return "none";
    case Access::read: return "read";
    case Access::read_write: return "read-write";
    case Access::read_exec: return "read-exec";
  }
  return "?";
}

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

int reserve(std::size_t size, void** out) noexcept {
  *out = nullptr;
  if (size == 0 || (size & (page_size() - 1)) != 0) return EINVAL;
  if (int e = fault::should_fail()) return e;
  void* p = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return errno_or(ENOMEM);
  *out = p;
  return 0;
}

int set_access(void* addr, std::size_t size, Access a) noexcept {
  if (!valid_range(addr, size)) return EINVAL;
  if (int e = fault::should_fail()) return e;
  return ::mprotect(addr, size, prot_bits(a)) == 0 ? 0 : errno_or(ENOMEM);
}

int move_onto(void* from, std::size_t size, void* to) noexcept {
  if (!valid_range(from, size) || !valid_range(to, size)) return EINVAL;
  if (int e = fault::should_fail()) return e;
  void* moved = ::mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  return moved == to ? 0 : errno_or(EINVAL);
}

int process_id() noexcept { return static_cast<int>(::getpid()); }

bool seal_supported() noexcept {
  static const bool supported = [] {
    const char* off = std::getenv("PMALLOC_NO_MSEAL");
    if (off != nullptr && std::strcmp(off, "1") == 0) return false;
    // A zero-length seal is a no-op that still reports ENOSYS on older kernels.
    return ::syscall(SYS_mseal, 0UL, 0UL, 0UL) == 0;
  }();
  return supported;
}

int seal(void* addr, std::size_t size) noexcept {
  if (!valid_range(addr, size)) return EINVAL;
  if (!seal_supported()) return ENOSYS;
  if (int e = fault::should_fail()) return e;
  return ::syscall(SYS_mseal, addr, size, 0UL) == 0 ? 0 : errno_or(EPERM);
}

int discard(void* addr, std::size_t size) noexcept {
  if (!valid_range(addr, size)) return EINVAL;
  if (int e = fault::should_fail()) return e;
  return ::madvise(addr, size, MADV_DONTNEED) == 0 ? 0 : errno_or(EINVAL);
}

int advise_hugepages(void* addr, std::size_t size) noexcept {
  if (!valid_range(addr, size)) return EINVAL;
  if (int e = fault::should_fail()) return e;
  return ::madvise(addr, size, MADV_HUGEPAGE) == 0 ? 0 : errno_or(EINVAL);
}

int release(void* addr, std::size_t size) noexcept {
  if (!valid_range(addr, size)) return EINVAL;
  if (int e = fault::should_fail()) return e;
  return ::munmap(addr, size) == 0 ? 0 : errno_or(EINVAL);
}

namespace {
// -1: not tried yet; -2: unavailable; otherwise the descriptor.
std::atomic<int> g_procmem_fd{-1};

// A forked child inherits the descriptor, and it still names the *parent's* memory: a
// write through it would land in the parent. The child drops it and opens its own.
void forget_procmem_in_child() noexcept {
  const int fd = g_procmem_fd.exchange(-1, std::memory_order_acq_rel);
  if (fd >= 0) ::close(fd);
}

// True if a write through fd to a read-only page really lands: some kernels open the file
// but refuse such writes (proc_mem.force_override=never, or =ptrace, which does not cover a
// process writing itself), and some security modules refuse them too.
bool writes_read_only_pages(int fd) noexcept {
  const std::size_t page = page_size();
  void* p = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  auto* byte = static_cast<volatile unsigned char*>(p);
  *byte = 1;
  bool ok = false;
  if (::mprotect(p, page, PROT_READ) == 0) {
    const unsigned char two = 2;
    ok = ::pwrite64(fd, &two, 1, static_cast<off64_t>(reinterpret_cast<std::uintptr_t>(p))) == 1 && *byte == 2;
  }
  (void)::munmap(p, page);
  return ok;
}

// PMALLOC_NO_PROCMEM=1 behaves as a kernel that refuses the writes (tests of the fallbacks).
bool procmem_disabled() noexcept {
  const char* off = std::getenv("PMALLOC_NO_PROCMEM");
  return off != nullptr && std::strcmp(off, "1") == 0;
}

int procmem_fd() noexcept {
  int fd = g_procmem_fd.load(std::memory_order_acquire);
  if (fd != -1) return fd;
  static const bool fork_handler = ::pthread_atfork(nullptr, nullptr, forget_procmem_in_child) == 0;
  (void)fork_handler;
  int opened = procmem_disabled() ? -1 : ::open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (opened >= 0 && !writes_read_only_pages(opened)) {
    ::close(opened);
    opened = -1;
  }
  int want = opened >= 0 ? opened : -2;
  int expected = -1;
  if (!g_procmem_fd.compare_exchange_strong(expected, want, std::memory_order_acq_rel)) {
    if (opened >= 0) ::close(opened);
    return expected;
  }
  return want;
}
}  // namespace

bool procmem_available() noexcept { return procmem_fd() >= 0; }

int procmem_write(void* dst, const void* src, std::size_t n) noexcept {
  if (n == 0) return 0;
  if (dst == nullptr || src == nullptr) return EINVAL;
  int fd = procmem_fd();
  if (fd < 0) return ENOSYS;
  if (int e = fault::should_fail()) return e;
  auto* out = static_cast<const char*>(src);
  auto where = reinterpret_cast<std::uintptr_t>(dst);
  while (n > 0) {
    ssize_t w = ::pwrite64(fd, out, n, static_cast<off64_t>(where));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_or(EIO);
    }
    if (w == 0) return EIO;
    out += w;
    where += static_cast<std::uintptr_t>(w);
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

}  // namespace pmalloc::os
