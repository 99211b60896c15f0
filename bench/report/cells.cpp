// Shared measurement cells (see cells.hpp).
#include "cells.hpp"

#include <malloc.h>
#include <pmalloc/pmalloc.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace bench {

ChildResult<Footprint> footprint(SchemeKind kind, std::size_t size, std::size_t count, unsigned pool_flags) {
  return in_child<Footprint>([&] {
    Footprint f;
    f.requested = count;
    std::vector<void*> objects(count, nullptr);  // touched before the baseline
    auto scheme = make_scheme(kind, pool_flags);
    const Memory before = memory_now(true);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < count; ++i) {
      void* p = scheme->alloc(size);
      if (p == nullptr) {
        f.error = errno;
        break;
      }
      std::memset(p, static_cast<int>(i), size);
      objects[i] = p;
      ++f.made;
    }
    f.alloc_seconds = seconds_since(t0);
    const auto t1 = Clock::now();
    const int e = scheme->protect(objects.data(), f.made, size, &f.protected_n);
    f.protect_seconds = seconds_since(t1);
    if (e != 0 && f.error == 0) {
      f.error = e;
      f.failed_in_protect = true;
    }
    const Memory after = memory_now(true);
    if (f.made > 0) {
      f.rss_per_object = double(after.rss - before.rss) / double(f.made);
      f.pte_per_object = double(after.pte - before.pte) / double(f.made);
    }
    f.mappings = after.mappings - before.mappings;
    return f;  // the child exits without freeing: the process goes away
  });
}

double predicted_resident(SchemeKind kind, std::size_t size, std::size_t count) {
  const double page = double(page_size());
  const double pages = double((size + page_size() - 1) / page_size());
  switch (kind) {
    case SchemeKind::pmalloc:
    case SchemeKind::malloc: return double(count) * double(size + 16);
    case SchemeKind::sodium: return double(count < 20000 ? count : 20000) * (pages + 1) * page;
    case SchemeKind::mmap: return double(count) * pages * page;
  }
  return 0;
}

double predicted_seconds(SchemeKind kind, std::size_t size, std::size_t count, double fault_seconds) {
  constexpr double kSyscall = 2e-6;  // an mmap/mprotect call on a small range, generously
  const double pages = double((size + page_size() - 1) / page_size());
  const double n = double(kind == SchemeKind::sodium && count > 17000 ? 17000 : count);
  switch (kind) {
    case SchemeKind::pmalloc:
    case SchemeKind::malloc: return n * double(size + 16) / double(page_size()) * fault_seconds + n * 1e-7;
    case SchemeKind::sodium: return n * (pages + 1) * fault_seconds + n * 5 * kSyscall;
    case SchemeKind::mmap: return n * pages * fault_seconds + n * 2 * kSyscall;
  }
  return 0;
}

std::string with_commas(std::size_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

std::string failure_text(SchemeKind kind, const Footprint& f) {
  std::string what;
  if (f.failed_in_protect) {
    what = kind == SchemeKind::sodium ? "sodium_mprotect_readonly" : "protect";
    return "fails after protecting " + with_commas(f.protected_n) + " objects: " + what + " → " +
           errno_name(f.error);
  }
  what = kind == SchemeKind::sodium ? "sodium_malloc" : kind == SchemeKind::mmap ? "mmap" : "allocation";
  return "fails at object " + with_commas(f.made + 1) + ": " + what + " → " + errno_name(f.error);
}

ChildResult<AllocTime> alloc_time(SchemeKind kind, std::size_t size, std::size_t count, bool init, bool protect) {
  return in_child<AllocTime>([&] {
    AllocTime r;
    std::vector<void*> objects(count, nullptr);
    auto scheme = make_scheme(kind);
    // Let the scheme set itself up (a pool's first region) outside the timed loop.
    void* warm = scheme->alloc(size);
    keep(warm);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < count; ++i) {
      void* p = scheme->alloc(size);
      if (p == nullptr) break;
      if (init) std::memset(p, static_cast<int>(i), size);
      objects[i] = p;
      ++r.made;
    }
    if (protect) (void)scheme->protect(objects.data(), r.made, size);
    r.seconds = seconds_since(t0);
    keep(objects.data());
    return r;
  });
}

ChildResult<double> warm_alloc(bool use_pmalloc, std::size_t size, std::size_t count) {
  return in_child<double>([&] {
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // keep freed heap memory resident
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    std::vector<void*> objects(count);
    pmalloc_pool* pool = pmalloc_create_pool("warm", 0);
    for (int pass = 0; pass < 2; ++pass) {
      const auto t0 = Clock::now();
      for (std::size_t i = 0; i < count; ++i) objects[i] = use_pmalloc ? pmalloc(pool, size) : std::malloc(size);
      const double s = seconds_since(t0);
      if (pass == 1) return s;
      for (std::size_t i = count; i-- > 0;) {
        if (use_pmalloc) {
          (void)pfree(pool, objects[i]);
        } else {
          std::free(objects[i]);
        }
      }
    }
    return 0.0;
  });
}

}  // namespace bench
