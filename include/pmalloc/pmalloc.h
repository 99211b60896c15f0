/*
 * pmalloc: protectable memory for C and C++ programs on Linux.
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
 */
#ifndef PMALLOC_PMALLOC_H
#define PMALLOC_PMALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pmalloc_pool pmalloc_pool;

#define PMALLOC_RO       0x0u /* write-once: writable until protected, read-only after (default) */
#define PMALLOC_WR       0x1u /* write-rare: after protection writable only through wr_* */
#define PMALLOC_AUTO     0x2u /* protect each page as soon as no further allocation can land in it */
#define PMALLOC_SEAL     0x4u /* on protect also mseal() the pages (Linux >= 6.10); irrevocable */
#define PMALLOC_NO_GUARD 0x8u /* no guard pages around the pool's regions */

/* Bytes a pool name may have (longer names are refused with EINVAL). */
#define PMALLOC_NAME_MAX 63

struct pmalloc_stats {
  size_t bytes_live;        /* sum of the sizes requested by live allocations */
  size_t bytes_committed;   /* bytes of data pages that hold or may hold pool data */
  size_t bytes_reserved;    /* virtual address space reserved, guard pages included */
  size_t bytes_protected;   /* bytes of data pages write-protected now */
  size_t allocations_live;
  size_t regions;           /* contiguous reservations the pool is made of */
  int    sealed;            /* 1 when the protected pages are mseal()ed */
  /* additions */
  int    is_protected;      /* 1 when every committed data page is write-protected */
  size_t bytes_metadata;    /* bytes of metadata pages (descriptor, headers, bitmaps) */
  size_t bytes_free;        /* committed data bytes not covered by live allocations */
  size_t protect_calls;     /* successful pmalloc_protect_pool() calls */
  unsigned flags;           /* the pool's current flags */
};

pmalloc_pool *pmalloc_create_pool(const char *name, unsigned flags); /* EINVAL for unknown flags */
int   pmalloc_prealloc(pmalloc_pool *pool, size_t size);
#ifdef __cplusplus
/* In C++ the name pmalloc is also the library's namespace (pmalloc::Pool), and a
 * namespace and a function cannot share a name. The C function is therefore reached
 * through a function-like macro, which expands only when the name is followed by '(':
 * pmalloc(pool, size) and pmalloc::Pool both work in one translation unit. */
void *pmalloc_alloc(pmalloc_pool *pool, size_t size);
#define pmalloc(pool, size) pmalloc_alloc((pool), (size))
#else
void *pmalloc(pmalloc_pool *pool, size_t size);                       /* EINVAL for 0, ENOMEM when impossible */
void *pmalloc_alloc(pmalloc_pool *pool, size_t size);                 /* the same function */
#endif
void *pmalloc_aligned(pmalloc_pool *pool, size_t size, size_t align); /* power of two <= page size, else EINVAL */
void *pzalloc(pmalloc_pool *pool, size_t size);
void *pcalloc(pmalloc_pool *pool, size_t n, size_t size);             /* overflow-checked */
char *pstrdup(pmalloc_pool *pool, const char *s);
int   pfree(pmalloc_pool *pool, const void *p);  /* EINVAL unless p starts a live allocation of this pool */
int   pmalloc_protect_pool(pmalloc_pool *pool);
void  pmalloc_destroy_pool(pmalloc_pool *pool);  /* NULL is a no-op */
int   pmalloc_pool_stats(const pmalloc_pool *pool, struct pmalloc_stats *out);

/* The pool's name as given at creation ("" for NULL), or NULL for an invalid pool. */
const char *pmalloc_pool_name(const pmalloc_pool *pool);
/* The reason for the calling thread's last failed call ("" when none). */
const char *pmalloc_last_error(void);
/* 1 when this kernel supports mseal() (so PMALLOC_SEAL really seals), else 0. */
int pmalloc_seal_supported(void);

#ifdef __cplusplus
}
#endif

#include "pmalloc/wr.h"
#include "pmalloc/check.h"
#include "pmalloc/execmem.h"
#include "pmalloc/cache.h"

#endif /* PMALLOC_PMALLOC_H */
