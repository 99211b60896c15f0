// pmalloc C++ write-rare helpers over pmalloc/wr.h (docs/write-rare.md).
//
//   pmalloc::wr_assign(field, value)        -> bool, like the C macro (declared in wr.h)
//   pmalloc::wr_set(field, value)           -> throws pmalloc::error on refusal
//   pmalloc::wr<T>                          a write-rare field: reads like a const T&,
//                                           writes only through set() (or a transaction)
//   pmalloc::wr_transaction                 a batch: stage updates, commit() applies all
//                                           or none, paying the writer's fixed cost once
//
// Errors follow pmalloc.hpp: the throwing forms throw pmalloc::error (a std::system_error
// whose code() is EINVAL / EPERM / ...) or pmalloc::out_of_memory; try_* forms return
// false and leave errno and pmalloc_last_error() set.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "pmalloc/pmalloc.hpp"
#include "pmalloc/wr.h"

namespace pmalloc {

inline void wr_copy(void* dst, const void* src, std::size_t n) {
  if (!::wr_memcpy(dst, src, n)) throw_if_error(errno);
}

template <class T>
inline void wr_set(T& target, const std::type_identity_t<T>& value) {
  if (!wr_assign(target, value)) throw_if_error(errno);
}

class wr_transaction;

// A write-rare field. Put it in a struct allocated from a PMALLOC_WR pool:
//
//   struct Config { pmalloc::wr<int> level; pmalloc::wr<const Rules*> rules; };
//   Config* c = pool.make<Config>();          // initialised while the pool is writable
//   pool.protect();
//   int l = c->level;                         // reads are plain loads
//   c->level.set(3);                          // checked write through the writer
//   c->rules.set(new_rules);                  // pointers are published (release, one store)
//
// Plain assignment is deleted, so a write can only be a deliberate set(). A pointer field
// is set with wr_rcu_assign_pointer semantics and read with load() (acquire) by readers
// that follow it concurrently.
template <class T>
class wr {
  static_assert(std::is_trivially_copyable_v<T>, "pmalloc::wr<T>: T must be trivially copyable");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>, "pmalloc::wr<T>: T must not be cv-qualified");

 public:
  constexpr wr() noexcept(std::is_nothrow_default_constructible_v<T>) : value_() {}
  constexpr wr(const T& value) noexcept(std::is_nothrow_copy_constructible_v<T>) : value_(value) {}  // NOLINT: implicit on purpose
  wr(const wr&) = default;
  wr& operator=(const wr&) = delete;
  wr& operator=(const T&) = delete;

  const T& get() const noexcept { return value_; }
  operator const T&() const noexcept { return value_; }  // NOLINT: reads like a const T&
  const T* operator->() const noexcept
    requires(!std::is_pointer_v<T>)
  {
    return std::addressof(value_);
  }
  T operator->() const noexcept
    requires std::is_pointer_v<T>
  {
    return load();
  }
  // Acquire load, for readers of a pointer that set() publishes concurrently.
  T load() const noexcept
    requires std::is_pointer_v<T>
  {
    return __atomic_load_n(&value_, __ATOMIC_ACQUIRE);
  }

  // Writes through the writer; throws pmalloc::error (EINVAL: not in a pool allocation,
  // EPERM: the pool is not write-rare) and leaves the value unchanged on refusal.
  void set(const T& value) {
    if (!try_set(value)) throw_if_error(errno);
  }
  bool try_set(const T& value) noexcept {
    if constexpr (std::is_pointer_v<T>) {
      static_assert(sizeof(T) == sizeof(void*), "pmalloc::wr<T*>: pointers must be pointer-sized");
      const void* bits = nullptr;
      std::memcpy(&bits, &value, sizeof bits);  // object and function pointers alike
      return ::wr_publish_pointer(static_cast<void*>(std::addressof(value_)), bits);
    } else {
      return ::wr_memcpy(std::addressof(value_), std::addressof(value), sizeof(T));
    }
  }

 private:
  friend class wr_transaction;
  T value_;
};

// A scoped batch of write-rare updates. Values are copied when staged; commit() applies
// every update in staging order, all or nothing (every target is checked first), with
// the writer's fixed cost paid once where the back end allows. A transaction destroyed
// without commit() writes nothing.
class wr_transaction {
 public:
  wr_transaction() = default;
  wr_transaction(const wr_transaction&) = delete;
  wr_transaction& operator=(const wr_transaction&) = delete;
  wr_transaction(wr_transaction&&) noexcept = default;
  wr_transaction& operator=(wr_transaction&&) noexcept = default;
  ~wr_transaction() = default;

  wr_transaction& copy(void* dst, const void* src, std::size_t n) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n);
    if (n != 0) std::memcpy(bytes_.data() + at, src, n);
    pending_.push_back(Pending{dst, at, n});
    return *this;
  }
  wr_transaction& fill(void* dst, int c, std::size_t n) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n, static_cast<unsigned char>(c));
    pending_.push_back(Pending{dst, at, n});
    return *this;
  }
  template <class T>
  wr_transaction& assign(T& target, const std::type_identity_t<T>& value) {
    static_assert(std::is_trivially_copyable_v<T>, "wr_transaction::assign: the type must be trivially copyable");
    static_assert(!std::is_const_v<T>, "wr_transaction::assign: the target must not be const");
    return copy(std::addressof(target), std::addressof(value), sizeof(T));
  }
  template <class T>
  wr_transaction& set(wr<T>& field, const std::type_identity_t<T>& value) {
    return copy(std::addressof(field.value_), std::addressof(value), sizeof(T));
  }

  std::size_t size() const noexcept { return pending_.size(); }
  bool empty() const noexcept { return pending_.empty(); }
  // Drops every staged update.
  void clear() noexcept {
    pending_.clear();
    bytes_.clear();
  }

  // Applies everything and clears the transaction; on refusal throws and keeps it (so a
  // caller may inspect or clear it) with nothing written.
  void commit() {
    if (!try_commit()) throw_if_error(errno);
  }
  bool try_commit() noexcept {
    if (pending_.empty()) return true;
    std::vector<wr_batch_op> ops;
    try {
      ops.reserve(pending_.size());
    } catch (...) {
      errno = ENOMEM;
      return false;
    }
    for (const Pending& p : pending_) ops.push_back(wr_batch_op{p.dst, bytes_.data() + p.offset, p.n});
    if (!::wr_memcpy_batch(ops.data(), ops.size())) return false;
    clear();
    return true;
  }

 private:
  struct Pending {
    void* dst;
    std::size_t offset;
    std::size_t n;
  };
  std::vector<Pending> pending_;
  std::vector<unsigned char> bytes_;
};

using wr_batch = wr_transaction;

}  // namespace pmalloc
