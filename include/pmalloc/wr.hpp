/**
 * @file pmalloc/wr.hpp
 * @brief C++ write-rare helpers over pmalloc/wr.h (docs/write-rare.md).
 *
 * - pmalloc::wr_assign(field, value) returns bool, like the C macro (declared in
 *   pmalloc/wr.h);
 * - pmalloc::wr_set(field, value) and pmalloc::wr_copy(dst, src, n) throw on refusal;
 * - pmalloc::wr<T>: a write-rare field that reads like a `const T&` and is written only
 *   through set() (or a transaction);
 * - pmalloc::wr_transaction (alias pmalloc::wr_batch): a batch that stages updates;
 *   commit() applies all or none, paying the writer's fixed cost once.
 *
 * Errors follow pmalloc/pmalloc.hpp: the throwing forms throw pmalloc::error (a
 * std::system_error whose code() is EINVAL / EPERM / ...) or pmalloc::out_of_memory
 * (ENOMEM); try_* forms return false and leave errno and pmalloc_last_error() set. The
 * checks, errno values and thread safety are those of pmalloc/wr.h.
 */
#pragma once

#include "pmalloc/cxx20.hpp"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "pmalloc/pmalloc.hpp"
#include "pmalloc/wr.h"

namespace pmalloc {

/// Copies @p n bytes from @p src to @p dst through wr_memcpy() (memmove semantics).
/// @throws error (EINVAL: not inside one live allocation of a write-rare pool, EPERM: not
///         write-rare or sealed out of the writer's reach), out_of_memory; nothing is
///         written then.
inline void wr_copy(void* dst, const void* src, std::size_t n) {
  if (!::wr_memcpy(dst, src, n)) throw_if_error(errno);
}

/// `target = value` through wr_memcpy(): wr_assign() that throws on refusal.
/// @tparam T a trivially copyable, non-const type.
/// @throws error (EINVAL, EPERM: see wr_copy()), out_of_memory; @p target is unchanged then.
template <class T>
inline void wr_set(T& target, const std::type_identity_t<T>& value) {
  if (!wr_assign(target, value)) throw_if_error(errno);
}

class wr_transaction;

/**
 * @brief A write-rare field: reads like a `const T&`, writes only through set().
 *
 * Put it in a struct allocated from a PMALLOC_WR pool:
 * @code
 * struct Config { pmalloc::wr<int> level; pmalloc::wr<const Rules*> rules; };
 * Config* c = pool.make<Config>();          // initialised while the pool is writable
 * pool.protect();
 * int l = c->level;                         // reads are plain loads
 * c->level.set(3);                          // checked write through the writer
 * c->rules.set(new_rules);                  // pointers are published (release, one store)
 * @endcode
 *
 * Plain assignment is deleted, so a write can only be a deliberate set(). A pointer field
 * is set with wr_rcu_assign_pointer() semantics and read with load() (acquire) by readers
 * that follow it concurrently. The object is exactly a T (no other members).
 * @tparam T a trivially copyable, non-cv-qualified type.
 */
template <class T>
class wr {
  static_assert(std::is_trivially_copyable_v<T>, "pmalloc::wr<T>: T must be trivially copyable");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>, "pmalloc::wr<T>: T must not be cv-qualified");

 public:
  /// A value-initialised field (for construction while the memory is writable).
  constexpr wr() noexcept(std::is_nothrow_default_constructible_v<T>) : value_() {}
  /// A field holding @p value (for construction while the memory is writable).
  constexpr wr(const T& value) noexcept(std::is_nothrow_copy_constructible_v<T>) : value_(value) {}  // NOLINT: implicit on purpose
  /// Copies the value (a plain copy: for construction, not for writing protected memory).
  wr(const wr&) = default;
  wr& operator=(const wr&) = delete;
  wr& operator=(const T&) = delete;

  /// The value (a plain load).
  const T& get() const noexcept { return value_; }
  /// The value (a plain load): the field reads like a `const T&`.
  operator const T&() const noexcept { return value_; }  // NOLINT: reads like a const T&
  /// Member access to the value (const only), for non-pointer T.
  const T* operator->() const noexcept
    requires(!std::is_pointer_v<T>)
  {
    return std::addressof(value_);
  }
  /// For pointer T: the pointer, loaded with acquire ordering (load()).
  T operator->() const noexcept
    requires std::is_pointer_v<T>
  {
    return load();
  }
  /// For pointer T: an acquire load, for readers of a pointer that set() publishes
  /// concurrently (as wr_rcu_dereference()).
  T load() const noexcept
    requires std::is_pointer_v<T>
  {
    return __atomic_load_n(&value_, __ATOMIC_ACQUIRE);
  }

  /// Writes @p value through the writer (wr_memcpy(); for pointer T wr_publish_pointer():
  /// release ordering, one store).
  /// @throws error (EINVAL: not inside one live allocation of a pool, or a misaligned
  ///         pointer field; EPERM: the pool is not write-rare, or sealed out of the
  ///         writer's reach), out_of_memory; the value is unchanged then.
  void set(const T& value) {
    if (!try_set(value)) throw_if_error(errno);
  }
  /// Like set(), returning false (errno and pmalloc_last_error() set, value unchanged)
  /// instead of throwing.
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

/**
 * @brief A scoped batch of write-rare updates, applied by commit() all or nothing
 *        (wr_memcpy_batch()).
 *
 * Values are copied into the transaction when staged (the sources may change or go away
 * afterwards); targets are not checked until commit(). commit() applies every update in
 * staging order (a later update of the same bytes wins), all or nothing (every target is
 * checked first), with the writer's fixed cost paid once where the back end allows.
 * A transaction destroyed without commit() writes nothing. Targets may lie in several
 * write-rare pools. A transaction is not synchronised: use one per thread (or your own
 * lock); commit() itself is thread-safe like wr_memcpy_batch().
 *
 * @code
 * pmalloc::wr_transaction tx;
 * tx.set(cfg->level, 3).set(cfg->limit, 100).assign(table->count, n);
 * tx.commit();   // both fields and the count change together, or nothing does
 * @endcode
 */
class wr_transaction {
 public:
  /// An empty transaction.
  wr_transaction() = default;
  wr_transaction(const wr_transaction&) = delete;
  wr_transaction& operator=(const wr_transaction&) = delete;
  /// Takes over @p other's staged updates.
  wr_transaction(wr_transaction&&) noexcept = default;
  /// Drops this transaction's staged updates and takes over @p other's.
  wr_transaction& operator=(wr_transaction&&) noexcept = default;
  /// Drops every staged update without writing anything.
  ~wr_transaction() = default;

  /// Stages a copy of @p n bytes from @p src (copied now) to @p dst.
  /// @return *this. @throws std::bad_alloc when the staging buffer cannot grow.
  wr_transaction& copy(void* dst, const void* src, std::size_t n) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n);
    if (n != 0) std::memcpy(bytes_.data() + at, src, n);
    pending_.push_back(Pending{dst, at, n});
    return *this;
  }
  /// Stages setting @p n bytes at @p dst to `(unsigned char)c` (as wr_memset()).
  /// @return *this. @throws std::bad_alloc when the staging buffer cannot grow.
  wr_transaction& fill(void* dst, int c, std::size_t n) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n, static_cast<unsigned char>(c));
    pending_.push_back(Pending{dst, at, n});
    return *this;
  }
  /// Stages `target = value` (T trivially copyable, not const).
  /// @return *this. @throws std::bad_alloc when the staging buffer cannot grow.
  template <class T>
  wr_transaction& assign(T& target, const std::type_identity_t<T>& value) {
    static_assert(std::is_trivially_copyable_v<T>, "wr_transaction::assign: the type must be trivially copyable");
    static_assert(!std::is_const_v<T>, "wr_transaction::assign: the target must not be const");
    return copy(std::addressof(target), std::addressof(value), sizeof(T));
  }
  /// Stages writing @p value into @p field. The value is written as bytes, like
  /// assign(), not published as wr<T>::set() publishes a pointer (release, one store):
  /// set a pointer that readers follow concurrently with wr<T>::set().
  /// @return *this. @throws std::bad_alloc when the staging buffer cannot grow.
  template <class T>
  wr_transaction& set(wr<T>& field, const std::type_identity_t<T>& value) {
    return copy(std::addressof(field.value_), std::addressof(value), sizeof(T));
  }

  /// The number of staged updates.
  std::size_t size() const noexcept { return pending_.size(); }
  /// True when nothing is staged.
  bool empty() const noexcept { return pending_.empty(); }
  /// Drops every staged update.
  void clear() noexcept {
    pending_.clear();
    bytes_.clear();
  }

  /// Applies every staged update (all or nothing) and clears the transaction. An empty
  /// transaction commits without doing anything.
  /// @throws error (EINVAL, EPERM, ... as wr_memcpy_batch()), out_of_memory (the writer
  ///         ran out of memory) or std::bad_alloc (the list of updates could not be
  ///         allocated): nothing is written and the transaction keeps its updates.
  void commit() {
    if (pending_.empty()) return;
    std::vector<wr_batch_op> ops;
    ops.reserve(pending_.size());  // std::bad_alloc from here: nothing written, updates kept
    if (!apply(ops)) throw_if_error(errno);
  }
  /// Like commit(), returning false (errno set) instead of throwing.
  bool try_commit() noexcept {
    if (pending_.empty()) return true;
    std::vector<wr_batch_op> ops;
    try {
      ops.reserve(pending_.size());
    } catch (...) {
      errno = ENOMEM;
      return false;
    }
    return apply(ops);
  }

 private:
  // Writes the staged updates through `ops` (capacity reserved): all or nothing.
  bool apply(std::vector<wr_batch_op>& ops) noexcept {
    for (const Pending& p : pending_) ops.push_back(wr_batch_op{p.dst, bytes_.data() + p.offset, p.n});
    if (!::wr_memcpy_batch(ops.data(), ops.size())) return false;
    clear();
    return true;
  }

  struct Pending {
    void* dst;
    std::size_t offset;
    std::size_t n;
  };
  std::vector<Pending> pending_;
  std::vector<unsigned char> bytes_;
};

/// Another name for wr_transaction.
using wr_batch = wr_transaction;

}  // namespace pmalloc
