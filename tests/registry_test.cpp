// The address registry (src/registry): lookups against a reference model, chunk and leaf
// boundaries, range queries, lock-free readers racing with updates (TSan), protection of
// its storage (every page faults on a plain write; sealed where the kernel can), and the
// mprotect-window fallback.
//
// Registrations here are synthetic: ranges inside address space this test reserves itself
// (so no real pool can overlap them), with made-up Region pointers that the registry
// stores but never dereferences. Each test removes what it added.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "registry/registry.hpp"
#include "registry/store.hpp"
#include "support/probe.hpp"

namespace {

namespace registry = pmalloc::internal::registry;
using pmalloc::internal::Region;

constexpr std::uintptr_t kPage = 4096;
constexpr std::uintptr_t kMiB = std::uintptr_t{1} << 20;

// Page-aligned like real headers (the registry keeps the owner's kind in the low bits).
Region* fake(std::uintptr_t id) { return reinterpret_cast<Region*>(0x100000 + id * 4096); }
std::uintptr_t fake_id(Region* r) { return (reinterpret_cast<std::uintptr_t>(r) - 0x100000) / 4096; }

// Address space reserved for the test's synthetic registrations.
class Reserved {
 public:
  explicit Reserved(std::size_t bytes) : bytes_(bytes) {
    base_ = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base_ == MAP_FAILED) base_ = nullptr;
  }
  ~Reserved() {
    if (base_ != nullptr) munmap(base_, bytes_);
  }
  std::uintptr_t begin() const { return reinterpret_cast<std::uintptr_t>(base_); }
  std::uintptr_t end() const { return begin() + bytes_; }
  bool ok() const { return base_ != nullptr; }

 private:
  void* base_ = nullptr;
  std::size_t bytes_;
};

const void* at(std::uintptr_t a) { return reinterpret_cast<const void*>(a); }

TEST(Registry, UnknownAddressesAreNotFound) {
  int local = 0;
  EXPECT_EQ(registry::find(&local), nullptr);
  EXPECT_EQ(registry::find(nullptr), nullptr);
  EXPECT_EQ(registry::find(at(~std::uintptr_t{0})), nullptr);
  registry::Entry e;
  EXPECT_FALSE(registry::lookup(&local, &e));
}

TEST(Registry, AddFindRemoveAtEveryBoundary) {
  Reserved area(16 * kMiB);
  ASSERT_TRUE(area.ok());
  const std::size_t before = registry::size();
  // Three ranges: two small ones sharing a chunk, one spanning several chunks.
  const std::uintptr_t a = area.begin() + 5 * kPage, b = area.begin() + 9 * kPage;
  const std::uintptr_t c = area.begin() + 3 * kMiB + 7 * kPage;
  ASSERT_EQ(registry::add(at(a), 2 * kPage, fake(1)), 0);
  ASSERT_EQ(registry::add(at(b), 3 * kPage, fake(2)), 0);
  ASSERT_EQ(registry::add(at(c), 5 * kMiB + kPage, fake(3)), 0);
  EXPECT_EQ(registry::size(), before + 3);

  EXPECT_EQ(registry::find(at(a - 1)), nullptr);
  EXPECT_EQ(registry::find(at(a)), fake(1));
  EXPECT_EQ(registry::find(at(a + 2 * kPage - 1)), fake(1));
  EXPECT_EQ(registry::find(at(a + 2 * kPage)), nullptr);
  EXPECT_EQ(registry::find(at(b)), fake(2));
  EXPECT_EQ(registry::find(at(b + 3 * kPage - 1)), fake(2));
  EXPECT_EQ(registry::find(at(b + 3 * kPage)), nullptr);
  EXPECT_EQ(registry::find(at(c - 1)), nullptr);
  for (std::uintptr_t x = c; x < c + 5 * kMiB + kPage; x += kMiB / 2) EXPECT_EQ(registry::find(at(x)), fake(3));
  EXPECT_EQ(registry::find(at(c + 5 * kMiB + kPage - 1)), fake(3));
  EXPECT_EQ(registry::find(at(c + 5 * kMiB + kPage)), nullptr);

  registry::Entry e;
  ASSERT_TRUE(registry::lookup(at(b + 100), &e));
  EXPECT_EQ(e.begin, b);
  EXPECT_EQ(e.end, b + 3 * kPage);
  EXPECT_EQ(e.region, fake(2));

  // Overlaps are refused, and so are empty and out-of-range registrations.
  EXPECT_EQ(registry::add(at(a + kPage), kPage, fake(9)), EEXIST);
  EXPECT_EQ(registry::add(at(a - kPage), 2 * kPage, fake(9)), EEXIST);
  EXPECT_EQ(registry::add(at(c - kPage), 10 * kMiB, fake(9)), EEXIST);
  EXPECT_EQ(registry::add(at(a - kPage), 0, fake(9)), EINVAL);
  EXPECT_EQ(registry::add(at(std::uintptr_t{1} << 48), kPage, fake(9)), EINVAL);
  EXPECT_EQ(registry::add(at((std::uintptr_t{1} << 48) - kPage), 2 * kPage, fake(9)), EINVAL);
  EXPECT_EQ(registry::size(), before + 3);

  // Removing the middle one leaves its neighbours alone; unknown starts are no-ops.
  registry::remove(at(b + kPage));
  EXPECT_EQ(registry::find(at(b)), fake(2));
  registry::remove(at(b));
  EXPECT_EQ(registry::find(at(b)), nullptr);
  EXPECT_EQ(registry::find(at(a)), fake(1));
  EXPECT_EQ(registry::find(at(c)), fake(3));
  registry::remove(at(a));
  registry::remove(at(c));
  EXPECT_EQ(registry::find(at(a)), nullptr);
  EXPECT_EQ(registry::find(at(c + kMiB)), nullptr);
  EXPECT_EQ(registry::size(), before);
}

// Registrations carry their owner's kind: pool code sees only regions, the sealed caches
// only their segments.
TEST(Registry, KindsKeepPoolsAndCacheSegmentsApart) {
  Reserved area(4 * kMiB);
  ASSERT_TRUE(area.ok());
  using pmalloc::internal::Segment;
  auto* seg = reinterpret_cast<Segment*>(std::uintptr_t{0x7000000});
  const std::uintptr_t a = area.begin() + kPage, b = area.begin() + 2 * kMiB;
  ASSERT_EQ(registry::add(at(a), kMiB, fake(41)), 0);
  ASSERT_EQ(registry::add(at(b), kMiB, seg), 0);
  EXPECT_EQ(registry::find(at(a + 5)), fake(41));
  EXPECT_EQ(registry::find_segment(at(a + 5)), nullptr);
  EXPECT_EQ(registry::find(at(b + 5)), nullptr) << "a cache segment is not a pool region";
  EXPECT_EQ(registry::find_segment(at(b + 5)), seg);
  registry::Entry e;
  ASSERT_TRUE(registry::lookup(at(b + kPage), &e));
  EXPECT_EQ(e.kind, registry::Kind::cache_segment);
  EXPECT_EQ(e.segment, seg);
  EXPECT_EQ(e.region, nullptr);
  ASSERT_TRUE(registry::first_intersecting(b - 10, b + 10, &e));
  EXPECT_EQ(e.segment, seg);
  bool segment_walked = false;
  registry::for_each([&](Region* r) { segment_walked |= reinterpret_cast<void*>(r) == static_cast<void*>(seg); });
  EXPECT_FALSE(segment_walked) << "for_each walks pool regions only";
  // Owners are page-aligned headers: the low bits hold the kind.
  EXPECT_EQ(registry::add(at(area.begin() + 3 * kMiB + kPage), kPage, reinterpret_cast<Segment*>(std::uintptr_t{0x7000010})), EINVAL);
  registry::remove(at(a));
  registry::remove(at(b));
  EXPECT_EQ(registry::find_segment(at(b + 5)), nullptr);
}

// Many small registrations in one chunk: the walk from the chunk's cell must pass them all.
TEST(Registry, ManyRegistrationsInOneChunk) {
  Reserved area(4 * kMiB);
  ASSERT_TRUE(area.ok());
  const std::uintptr_t chunk = (area.begin() + kMiB) & ~(kMiB - 1);
  std::vector<std::uintptr_t> starts;
  // Added in a scrambled order so that insertion happens at the front, back and middle.
  for (std::uintptr_t i = 0; i < 128; ++i) starts.push_back(chunk + ((i * 37) % 128) * 2 * kPage);
  for (std::size_t i = 0; i < starts.size(); ++i) ASSERT_EQ(registry::add(at(starts[i]), kPage, fake(1000 + i)), 0);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    EXPECT_EQ(registry::find(at(starts[i] + 17)), fake(1000 + i));
    EXPECT_EQ(registry::find(at(starts[i] + kPage)), nullptr);  // the gap after it
  }
  std::vector<Region*> order;
  registry::for_each([&](Region* r) {
    const auto id = fake_id(r);
    if (id >= 1000 && id < 1128) order.push_back(r);
  });
  ASSERT_EQ(order.size(), starts.size());
  for (std::size_t i = 1; i < order.size(); ++i) {
    const auto prev = starts[fake_id(order[i - 1]) - 1000];
    const auto cur = starts[fake_id(order[i]) - 1000];
    EXPECT_LT(prev, cur) << "for_each is not in address order";
  }
  for (std::size_t i = 0; i < starts.size(); i += 2) registry::remove(at(starts[i]));
  for (std::size_t i = 0; i < starts.size(); ++i) {
    EXPECT_EQ(registry::find(at(starts[i])), i % 2 == 0 ? nullptr : fake(1000 + i));
  }
  for (std::size_t i = 1; i < starts.size(); i += 2) registry::remove(at(starts[i]));
}

// A registration that crosses a 4 GiB boundary lives in two leaves of the table.
TEST(Registry, RangeAcrossLeaves) {
  Reserved area((std::size_t{4} << 30) + 8 * kMiB);
  if (!area.ok()) GTEST_SKIP() << "cannot reserve 4 GiB of address space here";
  const std::uintptr_t boundary = (area.begin() + (std::uintptr_t{4} << 30)) & ~((std::uintptr_t{1} << 32) - 1);
  ASSERT_GT(boundary, area.begin() + 2 * kMiB);
  ASSERT_LT(boundary + 2 * kMiB, area.end());
  ASSERT_EQ(registry::add(at(boundary - kMiB - kPage), 2 * kMiB + 2 * kPage, fake(7)), 0);
  EXPECT_EQ(registry::find(at(boundary - 1)), fake(7));
  EXPECT_EQ(registry::find(at(boundary)), fake(7));
  EXPECT_EQ(registry::find(at(boundary + kMiB + kPage - 1)), fake(7));
  EXPECT_EQ(registry::find(at(boundary + kMiB + kPage)), nullptr);
  EXPECT_EQ(registry::find(at(boundary - kMiB - kPage - 1)), nullptr);
  registry::Entry e;
  EXPECT_TRUE(registry::first_intersecting(boundary + kMiB, boundary + 2 * kMiB, &e));
  registry::remove(at(boundary - kMiB - kPage));
  EXPECT_EQ(registry::find(at(boundary)), nullptr);
}

// Random adds and removes against a std::map model; every query is compared.
TEST(Registry, MatchesModelUnderRandomUpdates) {
  Reserved area(64 * kMiB);
  ASSERT_TRUE(area.ok());
  std::mt19937_64 rng(12345);
  std::map<std::uintptr_t, std::pair<std::uintptr_t, Region*>> model;  // begin -> (end, region)
  const std::uintptr_t pages = (64 * kMiB) / kPage;
  auto model_find = [&](std::uintptr_t x) -> Region* {
    auto it = model.upper_bound(x);
    if (it == model.begin()) return nullptr;
    --it;
    return x < it->second.first ? it->second.second : nullptr;
  };
  auto model_intersects = [&](std::uintptr_t first, std::uintptr_t last) -> const std::pair<const std::uintptr_t, std::pair<std::uintptr_t, Region*>>* {
    for (auto& kv : model) {
      if (kv.second.first > first) return kv.first <= last ? &kv : nullptr;
    }
    return nullptr;
  };
  std::uintptr_t next_id = 5000;
  for (int step = 0; step < 1500; ++step) {
    if (model.empty() || rng() % 3 != 0) {
      const std::uintptr_t len_pages = rng() % 4 == 0 ? 1 + rng() % 2048 : 1 + rng() % 64;
      const std::uintptr_t first = rng() % (pages - len_pages);
      const std::uintptr_t b = area.begin() + first * kPage, e = b + len_pages * kPage;
      bool overlaps = false;
      for (auto& kv : model) overlaps |= kv.first < e && b < kv.second.first;
      const int r = registry::add(at(b), e - b, fake(next_id));
      if (overlaps) {
        ASSERT_EQ(r, EEXIST);
      } else {
        ASSERT_EQ(r, 0);
        model[b] = {e, fake(next_id)};
      }
      ++next_id;
    } else {
      auto it = model.begin();
      std::advance(it, rng() % model.size());
      registry::remove(at(it->first));
      model.erase(it);
    }
    for (int q = 0; q < 20; ++q) {
      const std::uintptr_t x = area.begin() + rng() % (64 * kMiB);
      ASSERT_EQ(registry::find(at(x)), model_find(x)) << "step " << step;
      const std::uintptr_t last = x + rng() % (rng() % 2 == 0 ? 64 * kPage : 48 * kMiB);
      registry::Entry e;
      const auto* expect = model_intersects(x, last);
      ASSERT_EQ(registry::first_intersecting(x, last, &e), expect != nullptr) << "step " << step;
      if (expect != nullptr) {
        ASSERT_EQ(e.begin, expect->first);
      }
    }
    for (auto& kv : model) {
      ASSERT_EQ(registry::find(at(kv.first)), kv.second.second);
      ASSERT_EQ(registry::find(at(kv.second.first - 1)), kv.second.second);
    }
  }
  for (auto& kv : model) registry::remove(at(kv.first));
  for (auto& kv : model) EXPECT_EQ(registry::find(at(kv.first)), nullptr);
}

// Readers never lock and never see a wrong answer while another thread keeps updating
// (run under ThreadSanitizer in CI).
TEST(Registry, LockFreeReadersRaceWithUpdates) {
  Reserved area(32 * kMiB);
  ASSERT_TRUE(area.ok());
  const std::uintptr_t stable = area.begin() + 16 * kMiB + 3 * kPage;
  ASSERT_EQ(registry::add(at(stable), 2 * kMiB, fake(1)), 0);
  std::atomic<bool> stop{false};
  std::atomic<long> wrong{0};
  std::atomic<long> lookups{0};
  auto reader = [&] {
    std::mt19937_64 rng(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    long n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (registry::find(at(stable + rng() % (2 * kMiB))) != fake(1)) wrong.fetch_add(1);
      // Churned ranges: absent, or their own region, never another one.
      const std::uintptr_t slot = rng() % 64;
      Region* r = registry::find(at(area.begin() + slot * 64 * kPage + rng() % (8 * kPage)));
      if (r != nullptr && r != fake(100 + slot)) wrong.fetch_add(1);
      ++n;
    }
    lookups.fetch_add(n);
  };
  std::thread r1(reader), r2(reader);
  std::mt19937_64 rng(7);
  std::vector<bool> present(64, false);
  for (int i = 0; i < 3000; ++i) {
    const std::uintptr_t slot = rng() % 64;
    const std::uintptr_t b = area.begin() + slot * 64 * kPage;
    if (present[slot]) {
      registry::remove(at(b));
    } else {
      ASSERT_EQ(registry::add(at(b), 8 * kPage, fake(100 + slot)), 0);
    }
    present[slot] = !present[slot];
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(lookups.load(), 0);
  for (std::uintptr_t slot = 0; slot < 64; ++slot) {
    if (present[slot]) registry::remove(at(area.begin() + slot * 64 * kPage));
  }
  registry::remove(at(stable));
}

// The registry's own storage: every page read-only (a plain write faults), the root page
// too, sealed where the kernel can, and a single kernel mapping.
TEST(Registry, StorageIsWriteProtected) {
  pmalloc_pool* pool = pmalloc_create_pool("registry-storage", PMALLOC_RO);  // makes sure it exists
  ASSERT_NE(pool, nullptr);
  const registry::Arena* a = registry::arena();
  ASSERT_NE(a, nullptr);
  auto* base = reinterpret_cast<unsigned char*>(const_cast<registry::Arena*>(a));
  const std::uint32_t head = registry::ld(a->header.counts.head);
  ASSERT_NE(head, 0u);
  std::vector<volatile unsigned char*> targets = {
      base,                                                                  // sequence counter
      reinterpret_cast<unsigned char*>(const_cast<registry::Counts*>(&a->header.counts)),
      reinterpret_cast<unsigned char*>(const_cast<registry::Slot*>(&a->slots[head])),  // a live entry
      reinterpret_cast<unsigned char*>(const_cast<std::uint32_t*>(&a->dir[0])),
      reinterpret_cast<unsigned char*>(const_cast<std::uint32_t*>(&a->leaves[0][0])),
      static_cast<unsigned char*>(const_cast<void*>(registry::root_address())),
  };
  EXPECT_EQ(pmalloc_test::count_faulting_writes(targets), static_cast<long>(targets.size()));
  EXPECT_EQ(pmalloc_test::mapping_perms(base), "r--p");
  EXPECT_EQ(pmalloc_test::mapping_perms(registry::root_address()).substr(0, 3), "r--");
  if (registry::kernel_writes() && pmalloc_seal_supported()) {
    EXPECT_NE(mprotect(base, registry::arena_bytes(), PROT_READ | PROT_WRITE), 0) << "registry not sealed";
    EXPECT_EQ(errno, EPERM);
  }
  pmalloc_destroy_pool(pool);
}

// The mprotect-window fallback (no /proc/self/mem): the same behaviour, checked in a fresh
// process (the registry is created when the library loads, in the mode the environment
// asks for).
TEST(RegistryDeathTest, WindowWriterFallback) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  setenv("PMALLOC_REGISTRY_WRITER", "window", 1);
  EXPECT_EXIT(
      {
        pmalloc_pool* pool = pmalloc_create_pool("window", PMALLOC_RO);
        void* p = pool != nullptr ? pmalloc(pool, 64) : nullptr;
        const bool ok = p != nullptr && !registry::kernel_writes() && registry::find(p) != nullptr &&
                        pmalloc_protect_pool(pool) == 0 &&
                        pmalloc_test::mapping_perms(registry::arena()) == "r--p" &&
                        pmalloc_test::mapping_perms(registry::root_address()).substr(0, 3) == "r--";
        pmalloc_destroy_pool(pool);
        std::exit(ok && registry::find(p) == nullptr ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  unsetenv("PMALLOC_REGISTRY_WRITER");
}

}  // namespace
