/**
 * @file pmalloc/cache.h
 * @brief Sealed object caches: fixed-size objects that are read-only from their first
 *        moment (included by pmalloc/pmalloc.h).
 *
 * A cache hands out fixed-size objects that are initialised exactly once and are never
 * writable afterwards, not even while they are being initialised: `init` fills a private,
 * zero-filled staging copy, and the library writes that copy into the object's slot
 * through the write-rare writer. Objects are packed densely (slab fashion) into pages that
 * are read-only from the moment they are mapped; no page of a cache ever becomes
 * read-write (except, for the duration of one copy, under the last-resort `mprotect`
 * writer: see docs/cache.md), so a stray or hostile write to an object always faults. Use a
 * cache for immutable records created one by one while the program runs (a connection's
 * negotiated policy, a plug-in's descriptor, a compiled rule); use a pool for data written
 * in one burst and then protected.
 *
 * Error convention (as in pmalloc.h): functions returning a pointer return NULL and set
 * errno; functions returning int return 0 or a positive errno value (errno is set to it
 * as well); pmalloc_last_error() gives a one-line reason. A failed call changes nothing.
 *
 * Thread safety: every function may be called from any thread, concurrently, except that
 * pmalloc_cache_destroy() must not race with other calls on the same cache. `init`
 * callbacks run without any library lock held: they may create or free objects of the
 * same cache (or of others), but must not destroy it, and must return (no longjmp out of
 * them: the slot would stay reserved).
 *
 * C++: pmalloc/cache.hpp (pmalloc::SealedCache<T>). See docs/cache.md for the design, the
 * memory figures and the per-back-end caveats.
 */
#ifndef PMALLOC_CACHE_H
#define PMALLOC_CACHE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pmalloc_stats;

/** An opaque cache handle (it points into the cache's own, protected, metadata). */
typedef struct pmalloc_cache pmalloc_cache;

/** Largest object a cache holds (bytes): 1 MiB. */
#define PMALLOC_CACHE_OBJECT_MAX ((size_t)1 << 20)

/**
 * @brief Creates a cache of objects of @p object_size bytes.
 *
 * @param name        for statistics and error messages; NULL means ""; at most
 *                    PMALLOC_NAME_MAX bytes.
 * @param object_size 1 .. PMALLOC_CACHE_OBJECT_MAX.
 * @param align       a power of two <= the page size, or 0 for the natural alignment of
 *                    the size: the largest power of two that divides @p object_size,
 *                    capped at 16. Because the size of every C type is a multiple of its
 *                    alignment, 0 is always enough for `struct T` with object_size =
 *                    sizeof(struct T) and alignof(T) <= 16; pass the alignment explicitly
 *                    for over-aligned types.
 * @param flags       0, or a combination of
 *   - PMALLOC_SEAL: mseal() the cache's pages as soon as they are mapped, so that even
 *     munmap/mprotect can no longer touch them. Sealed pages are never returned to the OS
 *     (freed slots are wiped and reused), and they stay mapped after
 *     pmalloc_cache_destroy() (wiped). Sealing happens only when the kernel has mseal (see
 *     pmalloc_seal_supported()) and the write-rare back end can write sealed pages (every
 *     back end except `mprotect`); otherwise the cache works unsealed and
 *     pmalloc_cache_stats() reports sealed = 0.
 *   - PMALLOC_NO_GUARD: no PROT_NONE guard pages around the cache's reservations.
 *
 *   Any other flag (PMALLOC_WR, PMALLOC_AUTO, unknown bits) is refused with EINVAL.
 * @return the cache, or NULL with errno EINVAL (bad argument), ENOMEM (no memory or
 *         address space), ENOTSUP (no write-rare back end works in this process, so
 *         objects could never be written).
 */
pmalloc_cache *pmalloc_cache_create(const char *name, size_t object_size, size_t align, unsigned flags);

/**
 * @brief Initialiser of one object (pmalloc_cache_alloc_init()).
 *
 * Fills @p staging for an object that will live at @p final_address. Pointers to
 * @p final_address (or to other objects) may be stored: they stay valid, the bytes are
 * copied unchanged. @p final_address is read-only and does not hold the object yet: never
 * write through it.
 * @param staging       object_size bytes, zero-filled, aligned like the object; private
 *                      to this call.
 * @param final_address where the object will live.
 * @param ctx           the ctx given to pmalloc_cache_alloc_init().
 * @return 0 to create the object, anything else to abort (nothing is allocated).
 */
typedef int pmalloc_cache_init_fn(void *staging, const void *final_address, void *ctx);

/**
 * @brief Initialiser of one object of a batch (pmalloc_cache_alloc_init_many()); as
 *        ::pmalloc_cache_init_fn.
 * @param staging       object_size bytes, zero-filled, aligned like the object.
 * @param final_address where the object will live (also in out[index]).
 * @param index         the object's position in the batch.
 * @param ctx           the ctx given to pmalloc_cache_alloc_init_many().
 * @return 0 to go on, anything else to abort the whole batch (nothing is allocated).
 */
typedef int pmalloc_cache_init_many_fn(void *staging, const void *final_address, size_t index, void *ctx);

/**
 * @brief Creates one object: reserves a slot, calls `init(staging, slot, ctx)` with no
 *        lock held, then writes the staging copy into the slot through the writer.
 *
 * @param c    the cache.
 * @param init fills the object (see ::pmalloc_cache_init_fn); may not be NULL.
 * @param ctx  passed to @p init unchanged.
 * @return the object, read-only from its first moment, or NULL with errno:
 *   - ECANCELED: init returned non-zero (the value is in pmalloc_last_error()); nothing was
 *     allocated and the cache is as it was before the call;
 *   - EINVAL: @p c is not a live cache, or @p init is NULL;
 *   - ENOMEM: no memory or address space (also when the cache is full);
 *   - other: the writer failed (e.g. ENOTSUP); nothing was allocated.
 */
const void *pmalloc_cache_alloc_init(pmalloc_cache *c, pmalloc_cache_init_fn *init, void *ctx);

/**
 * @brief Creates @p count objects at once, all or nothing, paying the writer's fixed cost
 *        once per slab (a page for small objects) instead of once per object.
 *
 * All slots are reserved first and `out[0..count)` is filled with their final addresses
 * *before* the first init call, so objects of one batch may point to each other; then
 * `init(staging, out[i], i, ctx)` runs for i = 0, 1, ..., count - 1, and the objects are
 * written.
 * @param c     the cache.
 * @param count number of objects; 0 is a no-op returning 0 (@p out may then be NULL).
 * @param out   receives the objects' addresses (count entries); may not be NULL otherwise.
 * @param init  fills object i (see ::pmalloc_cache_init_many_fn); may not be NULL.
 * @param ctx   passed to @p init unchanged.
 * @return 0; on any error nothing is allocated and `out[0..count)` is set to NULL:
 *         ECANCELED when an init returned non-zero (stopping the batch there), EINVAL
 *         (not a live cache, NULL @p out or @p init), ENOMEM, or the writer's errno.
 */
int pmalloc_cache_alloc_init_many(pmalloc_cache *c, size_t count, const void **out,
                                  pmalloc_cache_init_many_fn *init, void *ctx);

/**
 * @brief Frees an object: its slot is wiped (zeroed) through the writer and becomes
 *        reusable; a slab whose slots are all free goes back to the OS (unless sealed).
 *
 * A stale pointer whose slot has been reused by a new object frees the new object (as
 * with every allocator). Of two threads freeing the same object, exactly one succeeds.
 * @param c   the cache.
 * @param obj the object, as pmalloc_cache_alloc_init() returned it.
 * @return 0; EINVAL, with nothing changed, when @p c is not a live cache or @p obj is NULL,
 *         not the start of a live object of this cache (interior pointer, another cache's
 *         or pool's memory, stack, heap) or already freed; or the writer's errno.
 */
int pmalloc_cache_free(pmalloc_cache *c, const void *obj);

/**
 * @brief Frees @p count objects, all or nothing.
 * @param c     the cache.
 * @param objs  the objects; may be NULL only when @p count is 0.
 * @param count number of objects; 0 is a no-op returning 0.
 * @return 0; EINVAL (nothing freed) when any of them would be refused by
 *         pmalloc_cache_free() or appears twice; ENOMEM; or the writer's errno.
 */
int pmalloc_cache_free_many(pmalloc_cache *c, const void *const *objs, size_t count);

/**
 * @brief Destroys the cache and every object in it.
 *
 * Unsealed memory is unmapped; sealed pages stay mapped, wiped, until the process exits.
 * Must not race with other calls on the same cache.
 * @param c the cache; NULL (or an already destroyed cache) is a no-op.
 */
void pmalloc_cache_destroy(pmalloc_cache *c);

/**
 * @brief Statistics in the pool format (struct pmalloc_stats, pmalloc/pmalloc.h).
 *
 * - bytes_live: live objects * object_size
 * - allocations_live: live objects
 * - bytes_committed: bytes of slabs that hold objects or may still hold memory (pages
 *   never written or returned to the OS are not counted: they cost nothing);
 *   bytes_committed = bytes_live + bytes_free
 * - bytes_protected: = bytes_committed (every data page is read-only, always)
 * - bytes_reserved: address space of the cache's reservations, guard pages included
 * - bytes_metadata: protected metadata pages plus the cache's heap bookkeeping
 * - regions: reservations (segments) the cache is made of
 * - sealed: 1 when the cache's pages are mseal()ed
 * - is_protected: 1 (cache data is never writable)
 * - protect_calls: 0 (caches have no protect step)
 * - flags: the flags given at creation
 *
 * @param c   the cache.
 * @param out where to write; may not be NULL.
 * @return 0, or EINVAL (not a live cache, NULL @p out).
 */
int pmalloc_cache_stats(const pmalloc_cache *c, struct pmalloc_stats *out);

/**
 * @brief The cache's name as given at creation ("" for NULL).
 * @param c the cache.
 * @return the name, or NULL (errno EINVAL) for an invalid cache.
 */
const char *pmalloc_cache_name(const pmalloc_cache *c);

/**
 * @brief The object size given at creation.
 * @param c the cache.
 * @return the size, or 0 (errno EINVAL) for an invalid cache.
 */
size_t pmalloc_cache_object_size(const pmalloc_cache *c);

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_CACHE_H */
