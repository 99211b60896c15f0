// Shared (memfd-backed) reservations and writable aliases of them, for the 'alias' writer.
//
// Why memfd: a page of a private anonymous mapping exists at one virtual address only, so
// the only ways to change it while it is read-only are to make *that* mapping writable
// (every thread sees the permission) or to ask the kernel (/proc/self/mem). A page of a
// shared file mapping can be mapped a second time: the alias writer maps the same pages
// read-write at a random address for the length of an update and unmaps them again, while
// the mapping everybody uses stays read-only throughout.
//
// The memfd is closed as soon as the reservation exists: the mapping keeps the file alive,
// the kernel frees it when the last mapping goes (no descriptor per region, no hole
// punching, no cleanup after fork). A second view is made without the descriptor by
// mremap(old, 0, len): for shared mappings that creates a new mapping of the same pages,
// for private ones it fails with EINVAL, so a caller can never alias the wrong memory by
// mistake. The kernel refuses it (EPERM) on mseal()ed pages.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "os/fault.hpp"
#include "os/syscall_util.hpp"
#include "os/os.hpp"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

namespace pmalloc::os {

using detail::errno_or;

namespace {

bool aligned_range(const void* addr, std::size_t size) noexcept {
  return addr != nullptr && size != 0 && is_page_aligned(addr) && (size & (page_size() - 1)) == 0;
}

}  // namespace

int reserve_shared(std::size_t size, void** out) noexcept {
  *out = nullptr;
  if (size == 0 || (size & (page_size() - 1)) != 0) return EINVAL;
  if (int e = fault::should_fail()) return e;
  const int fd = static_cast<int>(::syscall(SYS_memfd_create, "pmalloc-region", MFD_CLOEXEC));
  if (fd < 0) return errno_or(ENOMEM);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int e = errno_or(ENOMEM);
    ::close(fd);
    return e;
  }
  void* p = ::mmap(nullptr, size, PROT_NONE, MAP_SHARED, fd, 0);
  const int e = p == MAP_FAILED ? errno_or(ENOMEM) : 0;
  ::close(fd);
  if (e != 0) return e;
  *out = p;
  return 0;
}

int map_alias(void* addr, std::size_t size, void* hint, void** out) noexcept {
  *out = nullptr;
  if (!aligned_range(addr, size) || (hint != nullptr && !is_page_aligned(hint))) return EINVAL;
  if (int e = fault::should_fail()) return e;
  // Claim the address first so that mremap(MREMAP_FIXED) replaces only our placeholder.
  void* at = ::mmap(hint, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                                               (hint != nullptr ? MAP_FIXED_NOREPLACE : 0), -1, 0);
  if (at == MAP_FAILED) return errno_or(ENOMEM);
  if (hint != nullptr && at != hint) {  // kernels before 4.17 treat the flag as a hint
    ::munmap(at, size);
    return EEXIST;
  }
  void* view = ::mremap(addr, 0, size, MREMAP_MAYMOVE | MREMAP_FIXED, at);
  if (view == MAP_FAILED) {
    const int e = errno_or(EINVAL);
    ::munmap(at, size);
    return e;
  }
  // The new view inherits the original's permission; it alone becomes writable (never
  // executable: an alias of text is rw-, the text itself stays r-x).
  if (::mprotect(view, size, PROT_READ | PROT_WRITE) != 0) {
    const int e = errno_or(EACCES);
    ::munmap(view, size);
    return e;
  }
  *out = view;
  return 0;
}

int reserve_at(void* hint, std::size_t size, void** out) noexcept {
  *out = nullptr;
  if (!aligned_range(hint, size)) return EINVAL;
  if (int e = fault::should_fail()) return e;
  void* at = ::mmap(hint, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (at == MAP_FAILED) return errno_or(ENOMEM);
  if (at != hint) {
    ::munmap(at, size);
    return EEXIST;
  }
  *out = at;
  return 0;
}

int map_alias_into(void* addr, std::size_t size, void* at, void** out) noexcept {
  *out = nullptr;
  if (!aligned_range(addr, size) || !aligned_range(at, size)) return EINVAL;
  if (int e = fault::should_fail()) return e;
  void* view = ::mremap(addr, 0, size, MREMAP_MAYMOVE | MREMAP_FIXED, at);
  if (view == MAP_FAILED) return errno_or(EINVAL);  // the reservation at `at` is intact
  if (::mprotect(view, size, PROT_READ | PROT_WRITE) != 0) {
    const int e = errno_or(EACCES);
    (void)unmap_view(view, size, true);
    return e;
  }
  *out = view;
  return 0;
}

int unmap_view(void* view, std::size_t size, bool keep_reservation) noexcept {
  if (!aligned_range(view, size)) return EINVAL;
  if (int e = fault::should_fail()) {
    // Never leave a writable view behind, even when told to fail: drop it outright.
    ::munmap(view, size);
    return e;
  }
  if (keep_reservation) {
    void* p = ::mmap(view, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (p != MAP_FAILED) return 0;
  }
  return ::munmap(view, size) == 0 ? 0 : errno_or(EINVAL);
}

}  // namespace pmalloc::os
