// Protection tests: protected bytes really fault and never change; allocation after
// protection lands on fresh writable pages; auto-protect; sealing; mapping counts.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "hardening_support.hpp"
#include "support/probe.hpp"

using pmalloc_test::count_faulting_writes;
using pmalloc_test::count_mappings;
using pmalloc_test::mapping_perms;
using pmalloc_test::write_kills_child;

namespace {

const uintptr_t kPage = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));

uintptr_t page_of(const void* p) { return reinterpret_cast<uintptr_t>(p) & ~(kPage - 1); }

struct Filled {
  std::vector<unsigned char*> objects;
  std::vector<size_t> sizes;
};

Filled fill(pmalloc_pool* pool, int count, std::mt19937& rng) {
  Filled f;
  for (int i = 0; i < count; ++i) {
    const size_t size = 1 + rng() % 200;
    auto* p = static_cast<unsigned char*>(pmalloc(pool, size));
    EXPECT_NE(p, nullptr);
    for (size_t b = 0; b < size; ++b) p[b] = static_cast<unsigned char>(i * 31 + b);
    f.objects.push_back(p);
    f.sizes.push_back(size);
  }
  return f;
}

void expect_unchanged(const Filled& f) {
  for (size_t i = 0; i < f.objects.size(); ++i)
    for (size_t b = 0; b < f.sizes[i]; ++b)
      ASSERT_EQ(f.objects[i][b], static_cast<unsigned char>(i * 31 + b)) << "object " << i << " byte " << b;
}

}  // namespace

TEST(Protect, ThousandRandomProtectedBytesFaultAndNoneChanges) {
  std::mt19937 rng(7);
  pmalloc_pool* pool = pmalloc_create_pool("protect", PMALLOC_RO);
  Filled f = fill(pool, 3000, rng);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  std::vector<volatile unsigned char*> targets;
  for (int i = 0; i < 1500; ++i) {
    const size_t o = rng() % f.objects.size();
    targets.push_back(f.objects[o] + rng() % f.sizes[o]);
  }
  EXPECT_EQ(count_faulting_writes(targets), static_cast<long>(targets.size()));
  expect_unchanged(f);
  pmalloc_destroy_pool(pool);
}

TEST(Protect, StrayWriteKillsWithSigsegv) {
  pmalloc_pool* pool = pmalloc_create_pool("death", PMALLOC_RO);
  auto* v = static_cast<int*>(pmalloc(pool, sizeof(int)));
  *v = 1234;
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_EXIT(
      {
        *const_cast<volatile int*>(v) = 5678;
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
  EXPECT_EQ(*v, 1234);
  pmalloc_destroy_pool(pool);
}

TEST(Protect, StatsReportProtection) {
  pmalloc_pool* pool = pmalloc_create_pool("stats", PMALLOC_RO);
  for (int i = 0; i < 500; ++i) ASSERT_NE(pmalloc(pool, 64), nullptr);
  pmalloc_stats s{};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.bytes_protected, 0u);
  EXPECT_EQ(s.is_protected, 0);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.bytes_protected, s.bytes_committed);
  EXPECT_EQ(s.is_protected, 1);
  EXPECT_EQ(s.allocations_live, 500u);
  EXPECT_EQ(s.bytes_live, 500u * 64);
  pmalloc_destroy_pool(pool);
}

TEST(Protect, EmptyPoolAndRepeatedProtectAreFine) {
  pmalloc_pool* pool = pmalloc_create_pool("empty", PMALLOC_RO);
  EXPECT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_EQ(pmalloc_protect_pool(pool), 0);
  void* p = pmalloc(pool, 10);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_TRUE(write_kills_child(p));
  pmalloc_destroy_pool(pool);
}

TEST(Protect, AllocationAfterProtectIsWritableAndOnAFreshPage) {
  pmalloc_pool* pool = pmalloc_create_pool("after", PMALLOC_RO);
  std::vector<void*> before;
  for (int i = 0; i < 100; ++i) before.push_back(pmalloc(pool, 24));
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  std::vector<uintptr_t> protected_pages;
  for (void* p : before) protected_pages.push_back(page_of(p));

  auto* fresh = static_cast<unsigned char*>(pmalloc(pool, 24));
  ASSERT_NE(fresh, nullptr);
  std::memset(fresh, 0x5A, 24);  // writable
  EXPECT_EQ(fresh[23], 0x5A);
  for (uintptr_t page : protected_pages) EXPECT_NE(page_of(fresh), page);
  EXPECT_EQ(mapping_perms(fresh).substr(0, 3), "rw-");

  // Memory freed after protection is never handed out again: it is read-only.
  ASSERT_EQ(pfree(pool, before[5]), 0);
  for (int i = 0; i < 200; ++i) {
    void* p = pmalloc(pool, 24);
    for (uintptr_t page : protected_pages) ASSERT_NE(page_of(p), page);
  }
  // A later protect covers the new allocations too.
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_TRUE(write_kills_child(fresh));
  EXPECT_EQ(fresh[0], 0x5A);
  pmalloc_destroy_pool(pool);
}

TEST(Protect, FreeAfterProtectOnlyUpdatesAccounting) {
  pmalloc_pool* pool = pmalloc_create_pool("acct", PMALLOC_RO);
  auto* p = static_cast<char*>(pmalloc(pool, 100));
  std::strcpy(p, "still here");
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  ASSERT_EQ(pfree(pool, p), 0);
  pmalloc_stats s{};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.bytes_live, 0u);
  EXPECT_EQ(s.allocations_live, 0u);
  EXPECT_STREQ(p, "still here");
  EXPECT_TRUE(write_kills_child(p));
  EXPECT_EQ(pfree(pool, p), EINVAL);  // double free still detected
  pmalloc_destroy_pool(pool);
}

TEST(Protect, DescriptorAndMetadataAreProtectedWithTheData) {
  pmalloc_pool* pool = pmalloc_create_pool("meta", PMALLOC_RO);
  ASSERT_NE(pmalloc(pool, 64), nullptr);
  EXPECT_EQ(mapping_perms(pool).substr(0, 3), "rw-");
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_EQ(mapping_perms(pool).substr(0, 3), "r--");
  EXPECT_TRUE(write_kills_child(pool));
  // The library still updates its own metadata through its write path.
  void* p = pmalloc(pool, 64);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pfree(pool, p), 0);
  pmalloc_destroy_pool(pool);
}

TEST(Protect, TenThousandObjectsNeedOnlyAHandfulOfMappings) {
  const size_t before = count_mappings();
  pmalloc_pool* pool = pmalloc_create_pool("maps", PMALLOC_RO);
  for (int i = 0; i < 10000; ++i) ASSERT_NE(pmalloc(pool, 40), nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  const size_t after = count_mappings();
  // The pool's own reservations (guards, metadata, data, uncommitted tail) are exact in
  // every build; the process-wide count only where no sanitizer maps memory meanwhile.
  const std::vector<hardening_test::Range> ranges = hardening_test::region_ranges(pool);
  EXPECT_LE(hardening_test::mappings_within(ranges), 6u) << ranges.size() << " regions";
  if (!hardening_test::kSanitized) {
    EXPECT_LE(after - before, 6u) << "mappings before " << before << ", after " << after;
  }
  pmalloc_destroy_pool(pool);
  EXPECT_EQ(hardening_test::mappings_within(ranges, nullptr, /*skip_foreign=*/true), 0u);
  if (!hardening_test::kSanitized) {
    EXPECT_LE(count_mappings(), before + 1);
  }
}

TEST(AutoProtect, FullPagesAreProtectedAsAllocationMovesOn) {
  pmalloc_pool* pool = pmalloc_create_pool("auto", PMALLOC_AUTO);
  auto* first = static_cast<unsigned char*>(pmalloc(pool, 64));
  first[0] = 42;
  // Allocate until we are well past the first page.
  unsigned char* last = nullptr;
  while (page_of(last = static_cast<unsigned char*>(pmalloc(pool, 64))) < page_of(first) + 2 * kPage) {
    ASSERT_NE(last, nullptr);
    last[0] = 1;
  }
  EXPECT_TRUE(write_kills_child(first));
  EXPECT_EQ(first[0], 42);
  // The page allocation is still moving through stays writable.
  last[1] = 2;
  EXPECT_EQ(last[1], 2);
  pmalloc_stats s{};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_GE(s.bytes_protected, 2 * kPage);
  pmalloc_destroy_pool(pool);
}

TEST(Seal, SealedPoolCannotBeMadeWritableAgain) {
  if (!pmalloc_seal_supported()) GTEST_SKIP() << "this kernel has no mseal(); sealing is not tested";
  pmalloc_pool* pool = pmalloc_create_pool("sealed", PMALLOC_SEAL);
  auto* p = static_cast<char*>(pmalloc(pool, 4000));
  std::strcpy(p, "sealed for good");
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  pmalloc_stats s{};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.sealed, 1);
  void* page = reinterpret_cast<void*>(page_of(p));
  errno = 0;
  EXPECT_EQ(mprotect(page, kPage, PROT_READ | PROT_WRITE), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(munmap(page, kPage), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_TRUE(write_kills_child(p));
  EXPECT_STREQ(p, "sealed for good");
  // Allocation after sealing still works, on fresh pages, and can be sealed in turn.
  auto* q = static_cast<char*>(pmalloc(pool, 16));
  ASSERT_NE(q, nullptr);
  q[0] = 'q';
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_TRUE(write_kills_child(q));
  pmalloc_destroy_pool(pool);
  // Destroy released what it could; the sealed pages stay readable, unchanged.
  EXPECT_STREQ(p, "sealed for good");
  errno = 0;
  EXPECT_EQ(pmalloc(pool, 8), nullptr);  // the handle is dead
  EXPECT_EQ(errno, EINVAL);
}

TEST(Seal, WithoutSealFlagPagesCanBeUnmappedByDestroy) {
  pmalloc_pool* pool = pmalloc_create_pool("unsealed", PMALLOC_RO);
  ASSERT_NE(pmalloc(pool, 64), nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  pmalloc_stats s{};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.sealed, 0);
  // The pool's own reservations are gone, every page of them (a process-wide count would
  // also see what a sanitizer maps meanwhile).
  const std::vector<hardening_test::Range> ranges = hardening_test::region_ranges(pool);
  ASSERT_GT(hardening_test::mappings_within(ranges), 0u);
  pmalloc_destroy_pool(pool);
  EXPECT_EQ(hardening_test::mappings_within(ranges, nullptr, /*skip_foreign=*/true), 0u);
}

TEST(Guard, GuardPagesSurroundRegionsUnlessDisabled) {
  pmalloc_pool* pool = pmalloc_create_pool("guard", PMALLOC_RO);
  pmalloc_stats with{}, without{};
  ASSERT_EQ(pmalloc_pool_stats(pool, &with), 0);
  pmalloc_pool* bare = pmalloc_create_pool("bare", PMALLOC_NO_GUARD);
  ASSERT_EQ(pmalloc_pool_stats(bare, &without), 0);
  EXPECT_EQ(with.bytes_reserved - without.bytes_reserved, 2 * kPage);
  // The page before the metadata is inaccessible (a private mapping, or a shared one:
  // memfd-backed regions of the alias writer).
  const uintptr_t guard = page_of(pool) - kPage;
  EXPECT_EQ(mapping_perms(reinterpret_cast<void*>(guard)).substr(0, 3), "---");
  pmalloc_destroy_pool(pool);
  pmalloc_destroy_pool(bare);
}
