/**
 * @file pmalloc/wr.h
 * @brief Write-rare pools: checked updates of protected data (included by
 *        pmalloc/pmalloc.h).
 *
 * A pool created with PMALLOC_WR is written normally until pmalloc_protect_pool(); after
 * that plain writes fault and its data changes only through the calls below, which check
 * their target against the allocator's (protected) metadata and never make a page
 * writable to another thread (except under the last-resort `mprotect` writer, which says
 * so once on stderr). See docs/write-rare.md; the C++ helpers (pmalloc::wr<T>,
 * pmalloc::wr_transaction) are in pmalloc/wr.hpp.
 *
 * Every call returns true on success. On refusal it returns false, sets errno, records a
 * reason (pmalloc_last_error()) and changes nothing:
 * - `EINVAL`: [dst, dst + n) is not inside one live allocation of a pmalloc pool (stack,
 *   heap, free space, metadata, guard page, across two allocations, a destroyed pool), or
 *   dst is NULL, or src is NULL with n > 0, or a pointer slot is not pointer-aligned;
 * - `EPERM`: the allocation belongs to a write-once pool (PMALLOC_RO, protected or not) or
 *   to one made read-only with pmalloc_make_pool_ro(); or the pages are mseal()ed and the
 *   writer in use cannot reach sealed pages (`alias` or `mprotect` without `procmem`);
 * - `ENOMEM` and other errno values: the writer's system call failed, or memory for
 *   staging the update could not be had.
 *
 * n == 0 checks dst like any other call and writes nothing.
 *
 * Before the pool is protected (and for allocations made after a protect, which live on
 * fresh writable pages until the next one) wr_* work too: the bytes are written in place,
 * with the same checks, so code can use wr_* from the start and never care when the pool
 * is protected. A target that straddles the protection boundary (possible with
 * PMALLOC_AUTO) is written through the writer on its protected part and in place on the
 * rest, all or nothing.
 *
 * Thread safety: wr_* may be called from any thread. Calls on the same pool are
 * serialised with the pool's other operations (the pool's lock is held from the check to
 * the end of the write, so the allocation cannot be freed, nor the pool protected or made
 * read-only, in between); updates of different fields from several threads all land.
 * Readers take no lock; a pointer published with wr_rcu_assign_pointer() is read with
 * wr_rcu_dereference().
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

/** The pool handle of pmalloc/pmalloc.h, repeated so that this header stands alone. */
typedef struct pmalloc_pool pmalloc_pool;

/**
 * @brief Copies @p n bytes from @p src to @p dst, a range inside one live allocation of a
 *        write-rare pool.
 *
 * The ranges may overlap (memmove semantics: the source is read as it was before the
 * call). Works before and after the pool is protected.
 * @param dst where to write: [dst, dst + n) must lie inside one live allocation of a
 *            PMALLOC_WR pool (within the size that was requested for it).
 * @param src the bytes to copy (may be anything readable; NULL only when n == 0).
 * @param n   number of bytes; 0 checks @p dst and writes nothing.
 * @return true on success; false with errno EINVAL, EPERM, ENOMEM or the writer's errno,
 *         and nothing written (see the file documentation).
 */
bool wr_memcpy(void *dst, const void *src, size_t n);

/**
 * @brief Sets @p n bytes at @p dst to `(unsigned char)c`, with the checks of wr_memcpy().
 *
 * @param dst where to write (as for wr_memcpy()).
 * @param c   the byte value, converted to unsigned char.
 * @param n   number of bytes; 0 checks @p dst and writes nothing.
 * @return true on success; false with errno set as for wr_memcpy() (also ENOMEM when the
 *         staging buffer of more than 256 bytes cannot be allocated), and nothing written.
 */
bool wr_memset(void *dst, int c, size_t n);

/** One update of a batch (wr_memcpy_batch()): copy `n` bytes from `src` to `dst`. */
struct wr_batch_op {
  void *dst;       /**< target: inside one live allocation of a write-rare pool; never NULL */
  const void *src; /**< source bytes; NULL only when n == 0 */
  size_t n;        /**< number of bytes (0 checks dst and writes nothing) */
};

/**
 * @brief Applies `ops[0..count)` in order, all or nothing.
 *
 * Every target is checked first (any refusal changes nothing), and a writer failure half
 * way puts the old bytes back (should even that fail, the process stops). Sources are
 * read as they were before the call; a later update of the same bytes wins. The writer's
 * fixed cost is paid once per region where the back end allows it (pkey: one PKRU
 * switch; alias: one view; mprotect: one window; procmem: nearby targets are merged into
 * one kernel write). Targets may lie in several write-rare pools, whose locks are taken
 * in address order (no deadlock with other batches).
 *
 * @param ops   the updates; may be NULL only when @p count is 0.
 * @param count number of updates; 0 is a no-op returning true.
 * @return true on success; false with errno set as for wr_memcpy() (EINVAL also for
 *         ops == NULL with count > 0, or an op with a NULL dst, or a NULL src and n > 0),
 *         and nothing written.
 */
bool wr_memcpy_batch(const struct wr_batch_op *ops, size_t count);

/**
 * @brief Stores @p value into the pointer-sized slot at @p slot with release ordering and
 *        a single store; the function behind wr_rcu_assign_pointer().
 *
 * Readers that load the slot with wr_rcu_dereference() never see a torn pointer and see
 * everything written before it.
 * @param slot  a pointer-aligned slot inside one live allocation of a write-rare pool.
 * @param value the pointer to publish (may be NULL).
 * @return true on success; false with errno set as for wr_memcpy() (EINVAL also for a
 *         NULL or misaligned @p slot), and nothing written.
 */
bool wr_publish_pointer(void *slot, const void *value);

/**
 * @brief Makes a write-rare pool write-once for good: wr_* on it fail with EPERM
 *        afterwards.
 *
 * One way: there is no call back. Only the pool's (protected) flags change, not any page
 * permission: pages that are not protected yet stay writable by plain stores until the
 * next pmalloc_protect_pool(). A write-once pool is left as it is (returns 0).
 * @param pool the pool.
 * @return 0, or EINVAL for an invalid pool, ENOMEM or the writer's errno when the
 *         metadata update fails (errno is set to it as well).
 */
int pmalloc_make_pool_ro(pmalloc_pool *pool);

/**
 * @brief The writer that performs wr_* updates in this process: `"pkey"`, `"procmem"`,
 *        `"alias"` or `"mprotect"`.
 *
 * It is chosen once, when the library is loaded, best first; `PMALLOC_WR_BACKEND=<name>`
 * forces one (refused with one line on stderr, and the automatic choice used, where
 * unknown or unavailable). See docs/write-rare.md for what each writer exposes.
 * @return a static string; never NULL.
 */
const char *pmalloc_wr_backend(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#ifndef __cplusplus
/**
 * @brief C: `lvalue = value` through wr_memcpy().
 *
 * Evaluates to true on success (a bool), like the functions; on refusal to false with
 * errno set and @p lvalue unchanged. @p value is converted to the type of @p lvalue.
 * A GNU statement expression (GCC, Clang). C++ has the function template
 * pmalloc::wr_assign() instead.
 * @param lvalue the object to write, in a write-rare pool (evaluated once, for its address).
 * @param value  the new value.
 */
#define wr_assign(lvalue, value)                                 \
  __extension__({                                                \
    __typeof__(lvalue) wr_assign_value_ = (value);               \
    wr_memcpy(&(lvalue), &wr_assign_value_, sizeof(lvalue));     \
  })

/**
 * @brief C: publishes a pointer like the kernel's rcu_assign_pointer(), through
 *        wr_publish_pointer(): release ordering, one store, never torn.
 *
 * Evaluates to true on success, false with errno set. C++ has the function template
 * pmalloc::wr_rcu_assign_pointer() instead.
 * @param ptr   the pointer lvalue, in a write-rare pool (pointer-aligned).
 * @param value the pointer to store.
 */
#define wr_rcu_assign_pointer(ptr, value)                                         \
  __extension__({                                                                 \
    __typeof__(ptr) wr_rcu_value_ = (value);                                      \
    wr_publish_pointer((void *)&(ptr), (const void *)wr_rcu_value_);              \
  })

/**
 * @brief C: reads a pointer published with wr_rcu_assign_pointer(), with acquire
 *        ordering (so what it points to is seen as written before it was published).
 * @param ptr the pointer lvalue.
 */
#define wr_rcu_dereference(ptr) __atomic_load_n(&(ptr), __ATOMIC_ACQUIRE)
#endif /* !__cplusplus */

#if defined(__cplusplus) || defined(PMALLOC_DOXYGEN)
/* C++: function templates, in namespace pmalloc and (for code written against the C API)
 * at global scope. pmalloc/wr.hpp adds wr<T> and a batch transaction. (PMALLOC_DOXYGEN is
 * defined only by the Doxyfile, so that the reference shows both languages' forms.) */
#include <memory>
#include <type_traits>

namespace pmalloc {

namespace detail {
/* std::type_identity_t of C++20, so that these templates also compile as C++11: keeps the
 * value parameter out of template argument deduction (T comes from the target alone). */
template <class T>
struct wr_identity {
  typedef T type;
};
}  // namespace detail

/**
 * @brief C++: `target = value` through wr_memcpy(); the form of the C macro wr_assign.
 *
 * Also reachable as `::wr_assign` (a using-declaration at global scope), so code written
 * against the C API compiles as C++.
 * @tparam T a trivially copyable, non-const type.
 * @param target the object to write, in a write-rare pool.
 * @param value  the new value (converted to T).
 * @return true on success; false with errno set and @p target unchanged (see wr_memcpy()).
 */
template <class T>
inline bool wr_assign(T &target, const typename detail::wr_identity<T>::type &value) noexcept {
  static_assert(std::is_trivially_copyable<T>::value, "wr_assign: the type must be trivially copyable");
  static_assert(!std::is_const<T>::value, "wr_assign: the target must not be const");
  return ::wr_memcpy(std::addressof(target), std::addressof(value), sizeof(T));
}

/**
 * @brief C++: publishes a pointer (release ordering, one store, never torn) through
 *        wr_publish_pointer(); the form of the C macro wr_rcu_assign_pointer.
 * @param slot  the pointer, in a write-rare pool (pointer-aligned).
 * @param value the pointer to store.
 * @return true on success; false with errno set and @p slot unchanged.
 */
template <class T>
inline bool wr_rcu_assign_pointer(T *&slot, typename detail::wr_identity<T *>::type value) noexcept {
  return ::wr_publish_pointer(static_cast<void *>(std::addressof(slot)), static_cast<const void *>(value));
}

/**
 * @brief C++: reads a pointer published with wr_rcu_assign_pointer(), with acquire
 *        ordering; the form of the C macro wr_rcu_dereference.
 * @param slot the pointer.
 * @return its value.
 */
template <class T>
inline T *wr_rcu_dereference(T *const &slot) noexcept {
  return __atomic_load_n(std::addressof(slot), __ATOMIC_ACQUIRE);
}

}  // namespace pmalloc

using pmalloc::wr_assign;
using pmalloc::wr_rcu_assign_pointer;
using pmalloc::wr_rcu_dereference;

#endif /* __cplusplus || PMALLOC_DOXYGEN */

#endif /* PMALLOC_WR_H */
