// The C API of execmem (include/pmalloc/execmem.h): a thin shell over src/execmem that
// turns the engine's error values into errno / return codes.
#include <cerrno>

#include "capi/errno_result.hpp"

#include "execmem/execmem.hpp"
#include "pmalloc/execmem.h"

namespace em = pmalloc::internal::execmem;

using pmalloc::internal::capi::status;

extern "C" {

void* execmem_alloc(enum execmem_type type, size_t size) {
  void* p = nullptr;
  if (int e = em::alloc(static_cast<unsigned>(type), size, &p)) {
    errno = e;
    return nullptr;
  }
  return p;
}

int execmem_update_copy(void* dst, const void* src, size_t n) { return status(em::update_copy(dst, src, n)); }

int execmem_free(void* p) { return status(em::deallocate(p)); }

int execmem_protect_ro_after_init(void) { return status(em::protect_ro_after_init()); }

int execmem_get_stats(enum execmem_type type, struct execmem_stats* out) {
  return status(em::stats(static_cast<unsigned>(type), out));
}

int execmem_set_hugepages(int enable) {
  em::set_hugepages(enable != 0);
  return 0;
}

}  // extern "C"
