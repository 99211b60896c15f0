// Sealed object caches under fault injection (os/fault.hpp): a realistic scenario (create,
// single and batched creation, segment growth, single and batched frees, destroy) is run
// once for every OS call it makes, with that call failing. Each failure must surface as an
// error of the call that met it and change nothing: every object that was reported
// created is intact, every refused operation left no trace (statistics, invariants), and
// nothing leaks (LeakSanitizer in the asan tier).
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cache/cache_test_support.hpp"
#include "os/fault.hpp"

using namespace cache_test;
namespace fault = pmalloc::os::fault;

namespace {

class CacheFaults : public CacheTest {
 protected:
  void TearDown() override { fault::disarm(); }
};

struct Obj {
  const void* p;
  std::uint64_t value;
  std::size_t size;
};

int value_init(void* staging, const void*, void* ctx) {
  std::memcpy(staging, ctx, sizeof(std::uint64_t));
  return 0;
}

int batch_init(void* staging, const void*, std::size_t i, void* ctx) {
  const std::uint64_t v = *static_cast<std::uint64_t*>(ctx) + i;
  std::memcpy(staging, &v, sizeof v);
  return 0;
}

bool intact(const Obj& o) {
  std::uint64_t v = 0;
  std::memcpy(&v, o.p, sizeof v);
  return v == o.value;
}

// One cache's part of the scenario, run while a fault may be armed; `kept` receives the
// objects that must be alive afterwards.
pmalloc_cache* exercise(std::size_t size, unsigned flags, std::vector<Obj>& kept) {
  pmalloc_cache* c = pmalloc_cache_create("faults", size, 0, flags);
  if (c == nullptr) {
    EXPECT_NE(errno, 0);
    return nullptr;
  }
  std::vector<Obj> live;
  // Small objects: several commit steps. Large ones (256 KiB, 3 per 1 MiB segment):
  // several segments.
  const int singles = size > 4096 ? 4 : reduced_volume() ? 8 : 30;
  for (int i = 0; i < singles; ++i) {
    std::uint64_t v = 1000 + static_cast<std::uint64_t>(i);
    const void* p = pmalloc_cache_alloc_init(c, value_init, &v);
    if (p != nullptr) live.push_back({p, v, size});
  }
  if (size <= 4096) {
    std::vector<const void*> out(reduced_volume() ? 20 : 60, reinterpret_cast<const void*>(1));
    std::uint64_t base = 5000;
    if (pmalloc_cache_alloc_init_many(c, out.size(), out.data(), batch_init, &base) == 0) {
      for (std::size_t i = 0; i < out.size(); ++i) live.push_back({out[i], base + i, size});
    } else {
      for (const void* p : out) EXPECT_EQ(p, nullptr);
    }
  }
  // Single frees of every third object, then one batch of up to 10.
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (i % 3 == 0 && pmalloc_cache_free(c, live[i].p) == 0) continue;
    kept.push_back(live[i]);
  }
  std::vector<const void*> batch;
  for (std::size_t i = 0; i < kept.size() && batch.size() < 10; i += 2) batch.push_back(kept[i].p);
  if (pmalloc_cache_free_many(c, batch.data(), batch.size()) == 0) {
    std::vector<Obj> rest;
    for (std::size_t i = 0; i < kept.size(); ++i) {
      if (i % 2 != 0 || i / 2 >= batch.size()) rest.push_back(kept[i]);
    }
    kept.swap(rest);
  }
  return c;
}

// Runs the scenario (the fault, if armed, fires somewhere in it), then checks.
void scenario(unsigned flags) {
  std::vector<Obj> kept_small, kept_large;
  pmalloc_cache* small = exercise(1000, flags, kept_small);
  // Sealed pages stay mapped for good, so the sealed runs keep to small objects; so do
  // sanitizer builds, which instrument every byte the writer copies (segment growth has
  // its own test in cache_api_test).
  pmalloc_cache* large =
      flags == 0 && !kSanitized ? exercise(std::size_t{256} << 10, flags, kept_large) : nullptr;
  fault::disarm();
  for (auto [c, kept] : {std::pair{small, &kept_small}, std::pair{large, &kept_large}}) {
    if (c == nullptr) continue;
    EXPECT_TRUE(pmalloc::internal::cache_check(desc(c)));
    EXPECT_EQ(stats_of(c).allocations_live, kept->size());
    for (const Obj& o : *kept) EXPECT_TRUE(intact(o));
    // The cache still works.
    std::uint64_t v = 77;
    EXPECT_NE(pmalloc_cache_alloc_init(c, value_init, &v), nullptr) << pmalloc_last_error();
    pmalloc_cache_destroy(c);
  }
}

TEST_F(CacheFaults, EveryFailingOsCallIsReportedAndChangesNothing) {
  // Under the mprotect back end sealing is off (it cannot write sealed pages), so the
  // PMALLOC_SEAL run would repeat the first one; sanitizer builds skip it for time.
  for (unsigned flags : {0u, unsigned{PMALLOC_SEAL}}) {
    if (flags != 0 && (slow_writer() || kSanitized)) continue;
    // Count the calls of one clean run, then fail each of them in turn.
    fault::disarm();
    const unsigned long before = fault::calls();
    scenario(flags);
    const unsigned long total = fault::calls() - before;
    ASSERT_GT(total, 10u);
    for (unsigned long n = 1; n <= total; ++n) {
      fault::arm(n, ENOMEM);
      scenario(flags);
      fault::disarm();
      if (HasFailure()) {
        ADD_FAILURE() << "with OS call " << n << " of " << total << " failing (flags " << flags << ")";
        return;
      }
    }
  }
}

}  // namespace
