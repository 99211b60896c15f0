/**
 * @file pmalloc/execmem.h
 * @brief Typed memory for just-in-time compilers and code loaders (included by
 *        pmalloc/pmalloc.h). Design notes: docs/execmem.md.
 *
 * Why this interface is so small (the execmem / jitalloc review, seeds/004): memory is
 * returned already protected, and the only way to change code or read-only data is
 * execmem_update_copy(), which hides every permission question inside one helper. There
 * is deliberately no call that makes a page writable, and no page is ever writable and
 * executable at the same time, not even for a moment. Text is packed, like the kernel's
 * `bpf_prog_pack`, into shared 2 MiB packs.
 *
 * Types (a page only ever holds one type): see ::execmem_type. Text has 64-byte
 * granularity and alignment (EXECMEM_TEXT_ALIGN), the data types 16 bytes
 * (EXECMEM_DATA_ALIGN); allocations above 256 KiB get a dedicated, page-aligned pack.
 *
 * Error convention (as in pmalloc.h): functions returning a pointer return NULL and set
 * errno; functions returning int return 0 or a positive errno value (errno is set to it
 * too). pmalloc_last_error() gives a one-line reason. A failed call changes nothing (except
 * execmem_protect_ro_after_init(), which keeps the steps that succeeded).
 *
 * Thread safety: every function may be called from any thread (each type has its own
 * lock). Rewriting code that another thread may be executing at that moment is the
 * caller's business (as on any CPU: update a block nobody runs, then publish its
 * address); with the `mprotect` writer a text page is briefly not executable during an
 * update.
 *
 * C++: pmalloc/execmem.hpp (pmalloc::CodeArena, pmalloc::JitFunction, pmalloc::ExecBlock).
 */
#ifndef PMALLOC_EXECMEM_H
#define PMALLOC_EXECMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The type of an execmem allocation: what its pages allow and how it is written. */
enum execmem_type {
  /** Code: read+execute from the moment it is returned, filled with trap instructions
   *  (x86-64 int3, 0xCC); written only through execmem_update_copy(). 64-byte granularity
   *  and alignment, packed with other text into shared 2 MiB packs. */
  EXECMEM_TEXT,
  /** Read-only data (constant pools, jump tables): zero-filled when returned; written
   *  only through execmem_update_copy(). */
  EXECMEM_RODATA,
  /** Plain read-write data, never executable; zero-filled when returned. Written
   *  directly (execmem_update_copy() refuses it with EINVAL). */
  EXECMEM_DATA,
  /** Read-write (zero-filled) until execmem_protect_ro_after_init(), read-only (and
   *  sealed where the kernel has mseal) for good afterwards. */
  EXECMEM_RO_AFTER_INIT
};

/** Alignment of every EXECMEM_TEXT allocation (and its granularity). */
#define EXECMEM_TEXT_ALIGN 64
/** Alignment of every allocation of the other types (and their granularity). */
#define EXECMEM_DATA_ALIGN 16

/**
 * @brief Returns @p size bytes of memory of the given type, already protected as the type
 *        says (see ::execmem_type for the contents and permissions it has on return).
 *
 * EXECMEM_RO_AFTER_INIT after execmem_protect_ro_after_init(): a new allocation is
 * read-write again, in fresh pages, until the next execmem_protect_ro_after_init() call
 * (the model of a module whose init section is protected once its init has run). Memory
 * protected by an earlier call never becomes writable again.
 * @param type the type of memory.
 * @param size bytes wanted (1 .. 1 TiB).
 * @return the memory (aligned to EXECMEM_TEXT_ALIGN or EXECMEM_DATA_ALIGN), or NULL with
 *         errno EINVAL for an unknown type or size 0, ENOMEM when the memory cannot be had
 *         (also for sizes above 1 TiB).
 */
void *execmem_alloc(enum execmem_type type, size_t size);

/**
 * @brief Copies @p n bytes from @p src to @p dst, inside one execmem allocation of a type
 *        that is written by update; the only way to write text and read-only data.
 *
 * By type of the allocation:
 * - EXECMEM_TEXT and EXECMEM_RODATA: written through the write-rare writer (by default
 *   the kernel writes through /proc/self/mem and no permission changes; the `mprotect`
 *   fallback flips RX -> RW -> RX, never W+X), then, for text,
 *   `__builtin___clear_cache()` on the range;
 * - EXECMEM_RO_AFTER_INIT: a plain copy while still writable; EPERM once protected;
 * - EXECMEM_DATA: EINVAL (it is plain read-write memory: write it directly).
 *
 * The ranges may overlap (memmove semantics).
 * @param dst where to write: [dst, dst + n) must lie inside one live allocation, within
 *            the size that was requested for it.
 * @param src the bytes to copy (NULL only when n == 0).
 * @param n   number of bytes; 0 with a valid @p dst is a successful no-op.
 * @return 0; or EINVAL (NULL dst, NULL src with n > 0, a range that wraps around, memory
 *         that is not inside one live execmem allocation, EXECMEM_DATA), EPERM
 *         (RO_AFTER_INIT memory already protected), ENOMEM or the writer's errno. On any
 *         error nothing is written.
 */
int execmem_update_copy(void *dst, const void *src, size_t n);

/**
 * @brief Frees an allocation.
 *
 * Freed text is refilled with traps, freed data types with zeros, and pages that become
 * entirely free go back to the OS (they become inaccessible, so a dangling pointer into
 * them faults). RO_AFTER_INIT memory already protected is only unaccounted: its bytes stay
 * unchanged and read-only, and its pages are never reused. A failed free changes nothing.
 * @param p the pointer execmem_alloc() returned; NULL is a no-op returning 0, like free(NULL).
 * @return 0; EINVAL when @p p is not the start of a live allocation (interior pointer,
 *         double free, foreign memory); or the errno of a failed OS or writer call.
 */
int execmem_free(void *p);

/**
 * @brief Makes every EXECMEM_RO_AFTER_INIT allocation made so far read-only for good (and
 *        mseal()s its pages where the kernel supports it).
 *
 * The packs holding them are closed: later RO_AFTER_INIT allocations go to fresh pages.
 * When one pack fails, the others are still protected.
 * @return 0 (also when there is nothing to protect) or the errno of the first failed OS
 *         call; each step is recorded, so a failed call may simply be retried.
 */
int execmem_protect_ro_after_init(void);

/** Figures of one execmem type (execmem_get_stats()). */
struct execmem_stats {
  size_t allocations_live; /**< live allocations */
  size_t bytes_live;       /**< sum of the sizes requested by live allocations */
  size_t bytes_committed;  /**< data pages backed by memory now (the pages used), in bytes */
  size_t bytes_reserved;   /**< address space held, guard and metadata pages included */
  size_t bytes_metadata;   /**< bytes of metadata pages (bitmaps, pack headers) */
  size_t packs;            /**< packs (shared or dedicated reservations) of this type */
  size_t hugepage_packs;   /**< packs backed by transparent huge pages (text only) */
};

/**
 * @brief Fills @p out with the figures of one type.
 * @param type the type.
 * @param out  where to write; may not be NULL.
 * @return 0, or EINVAL for an unknown type or a NULL @p out, ENOMEM when the list of packs
 *         cannot be allocated.
 */
int execmem_get_stats(enum execmem_type type, struct execmem_stats *out);

/**
 * @brief Chooses how text packs created from now on are backed.
 *
 * With huge pages (enable != 0) a new text pack is 2 MiB-aligned, committed whole and
 * advised with madvise(MADV_HUGEPAGE), and is returned to the OS as a whole when it
 * becomes empty, never page by page (that would split the huge page). Without (enable ==
 * 0, the default) text is committed page by page, which keeps resident memory at the
 * pages actually used. Existing packs keep their mode. The environment variable
 * `PMALLOC_EXECMEM_HUGEPAGES=1` sets the initial value (read once, at first use).
 * @param enable non-zero for huge pages.
 * @return 0.
 */
int execmem_set_hugepages(int enable);

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_EXECMEM_H */
