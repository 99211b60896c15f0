/**
 * @file pmalloc/pmalloc.hpp
 * @brief C++ API: RAII pools over the C core (pmalloc/pmalloc.h), typed helpers and
 *        read-only pointers.
 *
 * Errors: a failed call throws. Out of memory (ENOMEM) throws pmalloc::out_of_memory,
 * which is a std::bad_alloc, so code that already handles allocation failure keeps
 * working; every other failure throws pmalloc::error, a std::system_error whose code()
 * is the errno value and whose what() is the library's one-line reason. The try_*
 * members are noexcept and return nullptr / an error code instead.
 *
 * Objects placed in a pool never have their destructors run by the pool: free() and
 * pool destruction release memory only. Put trivially destructible data in pools (that
 * is what protected data is), or destroy objects yourself before freeing them.
 *
 * Keeping honest code honest: after protection, hold pool data through `const T*` or
 * pmalloc::ro_ptr (Pool::protect(p) returns one), so that the compiler refuses a write
 * before the MMU has to. Split a structure into the read-only part, which lives in a
 * protected pool and is reached through such a pointer, and the mutable part, which does
 * not. The standard-library adapters are in pmalloc/memory_resource.hpp and
 * pmalloc/allocator.hpp; docs/cpp.md says which container operations are safe after
 * protection.
 */
#pragma once

#include "pmalloc/cxx20.hpp"

#include <cerrno>
#include <compare>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "pmalloc/pmalloc.h"

/// The pmalloc C++ API.
namespace pmalloc {

/// Every failure other than out-of-memory: code() is the errno value, what() the reason.
class error : public std::system_error {
 public:
  /// @param code   the errno value.
  /// @param reason one-line description (usually pmalloc_last_error()).
  error(int code, const char* reason) : std::system_error(code, std::generic_category(), reason) {}
};

/// Out of memory (ENOMEM): a std::bad_alloc whose what() is the library's reason.
class out_of_memory : public std::bad_alloc {
 public:
  /// @param reason one-line description (usually pmalloc_last_error()).
  explicit out_of_memory(const char* reason) : reason_(reason) {}
  /// The reason given at construction.
  const char* what() const noexcept override { return reason_.c_str(); }

 private:
  std::string reason_;
};

/// Throws the exception that matches an errno value (no-op for 0): out_of_memory for
/// ENOMEM, error otherwise, with pmalloc_last_error() (or strerror) as the reason.
inline void throw_if_error(int code) {
  if (code == 0) return;
  const char* reason = pmalloc_last_error();
  if (reason == nullptr || *reason == '\0') reason = std::strerror(code);
  if (code == ENOMEM) throw out_of_memory(reason);
  throw error(code, reason);
}

/// The statistics of one pool (see struct pmalloc_stats).
using Stats = pmalloc_stats;

/// Pool creation options: a readable spelling of the PMALLOC_* flags.
struct PoolOptions {
  std::string name;           ///< at most PMALLOC_NAME_MAX bytes
  bool write_rare = false;    ///< PMALLOC_WR
  bool auto_protect = false;  ///< PMALLOC_AUTO
  bool seal = false;          ///< PMALLOC_SEAL
  bool guard_pages = true;    ///< false: PMALLOC_NO_GUARD

  /// The PMALLOC_* flags these options stand for.
  unsigned flags() const noexcept {
    return (write_rare ? PMALLOC_WR : 0u) | (auto_protect ? PMALLOC_AUTO : 0u) | (seal ? PMALLOC_SEAL : 0u) |
           (guard_pages ? 0u : PMALLOC_NO_GUARD);
  }
};

/**
 * @brief A read-only pointer to pool data: `const T*` that says so in its type.
 *
 * Matthew Wilcox's advice from the kernel review of pmalloc: split a structure into a
 * read-only part reached through a const pointer and a writable part. ro_ptr is that
 * const pointer as a vocabulary type: it cannot be made from a `T*` implicitly, gives
 * only const access, and converts to `const T*` wherever one is expected (so indexing
 * and comparisons work as for a raw pointer). Pool::protect(p) returns one.
 *
 * It owns nothing and checks nothing: it is exactly as cheap as `const T*`.
 */
template <class T>
class ro_ptr {
 public:
  using element_type = const T;  ///< what the pointer reaches

  /// A null pointer.
  constexpr ro_ptr() noexcept = default;
  /// A null pointer.
  constexpr ro_ptr(std::nullptr_t) noexcept {}  // NOLINT: implicit like a pointer
  /// Points at @p p (which should be in a protected pool).
  constexpr explicit ro_ptr(const T* p) noexcept : p_(p) {}
  /// Converts like the raw pointers would (derived to base, T to const T).
  template <class U>
    requires std::is_convertible_v<const U*, const T*>
  constexpr ro_ptr(ro_ptr<U> other) noexcept : p_(other.get()) {}  // NOLINT: implicit like a pointer

  /// The raw const pointer.
  constexpr const T* get() const noexcept { return p_; }
  /// The object pointed to.
  constexpr const T& operator*() const noexcept { return *p_; }
  /// Member access (const only).
  constexpr const T* operator->() const noexcept { return p_; }
  /// Converts to `const T*` (never to `T*`).
  constexpr operator const T*() const noexcept { return p_; }  // NOLINT: implicit on purpose

 private:
  const T* p_ = nullptr;
};

/// Deduces ro_ptr<T> from a `T*` or `const T*`.
template <class T>
ro_ptr(const T*) -> ro_ptr<T>;

// Typed construction in a pool, for code that holds a C handle (make, make_array, strdup
// below); the members of the same names on Pool call these.
namespace detail {
inline void* alloc_or_throw(pmalloc_pool* pool, std::size_t size, std::size_t align) {
  void* p = pmalloc_aligned(pool, size, align);
  if (p == nullptr) throw_if_error(errno != 0 ? errno : ENOMEM);
  return p;
}
template <class T>
constexpr std::size_t alignment_of() noexcept {
  return alignof(T) > 16 ? alignof(T) : 16;
}
}  // namespace detail

/**
 * @brief Constructs a T in @p pool from @p args.
 *
 * `T(args...)` when T has such a constructor, else `T{args...}` (aggregates).
 * Memory is aligned to max(alignof(T), 16); over-aligned types up to the page size work.
 * If the constructor throws, the memory is freed and the exception propagates. The pool
 * never runs the destructor.
 * @throws out_of_memory, error (EINVAL for an invalid pool or alignof(T) above the page size)
 */
template <class T, class... Args>
T* make(pmalloc_pool* pool, Args&&... args) {
  static_assert(!std::is_array_v<T>, "use make_array<T>(n) for arrays");
  void* p = detail::alloc_or_throw(pool, sizeof(T), detail::alignment_of<T>());
  try {
    if constexpr (std::is_constructible_v<T, Args&&...>) {
      return ::new (p) T(std::forward<Args>(args)...);
    } else {  // aggregates: make<Limits>(100, 1000) also with compilers without P0960
      return ::new (p) T{std::forward<Args>(args)...};
    }
  } catch (...) {
    (void)pfree(pool, p);
    throw;
  }
}

/**
 * @brief A value-initialised array of @p n T in @p pool (n > 0).
 *
 * If a constructor throws, the elements built so far are destroyed, the memory is freed
 * and the exception propagates.
 * @throws error (EINVAL for n == 0), out_of_memory (also when n * sizeof(T) overflows)
 */
template <class T>
T* make_array(pmalloc_pool* pool, std::size_t n) {
  static_assert(std::is_default_constructible_v<T>, "make_array needs a default-constructible T");
  std::size_t bytes = 0;
  if (n == 0) throw error(EINVAL, "pmalloc::Pool::make_array: count must not be 0");
  if (__builtin_mul_overflow(n, sizeof(T), &bytes)) throw out_of_memory("pmalloc::Pool::make_array: size overflows");
  void* p = detail::alloc_or_throw(pool, bytes, detail::alignment_of<T>());
  T* first = static_cast<T*>(p);
  std::size_t built = 0;
  try {
    for (; built < n; ++built) ::new (first + built) T();
  } catch (...) {
    for (std::size_t i = built; i-- > 0;) first[i].~T();
    (void)pfree(pool, p);
    throw;
  }
  return first;
}

/// A NUL-terminated copy of @p s in @p pool (embedded NULs are copied too).
/// @throws out_of_memory, error
inline char* strdup(pmalloc_pool* pool, std::string_view s) {
  auto* p = static_cast<char*>(detail::alloc_or_throw(pool, s.size() + 1, 1));
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

/**
 * @brief A move-only owner of a pool; destroying the Pool destroys the pool.
 *
 * Life cycle: create, allocate and initialise (make, make_array, strdup, alloc), then
 * protect(); from then on the data is read-only for good and is best held through
 * ro_ptr / `const T*`. Allocation after protect() still works and comes from fresh,
 * writable pages (protect again to cover them).
 */
class Pool {
 public:
  /// Creates a pool. @throws error (EINVAL: bad name or flags), out_of_memory
  explicit Pool(const PoolOptions& options = {}) : Pool(options.name.c_str(), options.flags()) {}
  /// Creates a write-once (PMALLOC_RO) pool named @p name. @throws error, out_of_memory
  explicit Pool(const char* name) : Pool(name, PMALLOC_RO) {}
  /// Creates a pool from a name and PMALLOC_* flags. @throws error, out_of_memory
  Pool(const char* name, unsigned flags) : pool_(pmalloc_create_pool(name, flags)) {
    if (pool_ == nullptr) throw_if_error(errno);
  }
  /// Adopts a pool created through the C API.
  static Pool adopt(pmalloc_pool* pool) noexcept { return Pool(pool); }

  /// Takes over @p other's pool; @p other becomes empty.
  Pool(Pool&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
  /// Destroys this pool and takes over @p other's.
  Pool& operator=(Pool&& other) noexcept {
    if (this != &other) {
      pmalloc_destroy_pool(pool_);
      pool_ = std::exchange(other.pool_, nullptr);
    }
    return *this;
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  /// Destroys the pool (pmalloc_destroy_pool).
  ~Pool() { pmalloc_destroy_pool(pool_); }

  /// Raw memory, default alignment 16 (or @p align, a power of two <= the page size).
  /// @throws out_of_memory, error (EINVAL: size 0 or a bad alignment)
  void* alloc(std::size_t size, std::size_t align = 16) {
    void* p = pmalloc_aligned(pool_, size, align);
    if (p == nullptr) throw_if_error(errno);
    return p;
  }
  /// Like alloc(), but returns nullptr (errno set) instead of throwing.
  void* try_alloc(std::size_t size, std::size_t align = 16) noexcept { return pmalloc_aligned(pool_, size, align); }
  /// Like alloc(), zero-filled.
  void* zalloc(std::size_t size, std::size_t align = 16) {
    void* p = alloc(size, align);
    std::memset(p, 0, size);
    return p;
  }

  /// Constructs a T in the pool; see pmalloc::make().
  template <class T, class... Args>
  T* make(Args&&... args) {
    return pmalloc::make<T>(pool_, std::forward<Args>(args)...);
  }

  /// A value-initialised array of n T (n > 0); see pmalloc::make_array().
  template <class T>
  T* make_array(std::size_t n) {
    return pmalloc::make_array<T>(pool_, n);
  }

  /// A NUL-terminated copy of s in the pool.
  char* strdup(std::string_view s) { return pmalloc::strdup(pool_, s); }

  /// Frees an allocation (before protection: reusable; after: accounting only).
  /// @throws error (EINVAL unless p starts a live allocation of this pool)
  void free(const void* p) { throw_if_error(pfree(pool_, p)); }
  /// Like free(), returning 0 or the errno value.
  int try_free(const void* p) noexcept { return pfree(pool_, p); }
  /// Commits room for @p size bytes now, so later allocations do not fail.
  void prealloc(std::size_t size) { throw_if_error(pmalloc_prealloc(pool_, size)); }
  /// Write-protects everything allocated so far (pmalloc_protect_pool). @throws error
  void protect() { throw_if_error(pmalloc_protect_pool(pool_)); }

  /**
   * @brief Protects the pool and returns @p p, which points into it, as an ro_ptr.
   *
   * `auto table = pool.protect(table_being_built);` ends the writable phase in the type
   * system as well as in the MMU: the returned pointer allows reads only.
   * @throws error EINVAL, before protecting anything, when the object at @p p does not
   *         lie inside one live pmalloc allocation (a pointer to the stack, the heap or a
   *         freed object would otherwise come back looking protected); nullptr is
   *         allowed. Otherwise as protect().
   */
  template <class T>
  [[nodiscard]] ro_ptr<T> protect(const T* p) {
    require_allocated(p);
    protect();
    return ro_ptr<T>(p);
  }
  /// Protects the pool and returns every pointer as an ro_ptr, in a tuple
  /// (`auto [a, b] = pool.protect(pa, pb);`). Checks every pointer first, as protect(p).
  template <class... T>
    requires(sizeof...(T) > 1)
  [[nodiscard]] std::tuple<ro_ptr<T>...> protect(const T*... p) {
    (require_allocated(p), ...);
    protect();
    return std::tuple<ro_ptr<T>...>(ro_ptr<T>(p)...);
  }

  /// The pool's statistics. @throws error
  Stats stats() const {
    Stats s{};
    throw_if_error(pmalloc_pool_stats(pool_, &s));
    return s;
  }
  /// The name given at creation.
  const char* name() const noexcept { return pmalloc_pool_name(pool_); }

  /// The C handle (still owned by this Pool).
  pmalloc_pool* get() const noexcept { return pool_; }
  /// Gives up ownership; the caller must destroy the pool.
  pmalloc_pool* release() noexcept { return std::exchange(pool_, nullptr); }
  /// True unless moved from or released.
  explicit operator bool() const noexcept { return pool_ != nullptr; }

 private:
  explicit Pool(pmalloc_pool* pool) noexcept : pool_(pool) {}
  template <class T>
  static void require_allocated(const T* p) {
    std::size_t size = 1;
    if constexpr (!std::is_void_v<T>) size = sizeof(T);
    if (p != nullptr && is_pmalloc_object(p, size) != PMALLOC_OBJECT_OK) {
      throw error(EINVAL, "pmalloc::Pool::protect: the object is not inside a live pmalloc allocation");
    }
  }
  pmalloc_pool* pool_ = nullptr;
};

/// Constructs a T in @p pool; see make(pmalloc_pool*, Args&&...).
template <class T, class... Args>
T* make(Pool& pool, Args&&... args) {
  return make<T>(pool.get(), std::forward<Args>(args)...);
}
/// A value-initialised array of n T in @p pool; see make_array(pmalloc_pool*, std::size_t).
template <class T>
T* make_array(Pool& pool, std::size_t n) {
  return make_array<T>(pool.get(), n);
}
/// A NUL-terminated copy of @p s in @p pool.
inline char* strdup(Pool& pool, std::string_view s) { return strdup(pool.get(), s); }

}  // namespace pmalloc
