/*
 * pmalloc/wr.h: write-rare pools. Included by pmalloc/pmalloc.h.
 *
 * A pool created with PMALLOC_WR is written normally until pmalloc_protect_pool(); after
 * that plain writes fault and its data changes only through the calls below, which check
 * their target against the allocator's (protected) metadata and never make a page
 * writable to another thread (except under the last-resort 'mprotect' writer, which says
 * so once on stderr). See docs/write-rare.md.
 *
 * Every call returns true on success. On refusal it returns false, sets errno, records a
 * reason (pmalloc_last_error()) and changes nothing:
 *   EINVAL  [dst, dst+n) is not inside one live allocation of a pmalloc pool (stack, heap,
 *           free space, metadata, guard page, across two allocations), or dst/src is NULL
 *           with n > 0, or a pointer slot is misaligned;
 *   EPERM   the allocation belongs to a write-once pool (PMALLOC_RO) or to one made
 *           read-only with pmalloc_make_pool_ro(); or the pages are mseal()ed and the
 *           writer in use cannot reach sealed pages ('alias' or 'mprotect' without procmem);
 *   ENOMEM  and other errno values: the writer's system call failed.
 * n == 0 checks dst like any other call and writes nothing.
 *
 * Before the pool is protected (and for allocations made after a protect, which live on
 * fresh writable pages until the next one) wr_* work too: the bytes are written in place,
 * with the same checks, so code can use wr_* from the start and never care when the pool
 * is protected.
 *
 * Thread safety: wr_* may be called from any thread. Calls on the same pool are
 * serialised with the pool's other operations (the allocation cannot be freed, or the
 * pool made read-only, between the check and the write); updates of different fields from
 * several threads all land.
 */
#ifndef PMALLOC_WR_H
#define PMALLOC_WR_H

#include <stddef.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pmalloc_pool pmalloc_pool;

/* Copies n bytes from src to dst (the ranges may overlap: memmove semantics). */
bool wr_memcpy(void *dst, const void *src, size_t n);
/* Sets n bytes at dst to (unsigned char)c. */
bool wr_memset(void *dst, int c, size_t n);

/* One update of a batch. */
struct wr_batch_op {
  void *dst;
  const void *src;
  size_t n;
};
/* Applies ops[0..count) in order, all or nothing: every target is checked first (any
 * refusal changes nothing), and a writer failure half way puts the old bytes back. The
 * writer's fixed cost is paid once per region where the back end allows it (pkey: one
 * PKRU switch; alias: one view; mprotect: one window; procmem: nearby targets are merged
 * into one kernel write). Targets may lie in several write-rare pools. count == 0 is a
 * no-op; ops == NULL with count > 0 is EINVAL. */
bool wr_memcpy_batch(const struct wr_batch_op *ops, size_t count);

/* Stores `value` into the pointer-sized, pointer-aligned slot at `slot` with release
 * ordering and a single store, so that readers (wr_rcu_dereference) never see a torn
 * pointer and see everything written before it. The function behind
 * wr_rcu_assign_pointer. */
bool wr_publish_pointer(void *slot, const void *value);

/* One way: a write-rare pool becomes write-once for good (wr_* on it fail with EPERM
 * afterwards). 0, or EINVAL for an invalid pool. A write-once pool is left as it is. */
int pmalloc_make_pool_ro(pmalloc_pool *pool);

/* The writer chosen for this process: "pkey", "procmem", "alias" or "mprotect". It is
 * chosen once, when the library is loaded, best first; PMALLOC_WR_BACKEND=<name> forces
 * one (refused with a line on stderr, and the automatic choice used, where unavailable). */
const char *pmalloc_wr_backend(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#ifndef __cplusplus
/* wr_assign(lvalue, value): lvalue = value through wr_memcpy; evaluates to true on
 * success (a bool), like the functions. `value` is converted to the type of `lvalue`. */
#define wr_assign(lvalue, value)                                 \
  __extension__({                                                \
    __typeof__(lvalue) wr_assign_value_ = (value);               \
    wr_memcpy(&(lvalue), &wr_assign_value_, sizeof(lvalue));     \
  })

/* wr_rcu_assign_pointer(ptr, value): publishes a pointer (rcu_assign_pointer): release
 * ordering, one store, never torn. `ptr` is the pointer lvalue in a write-rare pool. */
#define wr_rcu_assign_pointer(ptr, value)                                         \
  __extension__({                                                                 \
    __typeof__(ptr) wr_rcu_value_ = (value);                                      \
    wr_publish_pointer((void *)&(ptr), (const void *)wr_rcu_value_);              \
  })

/* wr_rcu_dereference(ptr): reads a published pointer with acquire ordering. */
#define wr_rcu_dereference(ptr) __atomic_load_n(&(ptr), __ATOMIC_ACQUIRE)

#else /* C++: function templates, in namespace pmalloc and (for code written against the C
       * API) at global scope. pmalloc/wr.hpp adds wr<T> and a batch transaction. */
#include <memory>
#include <type_traits>

namespace pmalloc {

/* target = value through wr_memcpy. T must be trivially copyable; value converts to T. */
template <class T>
inline bool wr_assign(T &target, const std::type_identity_t<T> &value) noexcept {
  static_assert(std::is_trivially_copyable_v<T>, "wr_assign: the type must be trivially copyable");
  static_assert(!std::is_const_v<T>, "wr_assign: the target must not be const");
  return ::wr_memcpy(std::addressof(target), std::addressof(value), sizeof(T));
}

/* Publishes a pointer: release ordering, one store, never torn. */
template <class T>
inline bool wr_rcu_assign_pointer(T *&slot, std::type_identity_t<T *> value) noexcept {
  return ::wr_publish_pointer(static_cast<void *>(std::addressof(slot)), static_cast<const void *>(value));
}

/* Reads a published pointer with acquire ordering. */
template <class T>
inline T *wr_rcu_dereference(T *const &slot) noexcept {
  return __atomic_load_n(std::addressof(slot), __ATOMIC_ACQUIRE);
}

}  // namespace pmalloc

using pmalloc::wr_assign;
using pmalloc::wr_rcu_assign_pointer;
using pmalloc::wr_rcu_dereference;

#endif /* __cplusplus */

#endif /* PMALLOC_WR_H */
