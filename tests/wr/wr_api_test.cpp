// Write-rare C API: updates land, every refusal (EINVAL / EPERM) changes nothing, batches
// are all or nothing (also when the writer fails half way: OS fault injection), sealed
// pools. Registered once per writer back end (tests/wr/CMakeLists.txt).
#include <errno.h>
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "os/fault.hpp"
#include "os/os.hpp"
#include "wr_support.hpp"

namespace {

struct Record {
  long counter;
  char name[40];
  void* next;
  double ratio;
};

class WrApi : public ::testing::Test {
 protected:
  void SetUp() override {
    WR_REQUIRE_BACKEND();
    pool_ = pmalloc_create_pool("wr-api", PMALLOC_WR);
    ASSERT_NE(pool_, nullptr);
  }
  void TearDown() override { pmalloc_destroy_pool(pool_); }

  Record* make_record(long counter) {
    auto* r = static_cast<Record*>(pzalloc(pool_, sizeof(Record)));
    EXPECT_NE(r, nullptr);
    if (r != nullptr) {
      r->counter = counter;
      std::strcpy(r->name, "initial");
    }
    return r;
  }

  // Expects a refusal with `error` that left `bytes` unchanged.
  template <class F>
  void expect_refused(int error, const void* watched, std::size_t n, F call) {
    std::vector<unsigned char> before(static_cast<const unsigned char*>(watched),
                                      static_cast<const unsigned char*>(watched) + n);
    errno = 0;
    EXPECT_FALSE(call());
    EXPECT_EQ(errno, error) << pmalloc_last_error();
    EXPECT_STRNE(pmalloc_last_error(), "");
    EXPECT_EQ(std::memcmp(before.data(), watched, n), 0) << "a refused call changed bytes";
  }

  pmalloc_pool* pool_ = nullptr;
};

TEST_F(WrApi, BackendIsOneOfTheFourWriters) {
  const std::string b = pmalloc_wr_backend();
  EXPECT_TRUE(b == "pkey" || b == "procmem" || b == "alias" || b == "mprotect") << b;
  if (!wr_test::requested().empty()) {
    EXPECT_EQ(b, wr_test::requested());
  }
}

TEST_F(WrApi, MemcpyMemsetAssignAfterProtect) {
  Record* r = make_record(1);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  ASSERT_TRUE(wr_test::write_kills_child(&r->counter)) << "the pool is not write-protected";

  const long seven = 7;
  EXPECT_TRUE(wr_memcpy(&r->counter, &seven, sizeof seven)) << pmalloc_last_error();
  EXPECT_EQ(r->counter, 7);
  EXPECT_TRUE(wr_memset(r->name, 'x', 5));
  EXPECT_EQ(std::string(r->name, 8), std::string("xxxxxal\0", 8));
  EXPECT_TRUE(wr_assign(r->ratio, 2.5));
  EXPECT_EQ(r->ratio, 2.5);
  EXPECT_TRUE(wr_assign(r->counter, 42));
  EXPECT_EQ(r->counter, 42);
  int target = 5;
  EXPECT_TRUE(wr_rcu_assign_pointer(r->next, static_cast<void*>(&target)));
  EXPECT_EQ(wr_rcu_dereference(r->next), &target);
  // Still protected afterwards, for every writer.
  EXPECT_TRUE(wr_test::write_kills_child(&r->counter));
  EXPECT_TRUE(wr_test::write_kills_child(r->name));
  EXPECT_EQ(r->counter, 42);
}

TEST_F(WrApi, WorksBeforeProtectionInPlace) {
  Record* r = make_record(1);
  EXPECT_TRUE(wr_assign(r->counter, 2));
  EXPECT_EQ(r->counter, 2);
  EXPECT_TRUE(wr_memset(r->name, 0, sizeof r->name));
  EXPECT_EQ(r->name[0], '\0');
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  EXPECT_TRUE(wr_assign(r->counter, 3));
  EXPECT_EQ(r->counter, 3);
}

TEST_F(WrApi, AllocationAfterProtectIsWritableThenProtectedAgain) {
  Record* a = make_record(1);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  Record* b = make_record(2);  // fresh page, writable until the next protect
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(wr_assign(b->counter, 20));
  EXPECT_TRUE(wr_assign(a->counter, 10));
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  EXPECT_TRUE(wr_test::write_kills_child(&b->counter));
  EXPECT_TRUE(wr_assign(b->counter, 21));
  EXPECT_EQ(a->counter, 10);
  EXPECT_EQ(b->counter, 21);
}

TEST_F(WrApi, LargeCopySpanningPages) {
  const std::size_t n = 3 * pmalloc::os::page_size() + 100;
  auto* big = static_cast<unsigned char*>(pzalloc(pool_, n));
  ASSERT_NE(big, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  std::vector<unsigned char> src(n);
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<unsigned char>(i * 7 + 1);
  EXPECT_TRUE(wr_memcpy(big, src.data(), n));
  EXPECT_EQ(std::memcmp(big, src.data(), n), 0);
  EXPECT_TRUE(wr_memset(big + 10, 0xEE, n - 20));
  for (std::size_t i = 10; i < n - 10; ++i) ASSERT_EQ(big[i], 0xEE) << i;
  EXPECT_EQ(big[9], src[9]);
  EXPECT_EQ(big[n - 1], src[n - 1]);
}

TEST_F(WrApi, OverlappingCopyHasMemmoveSemantics) {
  auto* s = static_cast<char*>(pmalloc(pool_, 32));
  std::strcpy(s, "abcdefghij");
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  EXPECT_TRUE(wr_memcpy(s + 2, s, 8));
  EXPECT_STREQ(s, "ababcdefgh");
}

TEST_F(WrApi, ZeroLengthChecksTheTargetAndWritesNothing) {
  Record* r = make_record(1);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  EXPECT_TRUE(wr_memcpy(&r->counter, nullptr, 0));
  EXPECT_TRUE(wr_memset(&r->counter, 1, 0));
  int local = 0;
  expect_refused(EINVAL, &local, sizeof local, [&] { return wr_memcpy(&local, &local, 0); });
}

TEST_F(WrApi, ZeroLengthOnePastTheEndIsTheNextByte) {
  // n == 0 names the byte at dst: one past the end of an allocation is refused, also in
  // the padding of its last granule, and accepted where the next allocation starts.
  auto* odd = static_cast<unsigned char*>(pmalloc(pool_, 2));
  auto* full = static_cast<unsigned char*>(pmalloc(pool_, 16));
  auto* next = static_cast<unsigned char*>(pmalloc(pool_, 16));
  ASSERT_TRUE(odd != nullptr && full != nullptr && next != nullptr);
  ASSERT_EQ(full + 16, next);  // packed: the test relies on the neighbour
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  expect_refused(EINVAL, odd, 2, [&] { return wr_memcpy(odd + 2, nullptr, 0); });
  expect_refused(EINVAL, odd, 2, [&] { return wr_memset(odd + 2, 0, 0); });
  EXPECT_TRUE(wr_memcpy(full + 16, nullptr, 0)) << pmalloc_last_error();
  expect_refused(EINVAL, next, 16, [&] { return wr_memset(next + 16, 0, 0); });  // free space after it
  EXPECT_EQ(is_pmalloc_object(odd + 2, 0), PMALLOC_OBJECT_BAD);
  EXPECT_EQ(is_pmalloc_object(full + 16, 0), PMALLOC_OBJECT_OK);
}

TEST_F(WrApi, RefusesTargetsOutsideOneLiveAllocation) {
  Record* r = make_record(1);
  Record* s = make_record(2);
  auto* freed = static_cast<char*>(pmalloc(pool_, 64));
  auto* keep = static_cast<char*>(pmalloc(pool_, 64));  // keeps `freed` below the cursor
  ASSERT_NE(keep, nullptr);
  ASSERT_EQ(pfree(pool_, freed), 0);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  const char junk[64] = {1, 2, 3};

  long stack_value = 5;
  expect_refused(EINVAL, &stack_value, sizeof stack_value,
                 [&] { return wr_memcpy(&stack_value, junk, sizeof stack_value); });
  auto* heap = static_cast<long*>(std::malloc(sizeof(long)));
  *heap = 9;
  expect_refused(EINVAL, heap, sizeof *heap, [&] { return wr_memcpy(heap, junk, sizeof *heap); });
  expect_refused(EINVAL, heap, sizeof *heap, [&] { return wr_memset(heap, 0, sizeof *heap); });
  std::free(heap);
  // Free space inside the pool.
  expect_refused(EINVAL, r, sizeof *r, [&] { return wr_memcpy(freed, junk, 8); });
  // Across two allocations, and past the end of one.
  expect_refused(EINVAL, r, sizeof *r, [&] { return wr_memcpy(&r->ratio, junk, 32); });
  expect_refused(EINVAL, s, sizeof *s, [&] { return wr_memset(r, 0, sizeof *r + 16); });
  expect_refused(EINVAL, keep, 64, [&] { return wr_memcpy(keep + 64, junk, 1); });  // past the last one
  // Pool metadata (the descriptor the handle points to).
  expect_refused(EINVAL, pool_, 16, [&] { return wr_memset(pool_, 0, 16); });
  // NULL arguments.
  expect_refused(EINVAL, r, sizeof *r, [&] { return wr_memcpy(nullptr, junk, 8); });
  expect_refused(EINVAL, r, sizeof *r, [&] { return wr_memcpy(&r->counter, nullptr, 8); });
  expect_refused(EINVAL, r, sizeof *r, [&] { return wr_memset(nullptr, 0, 8); });
  // A misaligned pointer slot could be torn.
  expect_refused(EINVAL, r, sizeof *r, [&] {
    return wr_publish_pointer(reinterpret_cast<char*>(&r->next) + 1, nullptr);
  });
  expect_refused(EINVAL, &stack_value, sizeof stack_value,
                 [&] { return wr_publish_pointer(&stack_value, nullptr); });
}

TEST_F(WrApi, RefusesWriteOncePoolsWithEperm) {
  pmalloc_pool* ro = pmalloc_create_pool("wr-api-ro", PMALLOC_RO);
  ASSERT_NE(ro, nullptr);
  auto* v = static_cast<long*>(pmalloc(ro, sizeof(long)));
  *v = 1;
  const long two = 2;
  // Before and after protection: wr_* is only for write-rare pools.
  expect_refused(EPERM, v, sizeof *v, [&] { return wr_memcpy(v, &two, sizeof two); });
  ASSERT_EQ(pmalloc_protect_pool(ro), 0);
  expect_refused(EPERM, v, sizeof *v, [&] { return wr_memcpy(v, &two, sizeof two); });
  expect_refused(EPERM, v, sizeof *v, [&] { return wr_memset(v, 0, sizeof *v); });
  expect_refused(EPERM, v, sizeof *v, [&] { return wr_assign(*v, 3L); });
  expect_refused(EPERM, v, sizeof *v, [&] { return wr_publish_pointer(v, nullptr); });
  EXPECT_EQ(pmalloc_make_pool_ro(ro), 0) << "a write-once pool stays as it is";
  pmalloc_destroy_pool(ro);
}

TEST_F(WrApi, MakePoolReadOnlyIsOneWay) {
  Record* r = make_record(1);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  EXPECT_TRUE(wr_assign(r->counter, 2));
  ASSERT_EQ(pmalloc_make_pool_ro(pool_), 0);
  expect_refused(EPERM, r, sizeof *r, [&] { return wr_assign(r->counter, 3L); });
  EXPECT_NE(std::string(pmalloc_last_error()).find("read-only"), std::string::npos) << pmalloc_last_error();
  EXPECT_EQ(pmalloc_make_pool_ro(pool_), 0);
  struct pmalloc_stats st {};
  ASSERT_EQ(pmalloc_pool_stats(pool_, &st), 0);
  EXPECT_EQ(st.flags & PMALLOC_WR, 0u);
  // Also before protection, and for allocations made afterwards.
  Record* later = make_record(4);
  expect_refused(EPERM, later, sizeof *later, [&] { return wr_assign(later->counter, 5L); });
  EXPECT_TRUE(wr_test::write_kills_child(&r->counter));
  EXPECT_EQ(r->counter, 2);
}

TEST_F(WrApi, MakePoolReadOnlyRefusesBadPools) {
  errno = 0;
  EXPECT_EQ(pmalloc_make_pool_ro(nullptr), EINVAL);
  EXPECT_EQ(errno, EINVAL);
  long not_a_pool[8] = {};
  EXPECT_EQ(pmalloc_make_pool_ro(reinterpret_cast<pmalloc_pool*>(not_a_pool)), EINVAL);
}

TEST_F(WrApi, DestroyedPoolIsNotATarget) {
  pmalloc_pool* p = pmalloc_create_pool("gone", PMALLOC_WR);
  ASSERT_NE(p, nullptr);
  void* v = pmalloc(p, 32);
  ASSERT_NE(v, nullptr);
  pmalloc_destroy_pool(p);
  const long one = 1;
  errno = 0;
  EXPECT_FALSE(wr_memcpy(v, &one, sizeof one));
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(WrApi, BatchAppliesEverythingAcrossPools) {
  pmalloc_pool* other = pmalloc_create_pool("wr-api-2", PMALLOC_WR);
  ASSERT_NE(other, nullptr);
  std::vector<long*> fields;
  for (int i = 0; i < 48; ++i) fields.push_back(static_cast<long*>(pzalloc(i % 3 == 0 ? other : pool_, 40)));
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  ASSERT_EQ(pmalloc_protect_pool(other), 0);
  std::vector<long> values(fields.size());
  std::vector<wr_batch_op> ops;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    values[i] = static_cast<long>(i * 11 + 3);
    ops.push_back(wr_batch_op{fields[i], &values[i], sizeof(long)});
  }
  // The same target twice: the later update wins.
  const long last = -1;
  ops.push_back(wr_batch_op{fields[5], &last, sizeof last});
  EXPECT_TRUE(wr_memcpy_batch(ops.data(), ops.size())) << pmalloc_last_error();
  for (std::size_t i = 0; i < fields.size(); ++i) EXPECT_EQ(*fields[i], i == 5 ? -1 : values[i]) << i;
  EXPECT_TRUE(wr_memcpy_batch(nullptr, 0));
  EXPECT_TRUE(wr_test::write_kills_child(fields[0]));
  EXPECT_TRUE(wr_test::write_kills_child(fields[1]));
  pmalloc_destroy_pool(other);
}

TEST_F(WrApi, BatchWithOneBadTargetChangesNothing) {
  pmalloc_pool* ro = pmalloc_create_pool("wr-api-ro", PMALLOC_RO);
  std::vector<long*> fields;
  for (int i = 0; i < 8; ++i) fields.push_back(static_cast<long*>(pzalloc(pool_, sizeof(long))));
  auto* foreign = static_cast<long*>(pzalloc(ro, sizeof(long)));
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  ASSERT_EQ(pmalloc_protect_pool(ro), 0);
  const long v = 77;
  long stack = 0;
  std::vector<wr_batch_op> ops;
  for (long* f : fields) ops.push_back(wr_batch_op{f, &v, sizeof v});
  auto check_nothing_changed = [&] {
    for (long* f : fields) EXPECT_EQ(*f, 0);
  };
  ops.push_back(wr_batch_op{&stack, &v, sizeof v});
  errno = 0;
  EXPECT_FALSE(wr_memcpy_batch(ops.data(), ops.size()));
  EXPECT_EQ(errno, EINVAL);
  check_nothing_changed();
  ops.back() = wr_batch_op{foreign, &v, sizeof v};
  EXPECT_FALSE(wr_memcpy_batch(ops.data(), ops.size()));
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(*foreign, 0);
  check_nothing_changed();
  ops.back() = wr_batch_op{fields[0], nullptr, 8};
  EXPECT_FALSE(wr_memcpy_batch(ops.data(), ops.size()));
  EXPECT_EQ(errno, EINVAL);
  ops.back() = wr_batch_op{nullptr, &v, 8};
  EXPECT_FALSE(wr_memcpy_batch(ops.data(), ops.size()));
  EXPECT_EQ(errno, EINVAL);
  EXPECT_FALSE(wr_memcpy_batch(nullptr, 3));
  EXPECT_EQ(errno, EINVAL);
  check_nothing_changed();
  pmalloc_destroy_pool(ro);
}

// The writer fails at every possible OS call of a batch in turn (fault injection): each
// time the batch reports the error and no target changed; eventually it succeeds.
TEST_F(WrApi, BatchIsAllOrNothingWhenTheWriterFails) {
  pmalloc_pool* other = pmalloc_create_pool("wr-api-2", PMALLOC_WR);
  ASSERT_NE(other, nullptr);
  // Targets in two regions (two pools), far apart, so no back end can merge them.
  std::vector<long*> fields;
  for (int i = 0; i < 6; ++i) {
    fields.push_back(static_cast<long*>(pzalloc(i % 2 == 0 ? pool_ : other, 8192)));
  }
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  ASSERT_EQ(pmalloc_protect_pool(other), 0);
  const long v = 99;
  std::vector<wr_batch_op> ops;
  for (long* f : fields) ops.push_back(wr_batch_op{f, &v, sizeof v});
  bool succeeded = false;
  for (unsigned long n = 1; n < 64 && !succeeded; ++n) {
    pmalloc::os::fault::arm(n, ENOMEM);
    const bool ok = wr_memcpy_batch(ops.data(), ops.size());
    const bool fired = pmalloc::os::fault::fired();
    pmalloc::os::fault::disarm();
    if (!fired) {
      EXPECT_TRUE(ok) << pmalloc_last_error();
      succeeded = true;
      break;
    }
    // The writer may recover from a failed call (another address for the alias view):
    // then everything is applied; otherwise nothing is.
    for (long* f : fields) ASSERT_EQ(*f, ok ? 99 : 0) << "OS call " << n << " failed; the batch was half applied";
    if (ok) {
      const long zero = 0;
      for (long* f : fields) ASSERT_TRUE(wr_assign(*f, zero));
    } else {
      EXPECT_EQ(errno, ENOMEM);
    }
  }
  EXPECT_TRUE(succeeded);
  for (long* f : fields) EXPECT_EQ(*f, 99);
  EXPECT_TRUE(wr_test::write_kills_child(fields[0]));
  pmalloc_destroy_pool(other);
}

TEST_F(WrApi, SingleUpdateIsAllOrNothingWhenTheWriterFails) {
  auto* big = static_cast<unsigned char*>(pzalloc(pool_, 3 * pmalloc::os::page_size()));
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  bool succeeded = false;
  for (unsigned long n = 1; n < 16 && !succeeded; ++n) {
    pmalloc::os::fault::arm(n, ENOMEM);
    const bool ok = wr_memset(big + 100, 0x5A, 2 * pmalloc::os::page_size());
    const bool fired = pmalloc::os::fault::fired();
    pmalloc::os::fault::disarm();
    if (!fired) {
      EXPECT_TRUE(ok);
      succeeded = true;
      break;
    }
    const std::size_t page = pmalloc::os::page_size();
    for (std::size_t i = 0; i < 3 * page; ++i) {
      ASSERT_EQ(big[i], (ok && i >= 100 && i < 100 + 2 * page) ? 0x5A : 0) << "call " << n << " byte " << i;
    }
    if (ok) {
      ASSERT_TRUE(wr_memset(big, 0, 3 * page));
    }
  }
  EXPECT_TRUE(succeeded);
  EXPECT_EQ(big[100], 0x5A);
  EXPECT_TRUE(wr_test::write_kills_child(big + 100));
}

TEST_F(WrApi, PoolMetadataStaysConsistent) {
  std::vector<Record*> rs;
  for (int i = 0; i < 50; ++i) rs.push_back(make_record(i));
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  struct pmalloc_stats before {}, after {};
  ASSERT_EQ(pmalloc_pool_stats(pool_, &before), 0);
  for (int round = 0; round < 20; ++round) {
    for (Record* r : rs) ASSERT_TRUE(wr_assign(r->counter, r->counter + 1));
  }
  ASSERT_EQ(pmalloc_pool_stats(pool_, &after), 0);
  EXPECT_EQ(std::memcmp(&before, &after, sizeof before), 0);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(rs[i]->counter, i + 20);
  EXPECT_EQ(pfree(pool_, rs[0]), 0);
  errno = 0;
  EXPECT_FALSE(wr_assign(rs[0]->counter, 1L)) << "freed after protect: no longer a live allocation";
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(WrApi, AutoProtectedPoolStraddlingAllocation) {
  pmalloc_pool* p = pmalloc_create_pool("wr-auto", PMALLOC_WR | PMALLOC_AUTO);
  ASSERT_NE(p, nullptr);
  const std::size_t page = pmalloc::os::page_size();
  auto* first = static_cast<unsigned char*>(pzalloc(p, page - 64));
  auto* straddle = static_cast<unsigned char*>(pzalloc(p, 256));  // crosses into page 2
  auto* next = static_cast<unsigned char*>(pzalloc(p, 2 * page));  // moves past page 2
  ASSERT_TRUE(first && straddle && next);
  std::vector<unsigned char> v(256, 0x33);
  EXPECT_TRUE(wr_memcpy(straddle, v.data(), v.size())) << pmalloc_last_error();
  EXPECT_EQ(std::memcmp(straddle, v.data(), v.size()), 0);
  EXPECT_TRUE(wr_test::write_kills_child(first));
  pmalloc_destroy_pool(p);
}

TEST_F(WrApi, SealedPoolsWhereTheWriterCanReachThem) {
  if (pmalloc_seal_supported() == 0) GTEST_SKIP() << "this kernel has no mseal()";
  pmalloc_pool* p = pmalloc_create_pool("wr-sealed", PMALLOC_WR | PMALLOC_SEAL);
  ASSERT_NE(p, nullptr);
  auto* v = static_cast<long*>(pzalloc(p, sizeof(long)));
  ASSERT_EQ(pmalloc_protect_pool(p), 0);
  struct pmalloc_stats st {};
  ASSERT_EQ(pmalloc_pool_stats(p, &st), 0);
  ASSERT_EQ(st.sealed, 1);
  // procmem writes sealed pages (and pkey's tagged pages stay writable by WRPKRU); alias
  // and mprotect cannot, and hand sealed targets to procmem where it exists, else refuse
  // with EPERM.
  const bool reachable = wr_test::is("pkey") || pmalloc::os::procmem_available();
  const bool ok = wr_assign(*v, 5L);
  if (reachable) {
    EXPECT_TRUE(ok) << pmalloc_last_error();
    EXPECT_EQ(*v, 5);
  } else {
    EXPECT_FALSE(ok);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(*v, 0);
  }
  EXPECT_TRUE(wr_test::write_kills_child(v));
  pmalloc_destroy_pool(p);
}

}  // namespace
