// pmalloc C++ API: RAII pools over the C core (pmalloc/pmalloc.h).
//
// Errors: a failed call throws. Out of memory (ENOMEM) throws pmalloc::out_of_memory,
// which is a std::bad_alloc, so code that already handles allocation failure keeps
// working; every other failure throws pmalloc::error, a std::system_error whose code()
// is the errno value and whose what() is the library's one-line reason. The try_*
// members are noexcept and return nullptr / an error code instead.
//
// Objects placed in a pool never have their destructors run by the pool: free() and
// pool destruction release memory only. Put trivially destructible data in pools (that
// is what protected data is), or destroy objects yourself before freeing them.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "pmalloc/pmalloc.h"

namespace pmalloc {

class error : public std::system_error {
 public:
  error(int code, const char* reason) : std::system_error(code, std::generic_category(), reason) {}
};

class out_of_memory : public std::bad_alloc {
 public:
  explicit out_of_memory(const char* reason) : reason_(reason) {}
  const char* what() const noexcept override { return reason_.c_str(); }

 private:
  std::string reason_;
};

// Throws the exception that matches an errno value (no-op for 0).
inline void throw_if_error(int code) {
  if (code == 0) return;
  const char* reason = pmalloc_last_error();
  if (reason == nullptr || *reason == '\0') reason = std::strerror(code);
  if (code == ENOMEM) throw out_of_memory(reason);
  throw error(code, reason);
}

using Stats = pmalloc_stats;

struct PoolOptions {
  std::string name;
  bool write_rare = false;    // PMALLOC_WR
  bool auto_protect = false;  // PMALLOC_AUTO
  bool seal = false;          // PMALLOC_SEAL
  bool guard_pages = true;    // false: PMALLOC_NO_GUARD

  unsigned flags() const noexcept {
    return (write_rare ? PMALLOC_WR : 0u) | (auto_protect ? PMALLOC_AUTO : 0u) | (seal ? PMALLOC_SEAL : 0u) |
           (guard_pages ? 0u : PMALLOC_NO_GUARD);
  }
};

// A move-only owner of a pool; destroying the Pool destroys the pool.
class Pool {
 public:
  explicit Pool(const PoolOptions& options = {}) : Pool(options.name.c_str(), options.flags()) {}
  Pool(const char* name, unsigned flags) : pool_(pmalloc_create_pool(name, flags)) {
    if (pool_ == nullptr) throw_if_error(errno);
  }
  // Adopts a pool created through the C API.
  static Pool adopt(pmalloc_pool* pool) noexcept { return Pool(pool); }

  Pool(Pool&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
  Pool& operator=(Pool&& other) noexcept {
    if (this != &other) {
      pmalloc_destroy_pool(pool_);
      pool_ = std::exchange(other.pool_, nullptr);
    }
    return *this;
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() { pmalloc_destroy_pool(pool_); }

  // Raw memory, default alignment 16 (or `align`, a power of two <= the page size).
  void* alloc(std::size_t size, std::size_t align = 16) {
    void* p = pmalloc_aligned(pool_, size, align);
    if (p == nullptr) throw_if_error(errno);
    return p;
  }
  void* try_alloc(std::size_t size, std::size_t align = 16) noexcept { return pmalloc_aligned(pool_, size, align); }
  void* zalloc(std::size_t size, std::size_t align = 16) {
    void* p = alloc(size, align);
    std::memset(p, 0, size);
    return p;
  }

  // Constructs a T in the pool. If the constructor throws, the memory is freed.
  template <class T, class... Args>
  T* make(Args&&... args) {
    void* p = alloc(sizeof(T), alignof(T) > 16 ? alignof(T) : 16);
    try {
      return ::new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      (void)pfree(pool_, p);
      throw;
    }
  }

  // Value-initialised array of n T (n > 0).
  template <class T>
  T* make_array(std::size_t n) {
    static_assert(std::is_default_constructible_v<T>, "make_array needs a default-constructible T");
    std::size_t bytes = 0;
    if (n == 0) throw error(EINVAL, "pmalloc::Pool::make_array: count must not be 0");
    if (__builtin_mul_overflow(n, sizeof(T), &bytes)) throw out_of_memory("pmalloc::Pool::make_array: size overflows");
    void* p = alloc(bytes, alignof(T) > 16 ? alignof(T) : 16);
    T* first = static_cast<T*>(p);
    std::size_t built = 0;
    try {
      for (; built < n; ++built) ::new (first + built) T();
    } catch (...) {
      for (std::size_t i = built; i-- > 0;) first[i].~T();
      (void)pfree(pool_, p);
      throw;
    }
    return first;
  }

  // A NUL-terminated copy of s in the pool.
  char* strdup(std::string_view s) {
    auto* p = static_cast<char*>(alloc(s.size() + 1, 1));
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
  }

  void free(const void* p) { throw_if_error(pfree(pool_, p)); }
  int try_free(const void* p) noexcept { return pfree(pool_, p); }
  void prealloc(std::size_t size) { throw_if_error(pmalloc_prealloc(pool_, size)); }
  void protect() { throw_if_error(pmalloc_protect_pool(pool_)); }

  Stats stats() const {
    Stats s{};
    throw_if_error(pmalloc_pool_stats(pool_, &s));
    return s;
  }
  const char* name() const noexcept { return pmalloc_pool_name(pool_); }

  pmalloc_pool* get() const noexcept { return pool_; }
  // Gives up ownership; the caller must destroy the pool.
  pmalloc_pool* release() noexcept { return std::exchange(pool_, nullptr); }
  explicit operator bool() const noexcept { return pool_ != nullptr; }

 private:
  explicit Pool(pmalloc_pool* pool) noexcept : pool_(pool) {}
  pmalloc_pool* pool_ = nullptr;
};

}  // namespace pmalloc
