/**
 * @file pmalloc/check.hpp
 * @brief C++ object checks: typed, checked copies and spans over pmalloc/check.h.
 *
 * Hardened usercopy for C++ code: before bytes are copied to or from a pmalloc object, the
 * range is checked against the allocator's (write-protected) metadata. A range that is
 * pmalloc memory but not inside one live allocation, or a write into write-protected
 * memory, is an attack or a bug in progress: like the kernel's hardened usercopy, these
 * helpers then print one line on stderr and abort (SIGABRT) rather than throw, so that no
 * handler can resume with corrupted or leaked data. Memory that is not pmalloc memory
 * passes unchecked (the helpers can be used on any buffer). A `count * sizeof(T)` that
 * overflows aborts too.
 *
 * - pmalloc::check_object(p, n) returns object_status::none, ok or bad; never aborts;
 * - pmalloc::copy_from(to, from, n): checked memcpy, `from` readable, `to` writable;
 * - pmalloc::copy_from(to, from, count): typed, `count` objects of T (default one);
 * - pmalloc::object_span(p, count): std::span<const T> over [p, p + count), checked;
 * - pmalloc::writable_span(p, count): std::span<T>, checked for writing.
 *
 * Thread safety as pmalloc/check.h: any thread, any time.
 */
#pragma once

#include "pmalloc/cxx20.hpp"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <type_traits>

#include "pmalloc/pmalloc.h"

namespace pmalloc {

/// What a range is (is_pmalloc_object(), whose values these are).
enum class object_status : int {
  none = PMALLOC_OBJECT_NONE,  ///< not pmalloc memory
  ok = PMALLOC_OBJECT_OK,      ///< inside one live allocation
  bad = PMALLOC_OBJECT_BAD,    ///< pmalloc memory, but not inside one live allocation
};

/// Classifies [p, p + n) (is_pmalloc_object()); never aborts, never changes anything.
/// @param p start of the range (nullptr gives none).
/// @param n length in bytes; 0 classifies the single address @p p.
inline object_status check_object(const void* p, std::size_t n) noexcept {
  return static_cast<object_status>(is_pmalloc_object(p, n));
}

namespace detail {

[[noreturn]] inline void size_overflow(std::size_t count, std::size_t size) noexcept {
  std::fprintf(stderr, "pmalloc: usercopy: %zu objects of %zu bytes overflow size_t\n", count, size);
  std::abort();
}

template <class T>
std::size_t bytes_of(std::size_t count) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, sizeof(T), &bytes)) size_overflow(count, sizeof(T));
  return bytes;
}

}  // namespace detail

/// Copies @p n bytes from @p from to @p to (non-overlapping, as memcpy) after checking both
/// ranges with pmalloc_usercopy_check(): aborts (SIGABRT, one line on stderr) if either
/// is pmalloc memory outside one live allocation, or if @p to is write-protected pmalloc
/// memory. n == 0 copies nothing and always returns.
/// @return @p to.
inline void* copy_from(void* to, const void* from, std::size_t n) noexcept {
  pmalloc_usercopy_check(from, n, false);
  pmalloc_usercopy_check(to, n, true);
  if (n != 0) std::memcpy(to, from, n);
  return to;
}

/// Typed form: copies @p count objects of a trivially copyable T, checked as
/// copy_from(void*, const void*, std::size_t) (aborts also when count * sizeof(T)
/// overflows).
/// @return @p to.
template <class T>
  requires std::is_trivially_copyable_v<T>
T* copy_from(T* to, const T* from, std::size_t count = 1) noexcept {
  copy_from(static_cast<void*>(to), static_cast<const void*>(from), detail::bytes_of<T>(count));
  return to;
}

/// A read-only view of @p count objects at @p p, after the usercopy check for reading:
/// aborts when [p, p + count) is pmalloc memory but not inside one live allocation (or
/// count * sizeof(T) overflows).
template <class T>
std::span<const T> object_span(const T* p, std::size_t count) noexcept {
  pmalloc_usercopy_check(p, detail::bytes_of<T>(count), false);
  return std::span<const T>(p, count);
}

/// A writable view of @p count objects at @p p, after the usercopy check for writing:
/// aborts as object_span() and also when the range is write-protected pmalloc memory.
template <class T>
  requires(!std::is_const_v<T>)
std::span<T> writable_span(T* p, std::size_t count) noexcept {
  pmalloc_usercopy_check(p, detail::bytes_of<T>(count), true);
  return std::span<T>(p, count);
}

}  // namespace pmalloc
