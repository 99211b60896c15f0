// pmalloc C++ object checks: typed, checked copies and spans over pmalloc/check.h.
//
// Hardened usercopy for C++ code: before bytes are copied to or from a pmalloc object, the
// range is checked against the allocator's (write-protected) metadata. A range that is
// pmalloc memory but not inside one live allocation, or a write into write-protected
// memory, is an attack or a bug in progress: like the kernel's hardened usercopy, these
// helpers then print one line on stderr and abort (SIGABRT) rather than throw, so that no
// handler can resume with corrupted or leaked data. Memory that is not pmalloc memory
// passes unchecked (the helpers can be used on any buffer).
//
//   pmalloc::check_object(p, n)       -> object_status::{none, ok, bad}, never aborts
//   pmalloc::copy_from(to, from, n)   checked memcpy: `from` readable, `to` writable
//   pmalloc::copy_from(to, from)      typed: one T (or `count` of them)
//   pmalloc::object_span(p, count)    std::span<const T> over [p, p + count), checked
//   pmalloc::writable_span(p, count)  std::span<T>, checked for writing
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <type_traits>

#include "pmalloc/pmalloc.h"

namespace pmalloc {

enum class object_status : int {
  none = PMALLOC_OBJECT_NONE,  // not pmalloc memory
  ok = PMALLOC_OBJECT_OK,      // inside one live allocation
  bad = PMALLOC_OBJECT_BAD,    // pmalloc memory, but not inside one live allocation
};

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

// Copies n bytes from `from` to `to` (non-overlapping) after checking both ranges with
// pmalloc_usercopy_check: aborts if either is pmalloc memory outside one live allocation,
// or if `to` is write-protected pmalloc memory. Returns `to`.
inline void* copy_from(void* to, const void* from, std::size_t n) noexcept {
  pmalloc_usercopy_check(from, n, false);
  pmalloc_usercopy_check(to, n, true);
  if (n != 0) std::memcpy(to, from, n);
  return to;
}

// Typed form: copies `count` objects of a trivially copyable T.
template <class T>
  requires std::is_trivially_copyable_v<T>
T* copy_from(T* to, const T* from, std::size_t count = 1) noexcept {
  copy_from(static_cast<void*>(to), static_cast<const void*>(from), detail::bytes_of<T>(count));
  return to;
}

// A read-only view of `count` objects at p, after the usercopy check (aborts when p is
// pmalloc memory and [p, p + count) is not inside one live allocation).
template <class T>
std::span<const T> object_span(const T* p, std::size_t count) noexcept {
  pmalloc_usercopy_check(p, detail::bytes_of<T>(count), false);
  return std::span<const T>(p, count);
}

// A writable view of `count` objects at p, after the usercopy check for writing (aborts
// also when the range is write-protected pmalloc memory).
template <class T>
  requires(!std::is_const_v<T>)
std::span<T> writable_span(T* p, std::size_t count) noexcept {
  pmalloc_usercopy_check(p, detail::bytes_of<T>(count), true);
  return std::span<T>(p, count);
}

}  // namespace pmalloc
