// Fault injection (issue 4): the OS layer fails its N-th call (mmap, mprotect, mseal,
// madvise, munmap, /proc/self/mem writes: src/os/fault.hpp), for every N over a realistic
// scenario: create, allocate many (growing by regions), free (rollback), protect, allocate
// after protection, free after protection, protect (and seal) again, destroy.
// For every N: each API call that fails reports an errno and a reason; the pool passes the
// invariant checker after every call; data already protected stays protected and
// unchanged; every allocation that succeeded holds what was written; and after destroy no
// kernel mapping and no registry entry is left behind (sealed pages excepted, which the
// kernel keeps by design). Heap leaks are LeakSanitizer's job (asan tier).
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "os/fault.hpp"
#include "pool/lock.hpp"
#include "pool/pool.hpp"
#include "registry/registry.hpp"
#include "hardening_support.hpp"
#include "support/probe.hpp"
#include "support/small_regions.hpp"

namespace {

// Pools of this file start with a 1 MiB region, so that the scenario grows new regions.
const test_support::SmallFirstRegion small_regions;

namespace fault = pmalloc::os::fault;
using pmalloc::internal::from_handle;

struct Object {
  unsigned char* p;
  std::size_t n;
  unsigned char seed;
  bool protected_now;
};

struct Sweep {
  Sweep(unsigned f, unsigned long call) : flags(f), n(call) {}
  unsigned flags;
  unsigned long n;            // the failing call
  std::vector<std::string> failures;  // "step: errno (reason)"
  std::vector<Object> objects;
  pmalloc_pool* pool = nullptr;
  std::string fired_in;  // the step during which the failure was injected
  std::vector<hardening_test::Range> ranges;  // every reservation the pool had

  void fill(const Object& o) { std::memset(o.p, o.seed, o.n); }
  bool intact(const Object& o) const {
    for (std::size_t i = 0; i < o.n; ++i) {
      if (o.p[i] != o.seed) return false;
    }
    return true;
  }

  // After every call: a failure must carry errno and a reason; the pool must be consistent.
  void after(const char* step, bool failed) {
    if (fired_in.empty() && fault::fired()) fired_in = step;
    if (failed) {
      const int e = errno;
      const std::string reason = pmalloc_last_error();
      EXPECT_NE(e, 0) << step << " failed without errno (N=" << n << ")";
      EXPECT_FALSE(reason.empty()) << step << " failed without a reason (N=" << n << ")";
      failures.push_back(std::string(step) + ": " + std::to_string(e) + " (" + reason + ")");
    }
    if (pool != nullptr) {
      pmalloc::internal::PoolGuard guard(from_handle(pool));
      ASSERT_TRUE(pmalloc::internal::pool_check(from_handle(pool))) << "after " << step << ", N=" << n;
      for (const auto& r : hardening_test::region_ranges(pool)) ranges.push_back(r);
    }
  }

  void check_protected_data() {
    std::vector<volatile unsigned char*> targets;
    for (const Object& o : objects) {
      ASSERT_TRUE(intact(o)) << "data changed, N=" << n;
      if (o.protected_now && targets.size() < 8) targets.push_back(o.p + o.n / 2);
    }
    if (!targets.empty()) {
      EXPECT_EQ(pmalloc_test::count_faulting_writes(targets), static_cast<long>(targets.size()))
          << "protected data became writable, N=" << n;
    }
  }

  void allocate(std::size_t count, std::size_t base) {
    for (std::size_t i = 0; i < count; ++i) {
      errno = 0;
      const std::size_t size = 16 + (i * 2131 + base * 977) % 5000;
      auto* p = static_cast<unsigned char*>(pmalloc(pool, size));
      after("pmalloc", p == nullptr);
      if (p == nullptr) continue;
      Object o{p, size, static_cast<unsigned char>(i + base), false};
      fill(o);
      objects.push_back(o);
    }
  }

  void allocate_one(std::size_t size, unsigned char seed) {
    errno = 0;
    auto* p = static_cast<unsigned char*>(pmalloc(pool, size));
    after("pmalloc (new region)", p == nullptr);
    if (p == nullptr) return;
    Object o{p, size, seed, false};
    fill(o);
    objects.push_back(o);
  }

  void free_some(std::size_t every, bool after_protect) {
    for (std::size_t i = 0; i < objects.size(); i += every) {
      errno = 0;
      const int e = pfree(pool, objects[i].p);
      after(after_protect ? "pfree after protect" : "pfree", e != 0);
      if (e == 0) {
        objects.erase(objects.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        EXPECT_EQ(is_pmalloc_object(objects[i].p, objects[i].n), PMALLOC_OBJECT_OK) << "a failed pfree freed, N=" << n;
      }
    }
  }

  void protect(const char* step) {
    errno = 0;
    const int e = pmalloc_protect_pool(pool);
    after(step, e != 0);
    if (e == 0) {
      for (Object& o : objects) o.protected_now = true;
    }
  }

  // Returns whether the armed failure fired.
  bool run() {
    const std::size_t maps_before = pmalloc_test::count_mappings();
    const std::size_t registered_before = pmalloc::internal::registry::size();
    fault::arm(n, ENOMEM);
    errno = 0;
    pool = pmalloc_create_pool("sweep", flags);
    after("create", pool == nullptr);
    if (pool != nullptr) {
      allocate(40, 0);
      free_some(3, false);
      protect("protect");
      allocate(6, 7);  // fresh pages, then a fresh region
      allocate_one(std::size_t{3} << 19, 9);  // 1.5 MiB: a fresh region after protection
      free_some(9, true);
      protect("protect again");
      // After a failure anywhere, everything protected before it is still protected.
      if (fault::fired()) check_protected_data();
      for (const Object& o : objects) EXPECT_TRUE(intact(o)) << "N=" << n;
      pmalloc_destroy_pool(pool);
      pool = nullptr;
      after("destroy", false);
    }
    const bool fired = fault::fired();
    fault::disarm();
    EXPECT_EQ(pmalloc::internal::registry::size(), registered_before) << "registry entry leaked, N=" << n << " in " << fired_in;
    if ((flags & PMALLOC_SEAL) == 0 || !pmalloc_seal_supported()) {
      std::string left;
      EXPECT_EQ(hardening_test::mappings_within(ranges, &left, /*skip_foreign=*/true), 0u)
          << "mapping leaked, N=" << n << " in " << fired_in << ":\n" << left;
      if (!hardening_test::kSanitized) {  // sanitizers map memory of their own meanwhile
        EXPECT_EQ(pmalloc_test::count_mappings(), maps_before) << "mapping leaked, N=" << n << " in " << fired_in;
      }
    }
    return fired;
  }
};

void sweep(unsigned flags) {
  // The sweep is single-threaded and forks a lot, which ThreadSanitizer makes slow; one
  // variant runs there, all of them in the default and asan+ubsan tiers.
  if (hardening_test::kThreadSanitizer && flags != PMALLOC_RO) {
    GTEST_SKIP() << "single-threaded sweep: one variant under ThreadSanitizer";
  }
  // Warm up once without faults, so that one-time set-up (the writer's descriptor or
  // landing zone, the seal probe) is not what the sweep measures.
  hardening_test::warm_up_writer();
  {
    Sweep s(flags, 0);
    ASSERT_FALSE(s.run());
  }
  unsigned long n = 1;
  std::size_t failed_calls = 0;
  std::size_t absorbed = 0;
  for (;; ++n) {
    Sweep s(flags, n);
    const bool fired = s.run();
    failed_calls += s.failures.size();
    // Failures the API cannot report (destroy returns void) or absorbs by design (a retried
    // registry write): counted, and listed with PMALLOC_TEST_VERBOSE=1.
    if (fired && s.failures.empty()) {
      ++absorbed;
      if (std::getenv("PMALLOC_TEST_VERBOSE") != nullptr) std::printf("  N=%lu absorbed in %s\n", n, s.fired_in.c_str());
    }
    if (testing::Test::HasFatalFailure()) return;
    if (!fired) break;
  }
  testing::Test::RecordProperty("os_calls", static_cast<int>(n - 1));
  std::printf("flags 0x%x: %lu OS calls swept, %zu API calls failed, %zu failures absorbed (destroy, retries)\n",
              flags, n - 1, failed_calls, absorbed);
  EXPECT_GT(n, 20u) << "the scenario made suspiciously few OS calls";
  EXPECT_GT(failed_calls, 0u);
}

TEST(FaultSweep, WriteOncePool) { sweep(PMALLOC_RO); }
TEST(FaultSweep, AutoProtectPool) { sweep(PMALLOC_AUTO); }
TEST(FaultSweep, SealedPool) { sweep(PMALLOC_SEAL); }
TEST(FaultSweep, WriteRarePoolWithoutGuards) { sweep(PMALLOC_WR | PMALLOC_NO_GUARD); }

}  // namespace
