/**
 * @file pmalloc/pmalloc.h
 * @brief pmalloc: protectable memory for C and C++ programs on Linux (the C API).
 *
 * A pool packs many small objects tightly into pages, is write-protected as a whole
 * (optionally sealed with mseal for good) and destroyed as a unit. Life cycle:
 *   1. pmalloc_create_pool   2. optionally pmalloc_prealloc   3. pmalloc / pzalloc / ...
 *   4. initialise            (repeat 3-4; pfree rolls back)   5. pmalloc_protect_pool
 *   6. use read-only         7. optionally pmalloc_destroy_pool
 *
 * Error convention: functions returning a pointer return NULL and set errno; functions
 * returning int return 0 or a positive errno value (errno is set to it as well).
 * pmalloc_last_error() gives a one-line reason for the calling thread's last failure.
 *
 * Thread safety: every function may be called from any thread; a pool's operations are
 * serialised by a per-pool lock (see docs/design.md for its cost).
 *
 * This header also includes the write-rare (pmalloc/wr.h), object check
 * (pmalloc/check.h), executable memory (pmalloc/execmem.h), sealed cache
 * (pmalloc/cache.h) and statistics (pmalloc/stats.h) APIs.
 */
#ifndef PMALLOC_PMALLOC_H
#define PMALLOC_PMALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque pool handle (it points into the pool's own, protected, metadata). */
typedef struct pmalloc_pool pmalloc_pool;

/** @name Pool flags (pmalloc_create_pool)
 * @{ */
#define PMALLOC_RO       0x0u /**< write-once: writable until protected, read-only after (default) */
#define PMALLOC_WR       0x1u /**< write-rare: after protection writable only through wr_* */
#define PMALLOC_AUTO     0x2u /**< protect each page as soon as no further allocation can land in it */
#define PMALLOC_SEAL     0x4u /**< on protect also mseal() the pages (Linux >= 6.10); irrevocable */
#define PMALLOC_NO_GUARD 0x8u /**< no guard pages around the pool's regions */
/** @} */

/** Bytes a pool name may have (longer names are refused with EINVAL). */
#define PMALLOC_NAME_MAX 63

/** Statistics of one pool (pmalloc_pool_stats()). */
struct pmalloc_stats {
  size_t bytes_live;        /**< sum of the sizes requested by live allocations */
  size_t bytes_committed;   /**< bytes of data pages that hold or may hold pool data */
  size_t bytes_reserved;    /**< virtual address space reserved, guard pages included */
  size_t bytes_protected;   /**< bytes of data pages write-protected now */
  size_t allocations_live;  /**< live allocations */
  size_t regions;           /**< contiguous reservations the pool is made of */
  int    sealed;            /**< 1 when the protected pages are mseal()ed */
  /* additions */
  int    is_protected;      /**< 1 when every committed data page is write-protected */
  size_t bytes_metadata;    /**< bytes of the metadata pages that describe committed data
                                 (descriptor, headers, bitmaps): at most this much metadata is
                                 resident; the rest of a region's metadata span is address
                                 space only (counted in bytes_reserved) */
  size_t bytes_free;        /**< committed data bytes not covered by live allocations */
  size_t protect_calls;     /**< successful pmalloc_protect_pool() calls */
  unsigned flags;           /**< the pool's current flags */
};

/** Creates a pool. @p name (NULL means "") has at most PMALLOC_NAME_MAX bytes; @p flags
 *  is an OR of PMALLOC_* flags. Returns NULL with errno EINVAL for unknown flags or a long
 *  name, ENOMEM when no address space is left. */
pmalloc_pool *pmalloc_create_pool(const char *name, unsigned flags); /* EINVAL for unknown flags */
/** Commits room for @p size more bytes now, so that later allocations need no system
 *  call and cannot fail for lack of memory. Returns 0 or an errno value. */
int   pmalloc_prealloc(pmalloc_pool *pool, size_t size);
#ifdef __cplusplus
/* In C++ the name pmalloc is also the library's namespace (pmalloc::Pool), and a
 * namespace and a function cannot share a name. The C function is therefore reached
 * through a function-like macro, which expands only when the name is followed by '(':
 * pmalloc(pool, size) and pmalloc::Pool both work in one translation unit. */
void *pmalloc_alloc(pmalloc_pool *pool, size_t size);
#define pmalloc(pool, size) pmalloc_alloc((pool), (size))
#else
/** Allocates @p size bytes (16-byte aligned) from @p pool. Returns NULL with errno EINVAL
 *  for size 0 or an invalid pool, ENOMEM when the pool cannot grow. After
 *  pmalloc_protect_pool() allocation still works, from fresh writable pages. */
void *pmalloc(pmalloc_pool *pool, size_t size);                       /* EINVAL for 0, ENOMEM when impossible */
/** The same function as pmalloc(), under a name that C++ can use too. */
void *pmalloc_alloc(pmalloc_pool *pool, size_t size);                 /* the same function */
#endif
/** Like pmalloc(), aligned to @p align: a power of two <= the page size, else EINVAL. */
void *pmalloc_aligned(pmalloc_pool *pool, size_t size, size_t align); /* power of two <= page size, else EINVAL */
/** Like pmalloc(), zero-filled. */
void *pzalloc(pmalloc_pool *pool, size_t size);
/** Zero-filled room for @p n objects of @p size bytes; EINVAL for 0, ENOMEM when n * size
 *  overflows. */
void *pcalloc(pmalloc_pool *pool, size_t n, size_t size);             /* overflow-checked */
/** A copy of the NUL-terminated string @p s in @p pool (EINVAL for NULL). */
char *pstrdup(pmalloc_pool *pool, const char *s);
/** Frees the allocation that starts at @p p. Before protection the memory is reused;
 *  after protection only the accounting changes and the bytes stay read-only. Returns 0,
 *  or EINVAL unless @p p starts a live allocation of this pool. */
int   pfree(pmalloc_pool *pool, const void *p);  /* EINVAL unless p starts a live allocation of this pool */
/** Write-protects every page of the pool (and its metadata); with PMALLOC_SEAL also seals
 *  them. May be called again after more allocations. Returns 0 or an errno value. */
int   pmalloc_protect_pool(pmalloc_pool *pool);
/** Releases the pool and all its memory (sealed pages stay mapped, unusable). NULL is a
 *  no-op; so is a handle that is not a live pool. */
void  pmalloc_destroy_pool(pmalloc_pool *pool);  /* NULL is a no-op */
/** Fills @p out with the pool's statistics. Returns 0 or EINVAL. */
int   pmalloc_pool_stats(const pmalloc_pool *pool, struct pmalloc_stats *out);

/** The pool's name as given at creation ("" for NULL), or NULL for an invalid pool. */
const char *pmalloc_pool_name(const pmalloc_pool *pool);
/** The reason for the calling thread's last failed call ("" when none). */
const char *pmalloc_last_error(void);
/** 1 when this kernel supports mseal() (so PMALLOC_SEAL really seals), else 0. */
int pmalloc_seal_supported(void);

#ifdef __cplusplus
}
#endif

#include "pmalloc/wr.h"
#include "pmalloc/check.h"
#include "pmalloc/execmem.h"
#include "pmalloc/cache.h"
#include "pmalloc/stats.h"

#endif /* PMALLOC_PMALLOC_H */
