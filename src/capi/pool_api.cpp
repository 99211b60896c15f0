// The C API of pools (include/pmalloc/pmalloc.h): a thin shell over src/pool that turns
// the engine's error values into errno / return codes.
#include <cerrno>

#include "capi/errno_result.hpp"
#include <cstdint>
#include <cstring>

#include "core/error.hpp"
#include "os/os.hpp"
#include "pmalloc/pmalloc.h"
#include "pool/fast_path.hpp"
#include "pool/pool.hpp"

using namespace pmalloc::internal;

using pmalloc::internal::capi::pointer;
using pmalloc::internal::capi::status;

namespace {

// Everything pool_alloc_fast() leaves: locking, committing, reuse, new regions, errors.
[[gnu::noinline]] void* alloc_general(pmalloc_pool* pool, size_t size) {
  void* p = nullptr;
  const int e = pool_alloc(from_handle(pool), size, kGranule, &p);
  return pointer(e, p);
}

[[gnu::noinline]] int free_general(pmalloc_pool* pool, const void* p) { return status(pool_free(from_handle(pool), p)); }

}  // namespace

extern "C" {

pmalloc_pool* pmalloc_create_pool(const char* name, unsigned flags) {
  Pool* pool = nullptr;
  const int e = pool_create(name, flags, &pool);
  return static_cast<pmalloc_pool*>(pointer(e, to_handle(pool)));
}

int pmalloc_prealloc(pmalloc_pool* pool, size_t size) { return status(pool_prealloc(from_handle(pool), size)); }

void* pmalloc_alloc(pmalloc_pool* pool, size_t size) {
  if (void* p = pool_alloc_fast(from_handle(pool), size)) return p;
  return alloc_general(pool, size);  // a tail call: the fast path above makes no call
}

void* pmalloc_aligned(pmalloc_pool* pool, size_t size, size_t align) {
  void* p = nullptr;
  const int e = pool_alloc(from_handle(pool), size, align, &p);
  return pointer(e, p);
}

void* pzalloc(pmalloc_pool* pool, size_t size) {
  void* p = pmalloc(pool, size);
  if (p != nullptr) std::memset(p, 0, size);
  return p;
}

void* pcalloc(pmalloc_pool* pool, size_t n, size_t size) {
  size_t total = 0;
  if (n == 0 || size == 0) {
    errno = fail(EINVAL, "pcalloc: element count and size must not be 0");
    return nullptr;
  }
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = fail(ENOMEM, "pcalloc: %zu * %zu bytes overflows", n, size);
    return nullptr;
  }
  return pzalloc(pool, total);
}

char* pstrdup(pmalloc_pool* pool, const char* s) {
  if (s == nullptr) {
    errno = fail(EINVAL, "pstrdup: string is NULL");
    return nullptr;
  }
  const size_t n = std::strlen(s) + 1;
  auto* p = static_cast<char*>(pmalloc(pool, n));
  if (p != nullptr) std::memcpy(p, s, n);
  return p;
}

int pfree(pmalloc_pool* pool, const void* p) {
  if (pool_free_fast(from_handle(pool), p)) return 0;
  return free_general(pool, p);  // a tail call, as in pmalloc_alloc()
}

int pmalloc_protect_pool(pmalloc_pool* pool) { return status(pool_protect(from_handle(pool))); }

void pmalloc_destroy_pool(pmalloc_pool* pool) { pool_destroy(from_handle(pool)); }

int pmalloc_pool_stats(const pmalloc_pool* pool, struct pmalloc_stats* out) {
  return status(pool_stats(from_handle(pool), out));
}

const char* pmalloc_pool_name(const pmalloc_pool* pool) {
  if (int e = pool_validate(from_handle(pool))) {
    errno = e;
    return nullptr;
  }
  return from_handle(pool)->name;
}

const char* pmalloc_last_error(void) { return last_error(); }

int pmalloc_seal_supported(void) { return pmalloc::os::seal_supported() ? 1 : 0; }

}  // extern "C"
