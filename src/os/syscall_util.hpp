// Helpers shared by the OS layer's translation units (os.cpp, pkey.cpp, memfd.cpp): the
// mapping of os::Access to PROT_* bits and the errno of a failed system call.
#pragma once

#include <sys/mman.h>

#include <cerrno>

#include "os/os.hpp"

namespace pmalloc::os::detail {

// errno after a failed call, or `fallback` should the call have left it 0.
inline int errno_or(int fallback) noexcept { return errno != 0 ? errno : fallback; }

inline int prot_bits(Access a) noexcept {
  switch (a) {
    case Access::none: return PROT_NONE;
    case Access::read: return PROT_READ;
    case Access::read_write: return PROT_READ | PROT_WRITE;
    case Access::read_exec: return PROT_READ | PROT_EXEC;
  }
  return PROT_NONE;
}

}  // namespace pmalloc::os::detail
