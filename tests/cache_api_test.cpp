// Sealed object caches, C API: arguments, init semantics (staging, final address, abort),
// free and reuse, double / foreign / interior frees, batches, statistics, destroy.
// Protection proofs are in cache_protect_test.cpp, memory figures in cache_memory_test.cpp.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "cache/cache_test_support.hpp"

using namespace cache_test;

namespace {

class CacheApi : public CacheTest {};

int fail_init(void*, const void*, void* ctx) {
  if (ctx != nullptr) *static_cast<int*>(ctx) += 1;
  return 7;
}

int fill_byte_init(void* staging, const void*, void* ctx) {
  const auto* spec = static_cast<const std::pair<int, std::size_t>*>(ctx);
  std::memset(staging, spec->first, spec->second);
  return 0;
}

TEST_F(CacheApi, CreateRefusesBadArguments) {
  struct Case {
    const char* name;
    std::size_t size;
    std::size_t align;
    unsigned flags;
  } cases[] = {
      {"zero size", 0, 0, 0},
      {"too large", PMALLOC_CACHE_OBJECT_MAX + 1, 0, 0},
      {"align 3", 16, 3, 0},
      {"align 24", 48, 24, 0},
      {"align above page", 16, 8192, 0},
      {"PMALLOC_WR", 16, 0, PMALLOC_WR},
      {"PMALLOC_AUTO", 16, 0, PMALLOC_AUTO},
      {"unknown flag", 16, 0, 0x100},
  };
  for (const Case& c : cases) {
    errno = 0;
    EXPECT_EQ(pmalloc_cache_create(c.name, c.size, c.align, c.flags), nullptr) << c.name;
    EXPECT_EQ(errno, EINVAL) << c.name;
    EXPECT_STRNE(pmalloc_last_error(), "") << c.name;
  }
  std::string long_name(PMALLOC_NAME_MAX + 1, 'x');
  errno = 0;
  EXPECT_EQ(pmalloc_cache_create(long_name.c_str(), 16, 0, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

TEST_F(CacheApi, CreateAcceptsEdgeArguments) {
  std::string max_name(PMALLOC_NAME_MAX, 'n');
  for (unsigned flags : {0u, unsigned{PMALLOC_SEAL}, unsigned{PMALLOC_NO_GUARD}, unsigned{PMALLOC_SEAL | PMALLOC_NO_GUARD}}) {
    pmalloc_cache* c = pmalloc_cache_create(max_name.c_str(), 1, 1, flags);
    ASSERT_NE(c, nullptr) << pmalloc_last_error();
    EXPECT_STREQ(pmalloc_cache_name(c), max_name.c_str());
    EXPECT_EQ(pmalloc_cache_object_size(c), 1u);
    EXPECT_EQ(stats_of(c).flags, flags);
    pmalloc_cache_destroy(c);
  }
  pmalloc_cache* c = pmalloc_cache_create(nullptr, PMALLOC_CACHE_OBJECT_MAX, 4096, 0);
  ASSERT_NE(c, nullptr) << pmalloc_last_error();
  EXPECT_STREQ(pmalloc_cache_name(c), "");
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, DefaultAlignmentIsTheSizesNaturalAlignment) {
  // align 0: the largest power of two dividing the size, at most 16.
  struct {
    std::size_t size;
    std::size_t align;
  } cases[] = {{1, 1}, {2, 2}, {3, 1}, {6, 2}, {12, 4}, {24, 8}, {40, 8}, {48, 16}, {64, 16}, {100, 4}, {4096, 16}};
  for (auto k : cases) {
    pmalloc_cache* c = pmalloc_cache_create("align", k.size, 0, 0);
    ASSERT_NE(c, nullptr);
    std::vector<const void*> objs;
    std::pair<int, std::size_t> spec{0x5a, k.size};
    for (int i = 0; i < 40; ++i) {
      const void* p = pmalloc_cache_alloc_init(c, fill_byte_init, &spec);
      ASSERT_NE(p, nullptr) << pmalloc_last_error();
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % k.align, 0u) << "size " << k.size;
      objs.push_back(p);
    }
    // Densely packed: consecutive objects are one rounded-up size apart.
    const std::size_t slot = (k.size + k.align - 1) / k.align * k.align;
    EXPECT_EQ(static_cast<const char*>(objs[1]) - static_cast<const char*>(objs[0]), static_cast<std::ptrdiff_t>(slot));
    pmalloc_cache_destroy(c);
  }
}

TEST_F(CacheApi, ExplicitAlignmentIsHonoured) {
  for (std::size_t align : {1u, 8u, 32u, 64u, 256u, 4096u}) {
    pmalloc_cache* c = pmalloc_cache_create("aligned", 40, align, 0);
    ASSERT_NE(c, nullptr);
    std::pair<int, std::size_t> spec{1, 40};
    for (int i = 0; i < 20; ++i) {
      const void* p = pmalloc_cache_alloc_init(c, fill_byte_init, &spec);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u);
    }
    pmalloc_cache_destroy(c);
  }
}

struct InitProbe {
  const void* seen_final = nullptr;
  const void* seen_staging = nullptr;
  bool staging_was_zero = false;
  bool staging_aligned = false;
};

int probe_init(void* staging, const void* final_address, void* ctx) {
  auto* probe = static_cast<InitProbe*>(ctx);
  probe->seen_final = final_address;
  probe->seen_staging = staging;
  probe->staging_was_zero = true;
  for (std::size_t i = 0; i < 200; ++i) probe->staging_was_zero &= static_cast<unsigned char*>(staging)[i] == 0;
  probe->staging_aligned = reinterpret_cast<std::uintptr_t>(staging) % 64 == 0;
  std::memset(staging, 0x3c, 200);
  return 0;
}

TEST_F(CacheApi, InitFillsZeroedAlignedStagingAndGetsTheFinalAddress) {
  pmalloc_cache* c = pmalloc_cache_create("probe", 200, 64, 0);
  ASSERT_NE(c, nullptr);
  for (int round = 0; round < 3; ++round) {
    InitProbe probe;
    const void* p = pmalloc_cache_alloc_init(c, probe_init, &probe);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(probe.seen_final, p);
    EXPECT_NE(probe.seen_staging, p);
    EXPECT_TRUE(probe.staging_was_zero);
    EXPECT_TRUE(probe.staging_aligned);
    for (std::size_t i = 0; i < 200; ++i) ASSERT_EQ(static_cast<const unsigned char*>(p)[i], 0x3c);
  }
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, SelfPointersWork) {
  pmalloc_cache* c = pmalloc_cache_create("records", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  std::vector<const Record*> all;
  for (std::uint64_t i = 0; i < 500; ++i) {
    const Record* r = make_record(c, i);
    ASSERT_NE(r, nullptr) << pmalloc_last_error();
    all.push_back(r);
  }
  for (std::uint64_t i = 0; i < all.size(); ++i) EXPECT_TRUE(record_ok(all[i], i));
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, InitFailureAllocatesNothing) {
  pmalloc_cache* c = pmalloc_cache_create("abort", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  // On a fresh cache, and on one with objects.
  for (int phase = 0; phase < 2; ++phase) {
    const pmalloc_stats before = stats_of(c);
    const std::size_t resident_before = resident_bytes(c);
    int calls = 0;
    errno = 0;
    EXPECT_EQ(pmalloc_cache_alloc_init(c, fail_init, &calls), nullptr);
    EXPECT_EQ(errno, ECANCELED);
    EXPECT_EQ(calls, 1);
    EXPECT_NE(std::strstr(pmalloc_last_error(), "7"), nullptr) << pmalloc_last_error();
    const pmalloc_stats after = stats_of(c);
    EXPECT_EQ(after.allocations_live, before.allocations_live);
    EXPECT_EQ(after.bytes_live, before.bytes_live);
    EXPECT_EQ(after.bytes_committed, before.bytes_committed);
    EXPECT_EQ(resident_bytes(c), resident_before);
    for (int i = 0; i < 10; ++i) ASSERT_NE(make_record(c, 1000 + i), nullptr);
  }
  // The slot an aborted init was offered is handed out again.
  const void* offered = nullptr;
  auto remember = [](void*, const void* final_address, void* ctx) -> int {
    *static_cast<const void**>(ctx) = final_address;
    return -1;
  };
  EXPECT_EQ(pmalloc_cache_alloc_init(c, remember, &offered), nullptr);
  ASSERT_NE(offered, nullptr);
  EXPECT_EQ(make_record(c, 5), offered);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, FreeWipesAndReusesTheSlot) {
  pmalloc_cache* c = pmalloc_cache_create("reuse", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  std::vector<const Record*> r;
  for (int i = 0; i < 10; ++i) r.push_back(make_record(c, i));
  EXPECT_EQ(stats_of(c).allocations_live, 10u);
  ASSERT_EQ(pmalloc_cache_free(c, r[3]), 0) << pmalloc_last_error();
  EXPECT_EQ(stats_of(c).allocations_live, 9u);
  EXPECT_EQ(stats_of(c).bytes_live, 9 * sizeof(Record));
  // Wiped: the freed slot reads as zeros.
  const auto* bytes = reinterpret_cast<const unsigned char*>(r[3]);
  for (std::size_t i = 0; i < sizeof(Record); ++i) ASSERT_EQ(bytes[i], 0) << i;
  // The neighbours are untouched.
  EXPECT_TRUE(record_ok(r[2], 2));
  EXPECT_TRUE(record_ok(r[4], 4));
  // Reused (lowest free slot first).
  const Record* again = make_record(c, 33);
  EXPECT_EQ(again, r[3]);
  EXPECT_TRUE(record_ok(again, 33));
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, BadFreesAreRefusedAndChangeNothing) {
  pmalloc_cache* c = pmalloc_cache_create("frees", sizeof(Record), 0, 0);
  pmalloc_cache* other = pmalloc_cache_create("other", sizeof(Record), 0, 0);
  pmalloc_pool* pool = pmalloc_create_pool("pool", 0);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_NE(pool, nullptr);
  std::vector<const Record*> mine;
  for (int i = 0; i < 5; ++i) mine.push_back(make_record(c, i));
  const Record* theirs = make_record(other, 99);
  void* pooled = pmalloc(pool, 48);
  ASSERT_NE(pooled, nullptr);
  int on_stack = 0;
  std::vector<char> on_heap(64);
  ASSERT_EQ(pmalloc_cache_free(c, mine[4]), 0);

  const void* bad[] = {
      nullptr,                                          // NULL
      mine[4],                                          // double free
      reinterpret_cast<const char*>(mine[1]) + 8,       // interior pointer
      reinterpret_cast<const char*>(mine[0]) - 16,      // slab header
      reinterpret_cast<const char*>(mine[0]) + 48 * 200,  // free slot never allocated
      theirs,                                           // another cache's object
      pooled,                                           // pool memory
      &on_stack,                                        // stack
      on_heap.data(),                                   // heap
      c,                                                // the cache's own descriptor
  };
  const pmalloc_stats before = stats_of(c);
  for (const void* p : bad) {
    errno = 0;
    EXPECT_EQ(pmalloc_cache_free(c, p), EINVAL) << p;
    EXPECT_EQ(errno, EINVAL);
    EXPECT_STRNE(pmalloc_last_error(), "");
  }
  const pmalloc_stats after = stats_of(c);
  EXPECT_EQ(after.allocations_live, before.allocations_live);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(record_ok(mine[i], i));
  EXPECT_TRUE(record_ok(theirs, 99));
  EXPECT_TRUE(pmalloc::internal::cache_check(desc(c)));
  pmalloc_destroy_pool(pool);
  pmalloc_cache_destroy(other);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, InvalidHandlesAreRefused) {
  int not_a_cache = 0;
  errno = 0;
  EXPECT_EQ(pmalloc_cache_alloc_init(nullptr, fail_init, nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pmalloc_cache_alloc_init(reinterpret_cast<pmalloc_cache*>(&not_a_cache), fail_init, nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pmalloc_cache_free(nullptr, &not_a_cache), EINVAL);
  pmalloc_stats s{};
  EXPECT_EQ(pmalloc_cache_stats(nullptr, &s), EINVAL);
  EXPECT_EQ(pmalloc_cache_name(nullptr), nullptr);
  EXPECT_EQ(pmalloc_cache_object_size(nullptr), 0u);
  pmalloc_cache_destroy(nullptr);  // no-op
  pmalloc_cache_destroy(reinterpret_cast<pmalloc_cache*>(&not_a_cache));  // refused silently

  pmalloc_cache* c = pmalloc_cache_create("handle", 32, 0, 0);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(pmalloc_cache_stats(c, nullptr), EINVAL);
  errno = 0;
  EXPECT_EQ(pmalloc_cache_alloc_init(c, nullptr, nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  // A pool handle is not a cache handle.
  pmalloc_pool* pool = pmalloc_create_pool("p", 0);
  EXPECT_EQ(pmalloc_cache_stats(reinterpret_cast<pmalloc_cache*>(pool), &s), EINVAL);
  pmalloc_destroy_pool(pool);
  // Interior of the descriptor.
  EXPECT_EQ(pmalloc_cache_stats(reinterpret_cast<pmalloc_cache*>(reinterpret_cast<char*>(c) + 8), &s), EINVAL);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, UseAfterDestroyIsRefusedWhenSealed) {
  // A sealed cache's descriptor stays mapped after destroy, so the dead handle can be
  // recognised; an unsealed one is unmapped (using it would be a use-after-free).
  pmalloc_cache* c = pmalloc_cache_create("dead", 32, 0, PMALLOC_SEAL);
  ASSERT_NE(c, nullptr);
  const bool sealed = stats_of(c).sealed == 1;
  pmalloc_cache_destroy(c);
  if (!sealed) GTEST_SKIP() << "sealing unavailable here";
  pmalloc_stats s{};
  EXPECT_EQ(pmalloc_cache_stats(c, &s), EINVAL);
  EXPECT_EQ(pmalloc_cache_alloc_init(c, fail_init, nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  pmalloc_cache_destroy(c);  // a second destroy is a no-op
}

TEST_F(CacheApi, StatsDescribeTheCache) {
  pmalloc_cache* c = pmalloc_cache_create("stats", 48, 0, 0);
  ASSERT_NE(c, nullptr);
  pmalloc_stats s = stats_of(c);
  EXPECT_EQ(s.allocations_live, 0u);
  EXPECT_EQ(s.bytes_live, 0u);
  EXPECT_EQ(s.bytes_committed, 0u);
  EXPECT_GT(s.bytes_reserved, 0u);
  EXPECT_GT(s.bytes_metadata, 0u);
  EXPECT_EQ(s.regions, 1u);
  EXPECT_EQ(s.is_protected, 1);
  EXPECT_EQ(s.protect_calls, 0u);
  std::vector<const Record*> r;
  for (int i = 0; i < 100; ++i) r.push_back(make_record(c, i));
  s = stats_of(c);
  EXPECT_EQ(s.allocations_live, 100u);
  EXPECT_EQ(s.bytes_live, 4800u);
  EXPECT_EQ(s.bytes_committed, 2u * 4096u);  // 85 objects of 48 bytes per page
  EXPECT_EQ(s.bytes_protected, s.bytes_committed);
  EXPECT_EQ(s.bytes_free, s.bytes_committed - s.bytes_live);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, LargeAndTinyObjects) {
  for (std::size_t size : {std::size_t{1}, std::size_t{7}, std::size_t{1500}, std::size_t{3000}, std::size_t{5000},
                           std::size_t{70000}, PMALLOC_CACHE_OBJECT_MAX}) {
    pmalloc_cache* c = pmalloc_cache_create("sizes", size, 0, 0);
    ASSERT_NE(c, nullptr) << size;
    std::vector<const unsigned char*> objs;
    const int n = size >= 70000 ? 3 : 40;
    for (int i = 0; i < n; ++i) {
      std::pair<int, std::size_t> spec{i + 1, size};
      const auto* p = static_cast<const unsigned char*>(pmalloc_cache_alloc_init(c, fill_byte_init, &spec));
      ASSERT_NE(p, nullptr) << size << ": " << pmalloc_last_error();
      objs.push_back(p);
    }
    for (int i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < size; k += (size / 17) + 1) ASSERT_EQ(objs[i][k], i + 1) << size;
      ASSERT_EQ(objs[i][size - 1], i + 1);
    }
    for (int i = 0; i < n; i += 2) ASSERT_EQ(pmalloc_cache_free(c, objs[i]), 0);
    EXPECT_TRUE(pmalloc::internal::cache_check(desc(c)));
    const pmalloc_stats s = stats_of(c);
    EXPECT_EQ(s.allocations_live, static_cast<std::size_t>(n / 2));
    pmalloc_cache_destroy(c);
  }
}

TEST_F(CacheApi, NestedCreationFromInit) {
  // init runs without locks: it may create (and free) objects of the same cache.
  pmalloc_cache* c = pmalloc_cache_create("nested", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  struct Ctx {
    pmalloc_cache* c;
    const Record* child;
    const Record* temp;
  } ctx{c, nullptr, nullptr};
  auto init = [](void* staging, const void* final_address, void* arg) -> int {
    auto* x = static_cast<Ctx*>(arg);
    x->child = make_record(x->c, 2);
    x->temp = make_record(x->c, 3);
    if (x->child == nullptr || x->temp == nullptr || pmalloc_cache_free(x->c, x->temp) != 0) return 1;
    auto* r = static_cast<Record*>(staging);
    r->self = static_cast<const Record*>(final_address);
    r->seq = 1;
    std::strcpy(r->tag, "record-1");
    return 0;
  };
  const auto* parent = static_cast<const Record*>(pmalloc_cache_alloc_init(c, init, &ctx));
  ASSERT_NE(parent, nullptr) << pmalloc_last_error();
  EXPECT_TRUE(record_ok(parent, 1));
  EXPECT_TRUE(record_ok(ctx.child, 2));
  EXPECT_NE(parent, ctx.child);
  EXPECT_EQ(stats_of(c).allocations_live, 2u);
  pmalloc_cache_destroy(c);
}

// --- batches

struct Node {
  const Node* self;
  const Node* next;  // ring through the whole batch
  std::uint64_t index;
  std::uint64_t pad[3];
};

TEST_F(CacheApi, BatchObjectsMayPointToEachOther) {
  pmalloc_cache* c = pmalloc_cache_create("batch", sizeof(Node), 0, 0);
  ASSERT_NE(c, nullptr);
  for (std::size_t count : {std::size_t{1}, std::size_t{5}, std::size_t{64}, std::size_t{1000}}) {
    std::vector<const void*> out(count + 1, nullptr);
    struct Ring {
      const void** out;
      std::size_t count;
    } ring{out.data(), count};
    auto init = [](void* staging, const void* final_address, std::size_t index, void* ctx) -> int {
      auto* r = static_cast<Ring*>(ctx);
      // All final addresses are known before the first init.
      for (std::size_t i = 0; i < r->count; ++i) {
        if (r->out[i] == nullptr) return 99;
      }
      auto* n = static_cast<Node*>(staging);
      n->self = static_cast<const Node*>(final_address);
      n->next = static_cast<const Node*>(r->out[(index + 1) % r->count]);
      n->index = index;
      return 0;
    };
    ASSERT_EQ(pmalloc_cache_alloc_init_many(c, count, out.data(), init, &ring), 0) << pmalloc_last_error();
    std::set<const void*> distinct(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(count));
    EXPECT_EQ(distinct.size(), count);
    const Node* n = static_cast<const Node*>(out[0]);
    for (std::size_t i = 0; i < count; ++i) {
      ASSERT_EQ(n->index, i);
      ASSERT_EQ(n->self, n);
      n = n->next;
    }
    EXPECT_EQ(n, out[0]);
  }
  EXPECT_EQ(stats_of(c).allocations_live, 1070u);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, BatchIsAllOrNothing) {
  pmalloc_cache* c = pmalloc_cache_create("batch-abort", 64, 0, 0);
  ASSERT_NE(c, nullptr);
  std::vector<const void*> keep(10);
  auto ok = [](void* staging, const void*, std::size_t index, void*) -> int {
    std::memset(staging, static_cast<int>(index + 1), 64);
    return 0;
  };
  ASSERT_EQ(pmalloc_cache_alloc_init_many(c, keep.size(), keep.data(), ok, nullptr), 0);
  const pmalloc_stats before = stats_of(c);
  const std::size_t resident_before = resident_bytes(c);
  std::vector<const void*> out(500, reinterpret_cast<const void*>(1));
  struct Stop {
    std::size_t at;
    std::size_t calls;
  } stop{321, 0};
  auto failing = [](void* staging, const void*, std::size_t index, void* ctx) -> int {
    auto* s = static_cast<Stop*>(ctx);
    s->calls++;
    std::memset(staging, 0x77, 64);
    return index == s->at ? 5 : 0;
  };
  errno = 0;
  EXPECT_EQ(pmalloc_cache_alloc_init_many(c, out.size(), out.data(), failing, &stop), ECANCELED);
  EXPECT_EQ(errno, ECANCELED);
  EXPECT_EQ(stop.calls, 322u);
  for (const void* p : out) EXPECT_EQ(p, nullptr);
  const pmalloc_stats after = stats_of(c);
  EXPECT_EQ(after.allocations_live, before.allocations_live);
  EXPECT_EQ(after.bytes_committed, before.bytes_committed);
  EXPECT_EQ(resident_bytes(c), resident_before);
  for (std::size_t i = 0; i < keep.size(); ++i) {
    EXPECT_EQ(static_cast<const unsigned char*>(keep[i])[63], i + 1);
  }
  // Bad arguments.
  EXPECT_EQ(pmalloc_cache_alloc_init_many(c, 0, nullptr, ok, nullptr), 0);
  EXPECT_EQ(pmalloc_cache_alloc_init_many(c, 3, nullptr, ok, nullptr), EINVAL);
  EXPECT_EQ(pmalloc_cache_alloc_init_many(c, 3, out.data(), nullptr, nullptr), EINVAL);
  EXPECT_EQ(pmalloc_cache_alloc_init_many(nullptr, 3, out.data(), ok, nullptr), EINVAL);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, FreeManyIsAllOrNothing) {
  pmalloc_cache* c = pmalloc_cache_create("free-many", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  std::vector<const Record*> r;
  for (int i = 0; i < 300; ++i) r.push_back(make_record(c, i));
  ASSERT_EQ(pmalloc_cache_free(c, r[7]), 0);
  // One bad entry (double free, duplicate, foreign, NULL) refuses the whole batch.
  int local = 0;
  std::vector<std::vector<const void*>> bad = {
      {r[1], r[2], r[7]},
      {r[1], r[2], r[1]},
      {r[1], &local},
      {r[1], nullptr},
  };
  for (auto& batch : bad) {
    EXPECT_EQ(pmalloc_cache_free_many(c, batch.data(), batch.size()), EINVAL);
    EXPECT_EQ(stats_of(c).allocations_live, 299u);
    EXPECT_TRUE(record_ok(r[1], 1));
    EXPECT_TRUE(record_ok(r[2], 2));
  }
  EXPECT_EQ(pmalloc_cache_free_many(c, nullptr, 0), 0);
  EXPECT_EQ(pmalloc_cache_free_many(c, nullptr, 2), EINVAL);
  // Free everything but r[7] (already free), in a scrambled order spanning several slabs.
  std::vector<const void*> all;
  for (int i = 299; i >= 0; --i) {
    if (i != 7) all.push_back(r[i]);
  }
  ASSERT_EQ(pmalloc_cache_free_many(c, all.data(), all.size()), 0) << pmalloc_last_error();
  EXPECT_EQ(stats_of(c).allocations_live, 0u);
  for (const Record* p : r) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < sizeof(Record); ++i) ASSERT_EQ(b[i], 0);
  }
  EXPECT_TRUE(pmalloc::internal::cache_check(desc(c)));
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, ManySegments) {
  // More than the first segment holds: the cache grows by further reservations.
  pmalloc_cache* c = pmalloc_cache_create("grow", 4000, 0, 0);
  ASSERT_NE(c, nullptr);
  std::vector<const void*> out(1200);
  auto init = [](void* staging, const void*, std::size_t index, void*) -> int {
    std::memcpy(staging, &index, sizeof index);
    return 0;
  };
  ASSERT_EQ(pmalloc_cache_alloc_init_many(c, out.size(), out.data(), init, nullptr), 0) << pmalloc_last_error();
  EXPECT_GE(stats_of(c).regions, 3u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::size_t v = 0;
    std::memcpy(&v, out[i], sizeof v);
    ASSERT_EQ(v, i);
  }
  EXPECT_TRUE(pmalloc::internal::cache_check(desc(c)));
  for (std::size_t i = 0; i < out.size(); i += 3) ASSERT_EQ(pmalloc_cache_free(c, out[i]), 0);
  EXPECT_EQ(stats_of(c).allocations_live, 800u);
  pmalloc_cache_destroy(c);
}

TEST_F(CacheApi, LocateClassifiesCacheMemory) {
  using pmalloc::internal::CachePlacement;
  pmalloc_cache* c = pmalloc_cache_create("locate", sizeof(Record), 0, 0);
  ASSERT_NE(c, nullptr);
  const Record* a = make_record(c, 1);
  const Record* b = make_record(c, 2);
  pmalloc::internal::CacheObject o;
  EXPECT_EQ(pmalloc::internal::cache_locate(a, sizeof(Record), &o), CachePlacement::ok);
  EXPECT_EQ(o.begin, reinterpret_cast<const std::byte*>(a));
  EXPECT_EQ(o.size, sizeof(Record));
  EXPECT_EQ(pmalloc::internal::cache_locate(&a->seq, 8, &o), CachePlacement::ok);
  EXPECT_EQ(pmalloc::internal::cache_locate(&a->seq, 48, &o), CachePlacement::bad);  // crosses into b
  EXPECT_EQ(pmalloc::internal::cache_locate(b + 1, 8, &o), CachePlacement::bad);      // free slot
  EXPECT_EQ(pmalloc::internal::cache_locate(c, 8, &o), CachePlacement::bad);          // metadata
  int local = 0;
  EXPECT_EQ(pmalloc::internal::cache_locate(&local, 4, &o), CachePlacement::none);
  pmalloc_cache_destroy(c);
}

}  // namespace
