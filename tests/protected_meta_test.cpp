// Protected metadata (issue 4): after pmalloc_protect_pool(pool) the pool descriptor that
// `pool` points to, every region header and every bitmap of the pool fault on a plain
// write, like the data; later changes the library makes itself (accounting, new regions)
// still work, through its own write path; the address registry is protected too (see
// registry_test.cpp); and a tampered header of a not-yet-protected region cannot widen
// what the checks (and wr_*) accept beyond that region.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "pool/layout.hpp"
#include "pool/lock.hpp"
#include "pool/pool.hpp"
#include "registry/registry.hpp"
#include "wr/writer.hpp"
#include "hardening_support.hpp"
#include "support/probe.hpp"
#include "support/small_regions.hpp"

namespace {

// Pools of this file start with a 1 MiB region, so that a second region takes 1 MiB.
const test_support::SmallFirstRegion small_regions;

using pmalloc::internal::Pool;
using pmalloc::internal::Region;
using pmalloc_test::count_faulting_writes;
using pmalloc_test::mapping_perms;

using Targets = std::vector<volatile unsigned char*>;

Pool* pool_of(pmalloc_pool* p) { return pmalloc::internal::from_handle(p); }

template <class T>
volatile unsigned char* byte_of(T* p, std::size_t offset = 0) {
  return reinterpret_cast<volatile unsigned char*>(const_cast<std::remove_const_t<T>*>(p)) + offset;
}

// Every byte-sized write target that makes up a region's metadata: header fields, the
// first and last word of each bitmap, the tail nibbles.
Targets metadata_targets(const Region* r) {
  const std::size_t words = pmalloc::internal::bitmap::words_for(r->capacity);
  return {byte_of(r),                                  // magic
          byte_of(r, offsetof(Region, pool)),
          byte_of(r, offsetof(Region, next)),
          byte_of(r, offsetof(Region, capacity)),
          byte_of(r, offsetof(Region, cursor)),
          byte_of(r, offsetof(Region, protected_bytes)),
          byte_of(r, offsetof(Region, meta_protected)),
          byte_of(r->used),
          byte_of(r->used + words - 1),
          byte_of(r->start),
          byte_of(r->start + words - 1),
          byte_of(r->tails),
          byte_of(r->tails + (r->capacity + 1) / 2 - 1)};
}

Targets descriptor_targets(const Pool* d) {
  return {byte_of(d),  // magic
          byte_of(d, offsetof(Pool, self)),  byte_of(d, offsetof(Pool, flags)), byte_of(d, offsetof(Pool, name)),
          byte_of(d, offsetof(Pool, first)), byte_of(d, offsetof(Pool, last)),
          byte_of(d, offsetof(Pool, regions)), byte_of(d, sizeof(Pool) - 1)};
}

TEST(ProtectedMetadata, DescriptorHeadersAndBitmapsFaultAfterProtect) {
  pmalloc_pool* pool = pmalloc_create_pool("meta", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  // Enough data for a second region, so that every kind of region is covered.
  std::vector<void*> objects;
  for (int i = 0; i < 1500; ++i) objects.push_back(pmalloc(pool, 1024));
  Pool* d = pool_of(pool);
  ASSERT_GE(d->regions, 2u);
  // Before protection the metadata is ordinary writable memory (the test can tell).
  EXPECT_EQ(count_faulting_writes(descriptor_targets(d)), 0);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);

  Targets all = descriptor_targets(d);
  for (const Region* r = d->first; r != nullptr; r = r->next) {
    const Targets t = metadata_targets(r);
    all.insert(all.end(), t.begin(), t.end());
  }
  EXPECT_EQ(count_faulting_writes(all), static_cast<long>(all.size()));
  // The handle itself is the descriptor: a single write through it faults.
  EXPECT_TRUE(hardening_test::write_faults(pool));
  EXPECT_EQ(mapping_perms(d).substr(0, 3), "r--");
  EXPECT_TRUE(pmalloc::internal::pool_check(d));
  pmalloc_destroy_pool(pool);
}

// Changes the library makes after protection go through its write path: accounting of
// frees, allocations in fresh pages, new regions; the descriptor stays read-only.
TEST(ProtectedMetadata, LaterChangesGoThroughTheWritePath) {
  pmalloc_pool* pool = pmalloc_create_pool("later", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  void* a = pmalloc(pool, 100);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  Pool* d = pool_of(pool);
  const std::size_t regions = d->regions;

  ASSERT_EQ(pfree(pool, a), 0);  // accounting only, through the writer
  struct pmalloc_stats s {};
  ASSERT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.allocations_live, 0u);
  // Grow by a region after protection: the descriptor's region list changes through the
  // writer, and the new region's metadata is writable until the next protect.
  std::vector<void*> more;
  while (d->regions == regions) {
    void* p = pmalloc(pool, 4096);
    ASSERT_NE(p, nullptr);
    more.push_back(p);
  }
  EXPECT_TRUE(pmalloc::internal::pool_check(d));
  EXPECT_TRUE(hardening_test::write_faults(pool)) << "descriptor writable again";
  EXPECT_EQ(count_faulting_writes(metadata_targets(d->first)), static_cast<long>(metadata_targets(d->first).size()));
  const Region* fresh = d->last;
  EXPECT_EQ(count_faulting_writes(metadata_targets(fresh)), 0) << "the new region is open for allocation";
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_EQ(count_faulting_writes(metadata_targets(fresh)), static_cast<long>(metadata_targets(fresh).size()));
  pmalloc_destroy_pool(pool);
}

TEST(ProtectedMetadata, AutoProtectCoversMetadataWithTheFirstFullPage) {
  pmalloc_pool* pool = pmalloc_create_pool("auto-meta", PMALLOC_AUTO);
  ASSERT_NE(pool, nullptr);
  for (int i = 0; i < 200; ++i) ASSERT_NE(pmalloc(pool, 64), nullptr);  // > 2 pages of data
  Pool* d = pool_of(pool);
  EXPECT_TRUE(d->first->meta_protected);
  EXPECT_TRUE(hardening_test::write_faults(pool));
  EXPECT_EQ(count_faulting_writes(metadata_targets(d->first)), static_cast<long>(metadata_targets(d->first).size()));
  pmalloc_destroy_pool(pool);
}

TEST(ProtectedMetadata, SealedMetadataCannotBeUnprotected) {
  if (!pmalloc_seal_supported()) GTEST_SKIP() << "no mseal on this kernel";
  pmalloc_pool* pool = pmalloc_create_pool("sealed-meta", PMALLOC_SEAL);
  ASSERT_NE(pool, nullptr);
  void* data = pmalloc(pool, 64);
  ASSERT_NE(data, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  if (!pmalloc::internal::wr::writes_sealed_pages()) {
    // Documented (docs/hardening.md): where no writer can change sealed pages (the kernel
    // refuses /proc/self/mem writes), only the data is sealed; the metadata stays
    // read-only, unsealed, so that the pool can still be updated after protect.
    EXPECT_TRUE(hardening_test::write_faults(pool));
    EXPECT_EQ(mapping_perms(pool).substr(0, 3), "r--");
    const std::uintptr_t data_page = reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{4095};
    errno = 0;
    EXPECT_EQ(mprotect(reinterpret_cast<void*>(data_page), 4096, PROT_READ | PROT_WRITE), -1);
    EXPECT_EQ(errno, EPERM);
    pmalloc_destroy_pool(pool);
    GTEST_SKIP() << "metadata is not sealed where no writer can change sealed pages (writer '"
                 << pmalloc_wr_backend() << "', /proc/self/mem writes refused)";
  }
  const std::uintptr_t page = reinterpret_cast<std::uintptr_t>(pool) & ~std::uintptr_t{4095};
  EXPECT_EQ(mprotect(reinterpret_cast<void*>(page), 4096, PROT_READ | PROT_WRITE), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_TRUE(hardening_test::write_faults(pool));
  pmalloc_destroy_pool(pool);
}

// What stays writable, by design (docs/hardening.md): the pool lock table. The test pins
// the fact down so that the documentation stays true.
TEST(ProtectedMetadata, OnlyTheLockTableStaysWritable) {
  pmalloc_pool* pool = pmalloc_create_pool("locks", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  const void* lock = &pmalloc::internal::pool_lock(pool_of(pool));
  EXPECT_EQ(mapping_perms(lock).substr(0, 2), "rw");
  EXPECT_EQ(mapping_perms(pool).substr(0, 3), "r--");
  pmalloc_destroy_pool(pool);
}

// A stray or hostile write can change the header of a region whose metadata is not
// protected yet; the checks then still never accept anything outside that region's own
// reservation (which the protected registry records), so wr_* cannot be pointed at
// another pool's protected data through it.
TEST(ProtectedMetadata, TamperedHeaderCannotWidenTheChecks) {
  pmalloc_pool* victim = pmalloc_create_pool("victim", PMALLOC_WR);
  ASSERT_NE(victim, nullptr);
  auto* secret = static_cast<char*>(pmalloc(victim, 64));
  ASSERT_NE(secret, nullptr);
  std::strcpy(secret, "protected");
  ASSERT_EQ(pmalloc_protect_pool(victim), 0);

  pmalloc_pool* open = pmalloc_create_pool("open", PMALLOC_WR);
  ASSERT_NE(open, nullptr);
  auto* mine = static_cast<char*>(pmalloc(open, 64));
  ASSERT_NE(mine, nullptr);
  Region* r = pool_of(open)->first;
  ASSERT_FALSE(r->meta_protected);
  const Region saved = *r;

  // 1. Claim the victim's data as this region's data.
  r->data = reinterpret_cast<std::byte*>(secret) - 16 * 4;
  EXPECT_EQ(is_pmalloc_object(secret, 16), PMALLOC_OBJECT_OK);  // the victim answers for its own data
  EXPECT_EQ(is_pmalloc_object(mine, 16), PMALLOC_OBJECT_BAD);
  *r = saved;
  // 2. A huge capacity and cursor, with every granule one allocation: bounded by the
  //    registration all the same.
  r->capacity = ~std::size_t{0} / 32;
  r->cursor = r->capacity;
  EXPECT_EQ(is_pmalloc_object(mine, 16), PMALLOC_OBJECT_BAD);
  *r = saved;
  // 3. One allocation that claims the rest of the data space: fine inside the region (it
  //    is this pool's own writable memory), refused one byte beyond the reservation.
  const std::size_t capacity = r->capacity_bytes();
  const std::size_t g = static_cast<std::size_t>(reinterpret_cast<std::byte*>(mine) - r->data) / 16;
  r->cursor = r->capacity;
  pmalloc::internal::bitmap::set_range(r->used, g, r->capacity);
  const std::size_t to_end = capacity - g * 16;
  EXPECT_EQ(is_pmalloc_object(mine, to_end), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(mine, to_end + 1), PMALLOC_OBJECT_BAD);
  EXPECT_EQ(is_pmalloc_object(mine, to_end + 1 + (64u << 20)), PMALLOC_OBJECT_BAD);
  pmalloc::internal::bitmap::clear_range(r->used, g + 4, r->capacity);
  *r = saved;
  EXPECT_TRUE(pmalloc::internal::pool_check(pool_of(open)));
  EXPECT_STREQ(secret, "protected");
  EXPECT_EQ(is_pmalloc_object(secret, 64), PMALLOC_OBJECT_OK);
  pmalloc_destroy_pool(open);
  pmalloc_destroy_pool(victim);
}

}  // namespace
