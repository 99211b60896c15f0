/*
 * pmalloc/check.h: object checks (hardened usercopy) for pmalloc memory. Included by
 * pmalloc/pmalloc.h.
 *
 * A copy between a pmalloc object and other memory ("usercopy": parsing input into
 * protected data, handing protected data out) must stay inside one live allocation. These
 * calls answer, for any address range, whether it is pmalloc memory and whether it lies
 * inside one live allocation, from allocator metadata that is itself write-protected (an
 * attacker who can write memory cannot make a bad range look good). A lookup costs a few
 * nanoseconds with any number of pools alive (see docs/hardening.md).
 *
 * Semantics of a range [p, p + n):
 *   PMALLOC_OBJECT_NONE  no byte of the range is pmalloc memory (stack, heap, globals, ...;
 *                        also p == NULL);
 *   PMALLOC_OBJECT_OK    the range lies inside one live allocation (within the size that
 *                        was requested for it, not just its granules);
 *   PMALLOC_OBJECT_BAD   some byte is pmalloc memory, but the range is not inside one live
 *                        allocation: it crosses allocation bounds, covers free space, pool
 *                        metadata or a guard page, starts outside pmalloc memory and runs
 *                        into it, or wraps around the end of the address space.
 * n == 0 classifies the single address p: OK when p points into a live allocation, BAD
 * when p is other pmalloc memory (a pointer one past an allocation's end is BAD unless it
 * is inside the next allocation), NONE otherwise.
 *
 * Thread safety: any thread, any time. A range in a pool that another thread destroys at
 * the same moment is a use-after-free of the caller's (as for every other call).
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

#define PMALLOC_OBJECT_NONE 0    /* not pmalloc memory */
#define PMALLOC_OBJECT_OK   1    /* [p, p+n) lies inside one live allocation */
#define PMALLOC_OBJECT_BAD (-1)  /* pmalloc memory, but crossing allocation bounds, in free space or a guard page */

/* Classifies [p, p + n) as above. Never fails, never changes anything. */
int is_pmalloc_object(const void *p, size_t n);

/*
 * Checks a copy of n bytes to or from p (to_object: the copy writes [p, p + n)).
 * Returns normally when the range is not pmalloc memory, or lies inside one live allocation
 * (and, when to_object is true, is not write-protected). Otherwise the copy would corrupt or
 * leak memory: it prints one line on stderr naming the pool and the range, and aborts
 * (SIGABRT). n == 0 always returns normally (a zero-length copy touches no memory).
 * Write-rare data is write-protected too: change it with wr_memcpy, not a plain copy.
 */
void pmalloc_usercopy_check(const void *p, size_t n, bool to_object);

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_CHECK_H */
