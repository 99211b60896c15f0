// The compared schemes (see schemes.hpp). The mmap scheme and this file's mprotect calls
// are the alternatives being measured, not pmalloc code.
#include "schemes.hpp"

#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>

#include "harness.hpp"

#ifdef PMALLOC_HAVE_SODIUM
#include <sodium.h>
#endif

namespace bench {
namespace {

class PmallocScheme final : public Scheme {
 public:
  explicit PmallocScheme(unsigned flags) : flags_(flags) {}
  ~PmallocScheme() override { pmalloc_destroy_pool(pool_); }
  void* alloc(std::size_t size) override {
    if (pool_ == nullptr && (pool_ = pmalloc_create_pool("bench", flags_)) == nullptr) return nullptr;
    return pmalloc(pool_, size);
  }
  int protect(void* const*, std::size_t n, std::size_t, std::size_t* done) override {
    const int e = pool_ == nullptr ? 0 : pmalloc_protect_pool(pool_);
    if (done != nullptr) *done = e == 0 ? n : 0;
    return e;
  }
  void release(void* const*, std::size_t, std::size_t) override {
    pmalloc_destroy_pool(pool_);
    pool_ = nullptr;
  }
  bool protects() const override { return true; }
  std::size_t regions() const override {
    pmalloc_stats s{};
    return pool_ != nullptr && pmalloc_pool_stats(pool_, &s) == 0 ? s.regions : 0;
  }

 private:
  unsigned flags_;
  pmalloc_pool* pool_ = nullptr;
};

class MallocScheme final : public Scheme {
 public:
  void* alloc(std::size_t size) override { return std::malloc(size); }
  int protect(void* const*, std::size_t, std::size_t, std::size_t* done) override {
    if (done != nullptr) *done = 0;  // nothing is ever protected
    return 0;
  }
  void release(void* const* objects, std::size_t n, std::size_t) override {
    for (std::size_t i = 0; i < n; ++i) std::free(objects[i]);
  }
  bool protects() const override { return false; }
};

#ifdef PMALLOC_HAVE_SODIUM
class SodiumScheme final : public Scheme {
 public:
  SodiumScheme() {
    if (sodium_init() < 0) std::abort();
  }
  void* alloc(std::size_t size) override { return sodium_malloc(size); }
  int protect(void* const* objects, std::size_t n, std::size_t, std::size_t* done) override {
    for (std::size_t i = 0; i < n; ++i) {
      if (sodium_mprotect_readonly(objects[i]) != 0) {
        if (done != nullptr) *done = i;
        return errno != 0 ? errno : EIO;
      }
    }
    if (done != nullptr) *done = n;
    return 0;
  }
  void release(void* const* objects, std::size_t n, std::size_t) override {
    for (std::size_t i = 0; i < n; ++i) sodium_free(objects[i]);  // makes the pages writable itself
  }
  bool protects() const override { return true; }
};
#endif

class MmapScheme final : public Scheme {
 public:
  static std::size_t length(std::size_t size) { return (size + page_size() - 1) / page_size() * page_size(); }
  void* alloc(std::size_t size) override {
    void* p = mmap(nullptr, length(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  int protect(void* const* objects, std::size_t n, std::size_t size, std::size_t* done) override {
    for (std::size_t i = 0; i < n; ++i) {
      if (mprotect(objects[i], length(size), PROT_READ) != 0) {
        if (done != nullptr) *done = i;
        return errno;
      }
    }
    if (done != nullptr) *done = n;
    return 0;
  }
  void release(void* const* objects, std::size_t n, std::size_t size) override {
    for (std::size_t i = 0; i < n; ++i) munmap(objects[i], length(size));
  }
  bool protects() const override { return true; }
};

}  // namespace

const char* scheme_name(SchemeKind k) {
  switch (k) {
    case SchemeKind::pmalloc: return "pmalloc";
    case SchemeKind::malloc: return "malloc";
    case SchemeKind::sodium: return "sodium_malloc";
    case SchemeKind::mmap: return "mmap per object";
  }
  return "?";
}

std::vector<SchemeKind> all_schemes() {
#ifdef PMALLOC_HAVE_SODIUM
  return {SchemeKind::pmalloc, SchemeKind::malloc, SchemeKind::sodium, SchemeKind::mmap};
#else
  return {SchemeKind::pmalloc, SchemeKind::malloc, SchemeKind::mmap};
#endif
}

std::unique_ptr<Scheme> make_scheme(SchemeKind k, unsigned pool_flags) {
  switch (k) {
    case SchemeKind::pmalloc: return std::make_unique<PmallocScheme>(pool_flags);
    case SchemeKind::malloc: return std::make_unique<MallocScheme>();
#ifdef PMALLOC_HAVE_SODIUM
    case SchemeKind::sodium: return std::make_unique<SodiumScheme>();
#else
    case SchemeKind::sodium: break;
#endif
    case SchemeKind::mmap: return std::make_unique<MmapScheme>();
  }
  return nullptr;
}

}  // namespace bench
