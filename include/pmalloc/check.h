/**
 * @file pmalloc/check.h
 * @brief Object checks (hardened usercopy) for pmalloc memory (included by
 *        pmalloc/pmalloc.h).
 *
 * A copy between a pmalloc object and other memory ("usercopy": parsing input into
 * protected data, handing protected data out) must stay inside one live allocation. These
 * calls answer, for any address range, whether it is pmalloc memory and whether it lies
 * inside one live allocation, from allocator metadata that is itself write-protected (an
 * attacker who can write memory cannot make a bad range look good). pmalloc memory is
 * pool memory, sealed-cache objects (pmalloc/cache.h) and execmem allocations
 * (pmalloc/execmem.h). A lookup costs a few nanoseconds with any number of pools alive
 * (see docs/hardening.md).
 *
 * Semantics of a range [p, p + n):
 * - PMALLOC_OBJECT_NONE: no byte of the range is pmalloc memory (stack, heap, globals, ...;
 *   also p == NULL, and the memory of a destroyed pool, including the sealed pages a
 *   destroyed PMALLOC_SEAL pool leaves mapped);
 * - PMALLOC_OBJECT_OK: the range lies inside one live allocation (pool allocation, cache
 *   object or execmem allocation), within the size that was requested for it, not just
 *   its granules;
 * - PMALLOC_OBJECT_BAD: some byte is pmalloc memory, but the range is not inside one live
 *   allocation: it crosses allocation bounds, covers free space, pool metadata or a guard
 *   page, starts outside pmalloc memory and runs into it, or wraps around the end of the
 *   address space into it.
 *
 * n == 0 classifies the single address p: OK when p points into a live allocation, BAD
 * when p is other pmalloc memory (a pointer one past an allocation's end is BAD unless it
 * is inside the next allocation), NONE otherwise.
 *
 * Thread safety: any thread, any time. A range in a pool that another thread destroys at
 * the same moment is a use-after-free of the caller's (as for every other call).
 *
 * C++: pmalloc/check.hpp (pmalloc::check_object, checked copies and spans).
 */
#ifndef PMALLOC_CHECK_H
#define PMALLOC_CHECK_H

#include <stddef.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** @name Results of is_pmalloc_object()
 * @{ */
#define PMALLOC_OBJECT_NONE 0    /**< not pmalloc memory */
#define PMALLOC_OBJECT_OK   1    /**< [p, p+n) lies inside one live allocation */
#define PMALLOC_OBJECT_BAD (-1)  /**< pmalloc memory, but crossing allocation bounds, in free space or a guard page */
/** @} */

/**
 * @brief Classifies [p, p + n) as described in the file documentation. Never fails, never
 *        changes anything (errno and pmalloc_last_error() included).
 * @param p start of the range (NULL gives PMALLOC_OBJECT_NONE).
 * @param n length in bytes; 0 classifies the single address @p p.
 * @return PMALLOC_OBJECT_NONE, PMALLOC_OBJECT_OK or PMALLOC_OBJECT_BAD.
 */
int is_pmalloc_object(const void *p, size_t n);

/**
 * @brief Checks a copy of @p n bytes to or from @p p, and aborts if it would corrupt or
 *        leak memory.
 *
 * Returns normally when the range is not pmalloc memory, or lies inside one live
 * allocation and, when @p to_object is true, is not write-protected. Otherwise (a BAD
 * range; or, for writing, a range on write-protected pages: protected pool data,
 * write-rare data included, a sealed-cache object, execmem memory that is not plain
 * read-write) it prints one line
 * on stderr (one write(2)) naming the pool, cache or execmem type and the range, and
 * aborts (SIGABRT): no handler should resume with corrupted or leaked data. Write-rare
 * data is write-protected too: change it with wr_memcpy(), not a plain copy.
 * @param p         start of the object side of the copy.
 * @param n         number of bytes; 0 always returns (a zero-length copy touches no memory).
 * @param to_object true when the copy writes [p, p + n), false when it reads it.
 */
void pmalloc_usercopy_check(const void *p, size_t n, bool to_object);

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_CHECK_H */
