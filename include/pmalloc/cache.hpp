/**
 * @file pmalloc/cache.hpp
 * @brief C++ API for sealed object caches: pmalloc::SealedCache<T> over pmalloc/cache.h.
 *
 * @code
 * pmalloc::SealedCache<Policy> policies("policies");
 * const Policy* p = policies.create(42, "strict");        // read-only from its first moment
 * const Node* n = nodes.create_with([&](const Node* self) { return Node{self, parent}; });
 * policies.free(p);                                       // or destroy(p)
 * @endcode
 *
 * How an object comes to be: T is constructed in a private, zero-filled staging buffer
 * (never at its final address, which is read-only), then its bytes are copied into the
 * final slot through the write-rare writer. Hence the requirements on T, enforced by the
 * concept pmalloc::Sealable:
 * - a complete, non-array, non-const, non-volatile object type, at most
 *   PMALLOC_CACHE_OBJECT_MAX bytes, alignment at most 4096;
 * - trivially destructible: the cache never runs destructors (free() wipes the bytes,
 *   and an object can never write to itself anyway);
 * - relocatable by a byte copy: trivially copyable, or explicitly declared so with
 *   `template <> inline constexpr bool pmalloc::sealed_relocatable<T> = true;` for a
 *   type whose value does not depend on its own address (e.g. it has a user-provided
 *   copy constructor that only copies). A T that must point to itself gets its final
 *   address through create_with() instead of `this`: `this` inside a constructor is the
 *   staging buffer, which is gone after the copy.
 *
 * Constructors may have any arguments; exceptions they throw propagate from create()
 * unchanged and nothing is allocated.
 *
 * Errors: like pmalloc::Pool, a failed call throws pmalloc::out_of_memory (ENOMEM) or
 * pmalloc::error (std::system_error with the errno value and the library's reason); the
 * try_* members return nullptr / an error code instead. Thread safety as pmalloc/cache.h:
 * every member may be called from any thread, concurrently, except destruction, move
 * assignment and release() (which must not race with other calls on the same cache).
 */
#pragma once

#include "pmalloc/cxx20.hpp"

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pmalloc/pmalloc.h"
#include "pmalloc/pmalloc.hpp"

namespace pmalloc {

/// Opt-in for types that are not trivially copyable but may be moved by copying their
/// bytes: specialise it to true for such a T.
template <class T>
inline constexpr bool sealed_relocatable = false;

/// The requirements on the T of a SealedCache (see the file documentation).
template <class T>
concept Sealable = std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> &&
                   std::is_trivially_destructible_v<T> &&
                   (std::is_trivially_copyable_v<T> || sealed_relocatable<T>) && alignof(T) <= 4096 &&
                   sizeof(T) <= PMALLOC_CACHE_OBJECT_MAX;

/// Cache creation options: a readable spelling of the flags of pmalloc_cache_create().
struct CacheOptions {
  std::string name;          ///< at most PMALLOC_NAME_MAX bytes
  bool seal = false;         ///< PMALLOC_SEAL
  bool guard_pages = true;   ///< false: PMALLOC_NO_GUARD

  /// The PMALLOC_* flags these options stand for.
  unsigned flags() const noexcept { return (seal ? PMALLOC_SEAL : 0u) | (guard_pages ? 0u : PMALLOC_NO_GUARD); }
};

namespace detail {

// Builds T from the arguments: a constructor when there is one, aggregate initialisation
// otherwise (parenthesised aggregate initialisation is not available on every compiler).
template <class T, class... Args>
T make_value(Args&&... args) {
  if constexpr (std::is_constructible_v<T, Args...>) {
    return T(std::forward<Args>(args)...);
  } else {
    return T{std::forward<Args>(args)...};
  }
}

template <class T, class... Args>
concept buildable_from = std::is_constructible_v<T, Args...> || requires(Args&&... args) {
  T{std::forward<Args>(args)...};
};

}  // namespace detail

/**
 * @brief A move-only owner of a cache of T; destroying the SealedCache destroys the cache
 *        and every object in it (pmalloc_cache_destroy()).
 *
 * The cache's object size and alignment are sizeof(T) and alignof(T).
 */
template <Sealable T>
class SealedCache {
 public:
  /// Creates a cache. @throws error (EINVAL: name too long; ENOTSUP: no write-rare back
  /// end works), out_of_memory
  explicit SealedCache(const CacheOptions& options = {}) : SealedCache(options.name.c_str(), options.flags()) {}
  /// Creates a cache named @p name with PMALLOC_SEAL / PMALLOC_NO_GUARD @p flags.
  /// @throws error (EINVAL: name too long or other flags; ENOTSUP), out_of_memory
  explicit SealedCache(const char* name, unsigned flags = 0)
      : cache_(pmalloc_cache_create(name, sizeof(T), alignof(T), flags)) {
    if (cache_ == nullptr) throw_if_error(errno);
  }
  /// Takes over @p other's cache; @p other becomes empty.
  SealedCache(SealedCache&& other) noexcept : cache_(std::exchange(other.cache_, nullptr)) {}
  /// Destroys this cache (and its objects) and takes over @p other's.
  SealedCache& operator=(SealedCache&& other) noexcept {
    if (this != &other) {
      pmalloc_cache_destroy(cache_);
      cache_ = std::exchange(other.cache_, nullptr);
    }
    return *this;
  }
  SealedCache(const SealedCache&) = delete;
  SealedCache& operator=(const SealedCache&) = delete;
  /// Destroys the cache and every object in it.
  ~SealedCache() { pmalloc_cache_destroy(cache_); }

  /// Constructs `T(args...)` (or `T{args...}` for aggregates) and returns the object,
  /// read-only from its first moment.
  /// @throws out_of_memory, error (EINVAL: empty SealedCache; or the writer's errno);
  ///         whatever T's constructor throws, unchanged. Nothing is allocated then.
  template <class... Args>
    requires detail::buildable_from<T, Args...>
  const T* create(Args&&... args) {
    return create_with([&](const T*) { return detail::make_value<T>(std::forward<Args>(args)...); });
  }

  /// Creates the object that `make(final_address)` returns. @p final_address is where it
  /// will live (for pointers to itself): read-only and not yet holding the object. @p make
  /// runs with no library lock held.
  /// @throws as create(); also whatever @p make throws, unchanged.
  template <class F>
    requires std::is_invocable_r_v<T, F&, const T*>
  const T* create_with(F&& make) {
    Build<F> build{&make, nullptr};
    const void* p = pmalloc_cache_alloc_init(cache_, &Build<F>::one, &build);
    if (p == nullptr) {
      const int code = errno;
      if (build.error) std::rethrow_exception(build.error);
      throw_if_error(code);
    }
    return std::launder(static_cast<const T*>(p));
  }

  /// As create(), but library failures return nullptr (errno and pmalloc_last_error()
  /// set); exceptions thrown by T's constructor still propagate.
  template <class... Args>
    requires detail::buildable_from<T, Args...>
  const T* try_create(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args...>) {
    auto make = [&](const T*) { return detail::make_value<T>(std::forward<Args>(args)...); };
    Build<decltype(make)> build{&make, nullptr};
    const void* p = pmalloc_cache_alloc_init(cache_, &Build<decltype(make)>::one, &build);
    if (p == nullptr && build.error) std::rethrow_exception(build.error);
    return std::launder(static_cast<const T*>(p));
  }

  /// Creates out.size() objects at once, all or nothing (pmalloc_cache_alloc_init_many()):
  /// `make(i, final_address)` returns object i. Every out[j] holds its final address before
  /// the first make() call, so the objects of one batch may point to each other.
  /// @throws as create_with(); then nothing is allocated and every out[j] is nullptr.
  template <class F>
    requires std::is_invocable_r_v<T, F&, std::size_t, const T*>
  void create_many(std::span<const T*> out, F&& make) {
    std::vector<const void*> raw(out.size(), nullptr);
    Batch<F> batch{&make, &raw, out, nullptr};
    const int code = pmalloc_cache_alloc_init_many(cache_, raw.size(), raw.data(), &Batch<F>::one, &batch);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<const T*>(raw[i]);
    if (code != 0) {
      if (batch.error) std::rethrow_exception(batch.error);
      throw_if_error(code);
    }
    for (auto& p : out) p = std::launder(p);
  }
  /// Creates @p count objects at once; see create_many(std::span<const T*>, F&&).
  /// @return the objects, in order. @throws as create_many(std::span<const T*>, F&&), and
  ///         std::bad_alloc for the vector.
  template <class F>
    requires std::is_invocable_r_v<T, F&, std::size_t, const T*>
  std::vector<const T*> create_many(std::size_t count, F&& make) {
    std::vector<const T*> out(count, nullptr);
    create_many(std::span<const T*>(out), make);
    return out;
  }

  /// Frees an object (its slot is wiped and reused; no destructor runs).
  /// @throws error (EINVAL, nothing changed: not a live object of this cache; or the
  ///         writer's errno), out_of_memory
  void free(const T* obj) { throw_if_error(pmalloc_cache_free(cache_, obj)); }
  /// The same as free(), named after create().
  void destroy(const T* obj) { free(obj); }
  /// Like free(), returning 0 or the errno value.
  int try_free(const T* obj) noexcept { return pmalloc_cache_free(cache_, obj); }
  /// Frees every object in @p objs, all or nothing (pmalloc_cache_free_many()).
  /// @throws error (EINVAL, nothing freed: one is not a live object of this cache or
  ///         appears twice), out_of_memory, std::bad_alloc
  void free_many(std::span<const T* const> objs) {
    std::vector<const void*> raw(objs.begin(), objs.end());
    throw_if_error(pmalloc_cache_free_many(cache_, raw.data(), raw.size()));
  }

  /// The cache's statistics (pmalloc_cache_stats()). @throws error
  Stats stats() const {
    Stats s{};
    throw_if_error(pmalloc_cache_stats(cache_, &s));
    return s;
  }
  /// The name given at creation (nullptr for an empty SealedCache).
  const char* name() const noexcept { return pmalloc_cache_name(cache_); }

  /// The C handle (still owned by this SealedCache).
  pmalloc_cache* get() const noexcept { return cache_; }
  /// Gives up ownership; the caller must destroy the cache (pmalloc_cache_destroy()).
  pmalloc_cache* release() noexcept { return std::exchange(cache_, nullptr); }
  /// True unless moved from or released.
  explicit operator bool() const noexcept { return cache_ != nullptr; }

 private:
  template <class F>
  struct Build {
    std::remove_reference_t<F>* make;
    std::exception_ptr error;
    static int one(void* staging, const void* final_address, void* arg) noexcept {
      auto* self = static_cast<Build*>(arg);
      try {
        ::new (staging) T(std::invoke(*self->make, static_cast<const T*>(final_address)));
        return 0;
      } catch (...) {
        self->error = std::current_exception();
        return -1;
      }
    }
  };
  template <class F>
  struct Batch {
    std::remove_reference_t<F>* make;
    std::vector<const void*>* raw;
    std::span<const T*> out;
    std::exception_ptr error;
    static int one(void* staging, const void* final_address, std::size_t index, void* arg) noexcept {
      auto* self = static_cast<Batch*>(arg);
      try {
        if (index == 0) {
          // Publish every final address before the first object is built.
          for (std::size_t i = 0; i < self->out.size(); ++i) self->out[i] = static_cast<const T*>((*self->raw)[i]);
        }
        ::new (staging) T(std::invoke(*self->make, index, static_cast<const T*>(final_address)));
        return 0;
      } catch (...) {
        self->error = std::current_exception();
        return -1;
      }
    }
  };

  pmalloc_cache* cache_ = nullptr;
};

}  // namespace pmalloc
