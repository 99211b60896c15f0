/*
 * pmalloc/execmem.h: typed memory for just-in-time compilers and code loaders.
 * Included by pmalloc/pmalloc.h. Design notes: docs/execmem.md.
 *
 * Why this interface is so small (the execmem / jitalloc review, seeds/004): memory is
 * returned already protected, and the only way to change code or read-only data is
 * execmem_update_copy(), which hides every permission question inside one helper. There
 * is deliberately no call that makes a page writable, and no page is ever writable and
 * executable at the same time, not even for a moment.
 *
 * Types (a page only ever holds one type):
 *   EXECMEM_TEXT           read+execute from the moment it is returned, filled with trap
 *                          instructions (x86-64 int3, 0xCC); written only through
 *                          execmem_update_copy(). 64-byte granularity, 64-byte aligned,
 *                          packed with other text into shared 2 MiB packs.
 *   EXECMEM_RODATA         read-only, zero-filled when returned; written only through
 *                          execmem_update_copy().
 *   EXECMEM_DATA           plain read-write, never executable; zero-filled when returned.
 *   EXECMEM_RO_AFTER_INIT  read-write (zero-filled) until execmem_protect_ro_after_init(),
 *                          read-only for good afterwards.
 * Data types have 16-byte granularity and alignment.
 *
 * Error convention (as in pmalloc.h): functions returning a pointer return NULL and set
 * errno; functions returning int return 0 or a positive errno value (errno is set to it
 * too). pmalloc_last_error() gives a one-line reason.
 *
 * Thread safety: every function may be called from any thread. Rewriting code that
 * another thread may be executing at that moment is the caller's business (as on any
 * CPU: update a block nobody runs, then publish its address).
 */
#ifndef PMALLOC_EXECMEM_H
#define PMALLOC_EXECMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum execmem_type { EXECMEM_TEXT, EXECMEM_RODATA, EXECMEM_DATA, EXECMEM_RO_AFTER_INIT };

/* Alignment of every EXECMEM_TEXT allocation (and its granularity). */
#define EXECMEM_TEXT_ALIGN 64
/* Alignment of every allocation of the other types (and their granularity). */
#define EXECMEM_DATA_ALIGN 16

/*
 * Returns `size` bytes of memory of the given type (see above for the contents and
 * permissions it has on return). EINVAL for an unknown type or size 0, ENOMEM when the
 * memory cannot be had (also for absurd sizes).
 * RO_AFTER_INIT after execmem_protect_ro_after_init(): a new allocation is read-write
 * again, in fresh pages, until the next execmem_protect_ro_after_init() call (the model
 * of a module whose init section is protected once its init has run). Memory protected by
 * an earlier call never becomes writable again.
 */
void *execmem_alloc(enum execmem_type type, size_t size);

/*
 * Copies n bytes from src to dst, where [dst, dst + n) must lie inside one live
 * allocation (within its requested size) of a type that is written by update:
 *   EXECMEM_TEXT and EXECMEM_RODATA: written through the write-rare writer (the kernel
 *       writes through /proc/self/mem; the mprotect fallback flips RX -> RW -> RX, never
 *       W+X), then, for text, __builtin___clear_cache() on the range;
 *   EXECMEM_RO_AFTER_INIT: a plain copy while still writable; EPERM once protected;
 *   EXECMEM_DATA: EINVAL (it is plain read-write memory: write it directly).
 * EINVAL also for NULL dst/src (n > 0), memory that is not a live execmem allocation,
 * and ranges that run past the allocation's end or wrap around. On any error nothing is
 * written. n == 0 with a valid dst is a successful no-op.
 */
int execmem_update_copy(void *dst, const void *src, size_t n);

/*
 * Frees an allocation; p must be the pointer execmem_alloc returned (EINVAL otherwise:
 * interior pointers, double frees, foreign memory). NULL is a no-op returning 0, like
 * free(NULL). Freed text is refilled with traps, freed data types with zeros, and pages
 * that become entirely free go back to the OS (they become inaccessible, so a dangling
 * pointer into them faults). RO_AFTER_INIT memory already protected is only unaccounted:
 * its bytes stay unchanged and read-only, and its pages are never reused.
 */
int execmem_free(void *p);

/*
 * Makes every EXECMEM_RO_AFTER_INIT allocation made so far read-only for good (and
 * mseal()s its pages where the kernel supports it). Returns 0 (also when there is
 * nothing to protect) or the errno of the failed OS call; a failed call may be retried.
 */
int execmem_protect_ro_after_init(void);

/* Per-type figures; out may not be NULL (EINVAL, as for an unknown type). */
struct execmem_stats {
  size_t allocations_live;
  size_t bytes_live;       /* sum of the sizes requested by live allocations */
  size_t bytes_committed;  /* data pages backed by memory now (the pages used), in bytes */
  size_t bytes_reserved;   /* address space held, guard and metadata pages included */
  size_t bytes_metadata;   /* bytes of metadata pages (bitmaps, pack headers) */
  size_t packs;            /* packs (shared or dedicated reservations) of this type */
  size_t hugepage_packs;   /* packs backed by transparent huge pages (text only) */
};
int execmem_get_stats(enum execmem_type type, struct execmem_stats *out);

/*
 * Text packs created from now on are 2 MiB-aligned, committed whole and advised with
 * madvise(MADV_HUGEPAGE) (enable != 0), or committed page by page (enable == 0, the
 * default, which keeps resident memory at the pages actually used). With huge pages a
 * pack is returned to the OS as a whole when it becomes empty, never page by page (that
 * would split the huge page). The environment variable PMALLOC_EXECMEM_HUGEPAGES=1 sets
 * the initial value. Returns 0.
 */
int execmem_set_hugepages(int enable);

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_EXECMEM_H */
