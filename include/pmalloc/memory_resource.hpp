/**
 * @file pmalloc/memory_resource.hpp
 * @brief pmalloc::memory_resource: a std::pmr::memory_resource over a pool, so that
 *        std::pmr containers can be built inside a pool and then protected.
 *
 * @code
 * pmalloc::Pool pool("rules");
 * auto* mr = pool.make<pmalloc::memory_resource>(pool);   // the resource itself in the pool
 * auto* table = pool.make<std::pmr::unordered_map<std::pmr::string, Rule>>(mr);
 * ... fill *table ...
 * pmalloc::ro_ptr rules = pool.protect(table);             // from here on: find(), at(), iteration
 * @endcode
 *
 * What is safe after protection, and what faults, is listed in docs/cpp.md. In short:
 * every const operation (find, at, count, contains, iteration, size) is; anything that
 * writes the container or its elements is not, and neither is running the container's
 * destructor (libstdc++ clears bucket arrays on destruction): build the container itself
 * in the pool with make<T>() and let pool destruction release it.
 */
#pragma once

#include "pmalloc/cxx20.hpp"

#include <cerrno>
#include <cstddef>
#include <memory_resource>

#include "pmalloc/pmalloc.hpp"

namespace pmalloc {

/**
 * @brief A std::pmr::memory_resource that allocates from one pool.
 *
 * - allocate(bytes, alignment) allocates from the pool (1 byte for a request of 0 bytes,
 *   so every allocation has a distinct address). Alignment must be a power of two no
 *   larger than the page size. After the pool is protected, allocation still works: it
 *   comes from fresh writable pages (protect the pool again to cover them).
 * - deallocate() is pfree(): before protection the memory is reused; after protection it
 *   only updates the pool's accounting, the bytes stay unchanged and read-only, so a
 *   container that frees after protection never corrupts anything. deallocate never
 *   throws; a pointer that is not a live allocation of the pool (a bug of the caller) is
 *   ignored, with pmalloc_last_error() saying why.
 * - is_equal(other): true for the same object and for any pmalloc::memory_resource over
 *   the same pool (memory from one can be returned through the other).
 *
 * The resource holds only the pool handle and no mutable state, so it is thread-safe
 * (pool operations are locked) and may itself live in the pool it allocates from: built
 * with `pool.make<pmalloc::memory_resource>(pool)`, it is protected with the data, and
 * the pointer every std::pmr container keeps to it leads to read-only memory.
 *
 * The pool must outlive every container that uses the resource; the resource does not
 * own the pool.
 */
class memory_resource : public std::pmr::memory_resource {
 public:
  /// A resource over @p pool (not owned). @throws error (EINVAL) when @p pool is empty.
  explicit memory_resource(Pool& pool) : memory_resource(pool.get()) {}
  /// A resource over `*pool` (not owned). @throws error (EINVAL) for nullptr or an empty Pool.
  explicit memory_resource(Pool* pool) : memory_resource(pool != nullptr ? pool->get() : nullptr) {}
  /// A resource over the C pool @p pool (not owned). @throws error (EINVAL) for nullptr.
  explicit memory_resource(pmalloc_pool* pool) : pool_(pool) {
    if (pool == nullptr) throw error(EINVAL, "pmalloc::memory_resource: the pool is null");
  }

  /// The pool this resource allocates from.
  pmalloc_pool* pool() const noexcept { return pool_; }

 protected:
  /// Allocates from the pool. @throws out_of_memory (a std::bad_alloc) when the pool
  /// cannot grow, error (EINVAL) for an alignment above the page size or an invalid pool.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return detail::alloc_or_throw(pool_, bytes == 0 ? 1 : bytes, alignment);
  }
  /// pfree(): reuse before protection, accounting only after. Never throws.
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override {
    (void)bytes;
    (void)alignment;
    if (p != nullptr) (void)pfree(pool_, p);
  }
  /// Same object, or a pmalloc::memory_resource over the same pool.
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    if (this == &other) return true;
#if defined(__GXX_RTTI) || defined(__cpp_rtti)
    const auto* o = dynamic_cast<const memory_resource*>(&other);
    return o != nullptr && o->pool_ == pool_;
#else
    return false;
#endif
  }

 private:
  pmalloc_pool* pool_;
};

}  // namespace pmalloc
