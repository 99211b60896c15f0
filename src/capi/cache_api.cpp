// The C API of sealed object caches (include/pmalloc/cache.h): a thin shell over
// src/cache that turns the engine's error values into errno / return codes.
#include <cerrno>

#include "capi/errno_result.hpp"

#include "cache/cache.hpp"
#include "core/error.hpp"
#include "pmalloc/pmalloc.h"

using namespace pmalloc::internal;

using pmalloc::internal::capi::status;

extern "C" {

pmalloc_cache* pmalloc_cache_create(const char* name, size_t object_size, size_t align, unsigned flags) {
  CacheDesc* c = nullptr;
  if (int e = cache_create(name, object_size, align, flags, &c)) {
    errno = e;
    return nullptr;
  }
  return to_handle(c);
}

const void* pmalloc_cache_alloc_init(pmalloc_cache* c, pmalloc_cache_init_fn* init, void* ctx) {
  const void* p = nullptr;
  if (int e = cache_alloc_init(from_handle(c), init, ctx, &p)) {
    errno = e;
    return nullptr;
  }
  return p;
}

int pmalloc_cache_alloc_init_many(pmalloc_cache* c, size_t count, const void** out, pmalloc_cache_init_many_fn* init,
                                  void* ctx) {
  return status(cache_alloc_init_many(from_handle(c), count, out, init, ctx));
}

int pmalloc_cache_free(pmalloc_cache* c, const void* obj) { return status(cache_free(from_handle(c), obj)); }

int pmalloc_cache_free_many(pmalloc_cache* c, const void* const* objs, size_t count) {
  return status(cache_free_many(from_handle(c), objs, count));
}

void pmalloc_cache_destroy(pmalloc_cache* c) { cache_destroy(from_handle(c)); }

int pmalloc_cache_stats(const pmalloc_cache* c, struct pmalloc_stats* out) {
  return status(cache_stats(from_handle(c), out));
}

const char* pmalloc_cache_name(const pmalloc_cache* c) {
  if (int e = cache_validate(from_handle(c))) {
    errno = e;
    return nullptr;
  }
  return from_handle(c)->name;
}

size_t pmalloc_cache_object_size(const pmalloc_cache* c) {
  if (int e = cache_validate(from_handle(c))) {
    errno = e;
    return 0;
  }
  return from_handle(c)->geo.object_size;
}

}  // extern "C"
