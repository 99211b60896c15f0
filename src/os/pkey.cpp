// Memory protection keys: detection, key allocation and key-tagged mprotect.
//
// A key tags pages; each thread's PKRU register says, per key, whether that thread may
// access (AD bit) and write (WD bit) pages with that key. WRPKRU is an unprivileged
// instruction, so one thread can open write access for itself alone with no system call
// (the pkey writer, src/wr/pkey_writer.cpp; the register arithmetic is in os/pkru.hpp).
// Support needs the CPU (CPUID.7.0:ECX.PKU), the kernel enabling it (ECX.OSPKE) and a
// free key (pkey_alloc). Where any is missing, pkeys_supported() is false and nothing
// here touches PKRU. Linux facts that shape the writer: a fresh mmap() carries key 0
// (mprotect keeps a page's key); threads inherit PKRU from their creator; signal handlers
// run with the kernel's default PKRU (all keys but 0 access-disabled).
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "os/fault.hpp"
#include "os/syscall_util.hpp"
#include "os/os.hpp"

#ifndef SYS_pkey_mprotect
#define SYS_pkey_mprotect 329
#endif
#ifndef SYS_pkey_alloc
#define SYS_pkey_alloc 330
#endif
#ifndef PKEY_DISABLE_WRITE
#define PKEY_DISABLE_WRITE 0x2
#endif

namespace pmalloc::os {

using detail::errno_or;
using detail::prot_bits;

bool cpu_has_pkeys() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  const unsigned pku = 1u << 3, ospke = 1u << 4;
  return (c & pku) != 0 && (c & ospke) != 0;
#else
  return false;
#endif
}

int pkey_alloc_write_disabled(int* out) noexcept {
  *out = -1;
  if (int e = fault::should_fail()) return e;
  const long k = ::syscall(SYS_pkey_alloc, 0UL, static_cast<unsigned long>(PKEY_DISABLE_WRITE));
  if (k < 0) return errno_or(ENOSPC);
  *out = static_cast<int>(k);
  return 0;
}

int set_access_pkey(void* addr, std::size_t size, Access a, int pkey) noexcept {
  if (addr == nullptr || size == 0 || !is_page_aligned(addr) || (size & (page_size() - 1)) != 0 || pkey < 0) {
    return EINVAL;
  }
  if (int e = fault::should_fail()) return e;
  return ::syscall(SYS_pkey_mprotect, addr, size, prot_bits(a), pkey) == 0 ? 0 : errno_or(ENOMEM);
}

}  // namespace pmalloc::os
