// How the C API reports an engine result: the engine returns 0 or an errno value; the C
// functions return it (int) or NULL (pointers) and set errno as well.
#pragma once

#include <cerrno>

namespace pmalloc::internal::capi {

inline int status(int e) noexcept {
  if (e != 0) errno = e;
  return e;
}

inline void* pointer(int e, void* p) noexcept {
  if (e != 0) {
    errno = e;
    return nullptr;
  }
  return p;
}

}  // namespace pmalloc::internal::capi
