/**
 * @file pmalloc/allocator.hpp
 * @brief pmalloc::allocator<T>: a standard allocator that allocates from a pool, for
 *        containers that take an allocator type.
 *
 * @code
 * pmalloc::Pool pool("ids");
 * using Ids = std::vector<int, pmalloc::allocator<int>>;
 * Ids* ids = pool.make<Ids>(pool);       // the vector object and its elements in the pool
 * ids->assign({1, 2, 3});
 * pmalloc::ro_ptr<Ids> ro = pool.protect(ids);
 * @endcode
 */
#pragma once

#include "pmalloc/cxx20.hpp"

#include <cerrno>
#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

#include "pmalloc/pmalloc.hpp"

namespace pmalloc {

/**
 * @brief A standard allocator (C++ named requirement *Allocator*) over one pool.
 *
 * Semantics, chosen so that a container stays in the pool it was made for:
 * - It has no default constructor: every container names its pool. It converts
 *   implicitly from `Pool&`, `Pool*` and `pmalloc_pool*`, so `std::vector<int,
 *   pmalloc::allocator<int>> v(pool);` works.
 * - Two allocators are equal when they use the same pool, whatever their value types
 *   (is_always_equal is false): memory from one may be deallocated through the other.
 * - Propagation (POCCA, POCMA, POCS) is off, as for std::pmr::polymorphic_allocator: an
 *   assignment never moves a container's storage into another pool; a container copy
 *   constructed from one in pool P is also in P (select_on_container_copy_construction).
 *   Consequences, as for std::pmr: move assignment between containers of different pools
 *   moves element by element, and swapping them is undefined behaviour.
 * - allocate(n) throws std::bad_array_new_length when n * sizeof(T) overflows,
 *   pmalloc::out_of_memory (a std::bad_alloc) when the pool cannot grow, and
 *   pmalloc::error (EINVAL) when alignof(T) exceeds the page size. allocate(0) returns a
 *   distinct, valid pointer.
 * - deallocate() is pfree(): memory freed before protection is reused; after protection
 *   it only updates accounting and the bytes stay read-only. It never throws.
 *
 * The allocator holds only the pool handle: copies are cheap and it can live in
 * protected memory (inside a container that lives in the pool).
 */
template <class T>
class allocator {
 public:
  using value_type = T;                                          ///< allocated type
  using size_type = std::size_t;                                 ///< counts of T
  using difference_type = std::ptrdiff_t;                        ///< pointer differences
  using propagate_on_container_copy_assignment = std::false_type;  ///< storage stays in its pool
  using propagate_on_container_move_assignment = std::false_type;  ///< storage stays in its pool
  using propagate_on_container_swap = std::false_type;             ///< storage stays in its pool
  using is_always_equal = std::false_type;                         ///< equal only for the same pool

  /// The same allocator for another value type.
  template <class U>
  struct rebind {
    using other = allocator<U>;  ///< the allocator for U over the same pool
  };

  /// Allocates from @p pool (not owned). @throws error (EINVAL) when @p pool is empty.
  allocator(Pool& pool) : allocator(pool.get()) {}  // NOLINT: implicit, like polymorphic_allocator
  /// Allocates from `*pool` (not owned). @throws error (EINVAL) for nullptr or an empty Pool.
  allocator(Pool* pool) : allocator(pool != nullptr ? pool->get() : nullptr) {}  // NOLINT: implicit
  /// Allocates from the C pool @p pool (not owned). @throws error (EINVAL) for nullptr.
  allocator(pmalloc_pool* pool) : pool_(pool) {  // NOLINT: implicit, like polymorphic_allocator
    if (pool == nullptr) throw error(EINVAL, "pmalloc::allocator: the pool is null");
  }
  /// Copy.
  allocator(const allocator&) noexcept = default;
  /// Copy assignment.
  allocator& operator=(const allocator&) noexcept = default;
  /// Rebinding copy: the same pool for another value type.
  template <class U>
  allocator(const allocator<U>& other) noexcept : pool_(other.pool()) {}  // NOLINT: implicit by design

  /// Memory for @p n objects of type T (not constructed).
  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n == 0 ? 1 : n * sizeof(T);
    return static_cast<T*>(detail::alloc_or_throw(pool_, bytes, alignof(T)));
  }
  /// Returns memory from allocate(); accounting only once the pool is protected.
  void deallocate(T* p, std::size_t n) noexcept {
    (void)n;
    if (p != nullptr) (void)pfree(pool_, p);
  }

  /// A container copy lives in the same pool as the original.
  allocator select_on_container_copy_construction() const noexcept { return *this; }

  /// The pool this allocator allocates from.
  pmalloc_pool* pool() const noexcept { return pool_; }

  /// Equal when both allocate from the same pool (whatever the value types).
  template <class U>
  bool operator==(const allocator<U>& other) const noexcept {
    return pool_ == other.pool();
  }

 private:
  pmalloc_pool* pool_;
};

}  // namespace pmalloc
