// Where the Public Suffix List structures are allocated: a small allocator interface.
//
// The loader (rules.hpp) builds its rules and its lookup index through an Arena, so the
// very same structure can live in a protected pmalloc pool (the demonstration), on the
// ordinary malloc heap, or one object per sodium_malloc (the benchmark compares them;
// bench/report/). Every allocation is released with its size, so an arena can keep exact
// accounting without a header of its own.
//
// CountingArena decorates another arena and keeps the numbers the demonstration prints:
// live objects and bytes, and what the same objects would cost one per sodium_malloc
// (libsodium's guarded-allocation layout, see sodium_cost()).
#pragma once

#include <pmalloc/pmalloc.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>

namespace psl {

class Arena {
 public:
  virtual ~Arena() = default;
  // n > 0 bytes aligned to at least 16; nullptr (errno set) when out of memory.
  virtual void* allocate(std::size_t n) noexcept = 0;
  // Releases an allocation of n bytes made by allocate().
  virtual void release(void* p, std::size_t n) noexcept = 0;
  // Makes everything allocated so far read-only, where the arena can (0 or an errno).
  virtual int protect() noexcept = 0;
  virtual const char* name() const noexcept = 0;
};

// A pmalloc pool (not owned).
class PoolArena final : public Arena {
 public:
  explicit PoolArena(pmalloc_pool* pool) noexcept : pool_(pool) {}
  void* allocate(std::size_t n) noexcept override { return pmalloc(pool_, n); }
  void release(void* p, std::size_t) noexcept override { (void)pfree(pool_, p); }
  int protect() noexcept override { return pmalloc_protect_pool(pool_); }
  const char* name() const noexcept override { return "pmalloc"; }
  pmalloc_pool* pool() const noexcept { return pool_; }

 private:
  pmalloc_pool* pool_;
};

// The ordinary heap: no protection at all (the baseline).
class MallocArena final : public Arena {
 public:
  void* allocate(std::size_t n) noexcept override { return std::malloc(n); }
  void release(void* p, std::size_t) noexcept override { std::free(p); }
  int protect() noexcept override { return 0; }
  const char* name() const noexcept override { return "malloc"; }
};

// What one sodium_malloc(size) costs (libsodium >= 1.0.x, sodium/utils.c): a read-only
// page holding the size, a guard page, the user data plus a 16-byte canary rounded up to
// whole pages, and a trailing guard page, in one mmap that mprotect splits into four
// kernel mappings. The guards are never touched, so they take address space only.
struct SodiumCost {
  std::size_t resident = 0;       // bytes of pages that become resident
  std::size_t address_space = 0;  // bytes of virtual address space
  std::size_t mappings = 0;       // kernel mappings (VMAs)

  static SodiumCost of(std::size_t size, std::size_t page) noexcept {
    const std::size_t data = (size + 16 + page - 1) / page * page;
    return SodiumCost{page + data, 3 * page + data, 4};
  }
  SodiumCost& operator+=(const SodiumCost& o) noexcept {
    resident += o.resident;
    address_space += o.address_space;
    mappings += o.mappings;
    return *this;
  }
  SodiumCost& operator-=(const SodiumCost& o) noexcept {
    resident -= o.resident;
    address_space -= o.address_space;
    mappings -= o.mappings;
    return *this;
  }
};

// Counts what goes through another arena.
class CountingArena final : public Arena {
 public:
  CountingArena(Arena& inner, std::size_t page) noexcept : inner_(inner), page_(page) {}
  void* allocate(std::size_t n) noexcept override {
    void* p = inner_.allocate(n);
    if (p != nullptr) {
      ++objects_;
      bytes_ += n;
      sodium_ += SodiumCost::of(n, page_);
    }
    return p;
  }
  void release(void* p, std::size_t n) noexcept override {
    inner_.release(p, n);
    --objects_;
    bytes_ -= n;
    sodium_ -= SodiumCost::of(n, page_);
  }
  int protect() noexcept override { return inner_.protect(); }
  const char* name() const noexcept override { return inner_.name(); }

  std::size_t objects() const noexcept { return objects_; }
  std::size_t bytes() const noexcept { return bytes_; }
  const SodiumCost& sodium() const noexcept { return sodium_; }

 private:
  Arena& inner_;
  std::size_t page_;
  std::size_t objects_ = 0;
  std::size_t bytes_ = 0;
  SodiumCost sodium_;
};

}  // namespace psl
