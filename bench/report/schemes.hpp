// The four ways of keeping small objects that the report compares, behind one interface:
//
//   pmalloc   objects packed in a pool; protect = pmalloc_protect_pool (one mprotect per
//             region);
//   malloc    glibc malloc; no protection at all (the baseline for memory and speed);
//   sodium    one sodium_malloc per object; protect = sodium_mprotect_readonly per object
//             (libsodium's guarded allocations; absent when libsodium is not built in);
//   mmap      the naive scheme: one anonymous mmap per object (rounded up to a page),
//             protect = one mprotect per object.
//
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace bench {

enum class SchemeKind { pmalloc, malloc, sodium, mmap };

class Scheme {
 public:
  virtual ~Scheme() = default;
  // nullptr (errno set) on failure. The caller keeps the pointers (in memory it owns and
  // has touched before measuring, so bookkeeping does not show up as footprint).
  virtual void* alloc(std::size_t size) = 0;
  // Write-protects the n objects of `size` bytes; 0 or an errno value. *done (when not
  // null) receives how many objects are protected now.
  virtual int protect(void* const* objects, std::size_t n, std::size_t size, std::size_t* done = nullptr) = 0;
  // Frees them all (a pool is destroyed; the next alloc starts a new one).
  virtual void release(void* const* objects, std::size_t n, std::size_t size) = 0;
  virtual bool protects() const = 0;
  // pmalloc: regions of the pool now (0 for the others).
  virtual std::size_t regions() const { return 0; }
};

const char* scheme_name(SchemeKind k);
// The kinds compiled in, in report order (sodium only with libsodium).
std::vector<SchemeKind> all_schemes();
// pool_flags is used by the pmalloc scheme only (e.g. PMALLOC_SEAL).
std::unique_ptr<Scheme> make_scheme(SchemeKind k, unsigned pool_flags = 0);

}  // namespace bench
