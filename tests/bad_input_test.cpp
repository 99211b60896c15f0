// Bad input, with nothing lost (issue 4): every API entry is called with bad arguments
// (NULL pool, NULL pointers, foreign / interior / double / wrong-pool free, zero and huge
// sizes, bad alignments, unknown flags, handles that are not pools, a destroyed pool).
// Each call must fail with the documented errno and a non-empty pmalloc_last_error(), and
// afterwards every pool must pass the invariant checker and hold exactly the same state
// (statistics) and data (every byte of every live allocation) as before.
//
// The table is one row per bad call; a row that unexpectedly succeeds shows up both as a
// wrong result and as a changed snapshot.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <pmalloc/pmalloc.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "pmalloc/cache.h"
#include "pmalloc/execmem.h"
#include "pmalloc/stats.h"
#include "pmalloc/wr.h"
#include "pool/layout.hpp"
#include "pool/lock.hpp"
#include "pool/pool.hpp"
#include "registry/registry.hpp"

namespace {

using pmalloc::internal::from_handle;

struct Object {
  pmalloc_pool* pool;
  unsigned char* p;
  std::size_t n;
  std::vector<unsigned char> bytes;
};

// The pools every row runs against, and what they must still hold afterwards.
struct World {
  pmalloc_pool* open = nullptr;       // writable, with objects, some freed (rollback holes)
  pmalloc_pool* locked = nullptr;     // protected
  pmalloc_pool* rare = nullptr;       // write-rare, protected
  pmalloc_pool* dead = nullptr;       // destroyed handle (created last, so never reused)
  std::vector<Object> objects;
  unsigned char* freed_open = nullptr;    // freed before protection
  unsigned char* freed_locked = nullptr;  // freed after protection
  int stack_word = 0;
  std::vector<unsigned char> heap = std::vector<unsigned char>(256);

  World() {
    open = pmalloc_create_pool("open", PMALLOC_RO);
    locked = pmalloc_create_pool("locked", PMALLOC_RO);
    rare = pmalloc_create_pool("rare", PMALLOC_WR);
    for (pmalloc_pool* pool : {open, locked, rare}) {
      for (std::size_t i = 0; i < 40; ++i) {
        const std::size_t n = 1 + (i * 37) % 300;
        auto* p = static_cast<unsigned char*>(pmalloc(pool, n));
        for (std::size_t k = 0; k < n; ++k) p[k] = static_cast<unsigned char>(i * 7 + k);
        objects.push_back({pool, p, n, {}});
      }
    }
    freed_open = take(open, 5);
    freed_locked = objects[50].p;  // freed after protection below
    pmalloc_protect_pool(locked);
    pmalloc_protect_pool(rare);
    pfree(locked, freed_locked);
    objects.erase(objects.begin() + 50);
    for (Object& o : objects) o.bytes.assign(o.p, o.p + o.n);
    dead = pmalloc_create_pool("dead", PMALLOC_RO);
    pmalloc(dead, 64);
    pmalloc_destroy_pool(dead);
  }
  ~World() {
    for (pmalloc_pool* pool : {open, locked, rare}) pmalloc_destroy_pool(pool);
  }
  unsigned char* take(pmalloc_pool* pool, std::size_t index) {
    std::size_t seen = 0;
    for (auto it = objects.begin(); it != objects.end(); ++it) {
      if (it->pool != pool || seen++ != index) continue;
      unsigned char* p = it->p;
      pfree(pool, p);
      objects.erase(it);
      return p;
    }
    return nullptr;
  }
  unsigned char* object(pmalloc_pool* pool, std::size_t index = 0) const {
    std::size_t seen = 0;
    for (const Object& o : objects) {
      if (o.pool == pool && seen++ == index) return o.p;
    }
    return nullptr;
  }
};

struct Snapshot {
  std::vector<pmalloc_stats> stats;
  std::size_t registrations = 0;
  bool operator==(const Snapshot& o) const {
    if (stats.size() != o.stats.size() || registrations != o.registrations) return false;
    for (std::size_t i = 0; i < stats.size(); ++i) {
      if (std::memcmp(&stats[i], &o.stats[i], sizeof stats[i]) != 0) return false;
    }
    return true;
  }
};

Snapshot snapshot(const World& w) {
  Snapshot s;
  for (pmalloc_pool* pool : {w.open, w.locked, w.rare}) {
    pmalloc_stats st{};
    EXPECT_EQ(pmalloc_pool_stats(pool, &st), 0);
    s.stats.push_back(st);
  }
  s.registrations = pmalloc::internal::registry::size();
  return s;
}

void expect_intact(const World& w, const Snapshot& before, const std::string& row) {
  for (pmalloc_pool* pool : {w.open, w.locked, w.rare}) {
    pmalloc::internal::PoolGuard guard(from_handle(pool));
    EXPECT_TRUE(pmalloc::internal::pool_check(from_handle(pool))) << row << ": invariants of " << pmalloc_pool_name(pool);
  }
  EXPECT_TRUE(snapshot(w) == before) << row << ": pool state changed";
  for (const Object& o : w.objects) {
    ASSERT_EQ(std::memcmp(o.p, o.bytes.data(), o.n), 0) << row << ": data of an allocation changed";
    ASSERT_EQ(is_pmalloc_object(o.p, o.n), PMALLOC_OBJECT_OK) << row;
  }
}

// Runs a call that returns a pointer: the errno it failed with, or -1 if it succeeded.
int pointer_call(const std::function<const void*()>& call) {
  errno = 0;
  const void* r = call();
  return r == nullptr ? errno : -1;
}
// Runs a call that returns an int error code; checks that errno agrees with it.
int code_call(const std::function<int()>& call) {
  errno = 0;
  const int r = call();
  if (r != 0 && errno != r) return -2;
  return r;
}

struct Row {
  std::string name;
  int expect;  // errno
  std::function<int(World&)> call;
};

constexpr std::size_t kHuge = std::size_t{1} << 41;

std::vector<Row> rows() {
  auto foreign_handles = [](World& w) {
    return std::vector<std::pair<std::string, pmalloc_pool*>>{
        {"NULL pool", nullptr},
        {"destroyed pool", w.dead},
        {"stack address as pool", reinterpret_cast<pmalloc_pool*>(&w.stack_word)},
        {"heap address as pool", reinterpret_cast<pmalloc_pool*>(w.heap.data())},
        {"pool data as pool", reinterpret_cast<pmalloc_pool*>(w.object(w.open, 1))},
        {"interior of a descriptor as pool", reinterpret_cast<pmalloc_pool*>(reinterpret_cast<char*>(w.open) + 8)},
        {"wild pointer as pool", reinterpret_cast<pmalloc_pool*>(std::uintptr_t{0xdead0000})},
    };
  };
  std::vector<Row> r;
  // Pool creation.
  r.push_back({"create: unknown flag 0x10", EINVAL, [](World&) { return pointer_call([] { return pmalloc_create_pool("x", 0x10u); }); }});
  r.push_back({"create: all flags set", EINVAL, [](World&) { return pointer_call([] { return pmalloc_create_pool("x", ~0u); }); }});
  r.push_back({"create: name too long", EINVAL, [](World&) {
                 const std::string name(PMALLOC_NAME_MAX + 1, 'n');
                 return pointer_call([&] { return pmalloc_create_pool(name.c_str(), PMALLOC_RO); });
               }});
  // Every pool-taking entry with every kind of handle that is not a live pool. The
  // handles are resolved when the row runs (they point into the World).
  for (int i = 0; i < 7; ++i) {
    auto handle = [foreign_handles, i](World& w) { return foreign_handles(w)[i].second; };
    const std::string what = std::vector<std::string>{"NULL pool", "destroyed pool", "stack address as pool",
                                                      "heap address as pool", "pool data as pool",
                                                      "interior of a descriptor as pool", "wild pointer as pool"}[i];
    r.push_back({"prealloc: " + what, EINVAL, [handle](World& w) { return code_call([&] { return pmalloc_prealloc(handle(w), 64); }); }});
    r.push_back({"pmalloc: " + what, EINVAL, [handle](World& w) { return pointer_call([&] { return pmalloc(handle(w), 64); }); }});
    r.push_back({"aligned: " + what, EINVAL, [handle](World& w) { return pointer_call([&] { return pmalloc_aligned(handle(w), 64, 64); }); }});
    r.push_back({"pzalloc: " + what, EINVAL, [handle](World& w) { return pointer_call([&] { return pzalloc(handle(w), 64); }); }});
    r.push_back({"pcalloc: " + what, EINVAL, [handle](World& w) { return pointer_call([&] { return pcalloc(handle(w), 4, 16); }); }});
    r.push_back({"pstrdup: " + what, EINVAL, [handle](World& w) { return pointer_call([&] { return pstrdup(handle(w), "x"); }); }});
    r.push_back({"pfree: " + what, EINVAL, [handle](World& w) { return code_call([&] { return pfree(handle(w), w.object(w.open)); }); }});
    r.push_back({"protect: " + what, EINVAL, [handle](World& w) { return code_call([&] { return pmalloc_protect_pool(handle(w)); }); }});
    r.push_back({"stats: " + what, EINVAL, [handle](World& w) {
                   pmalloc_stats s{};
                   return code_call([&] { return pmalloc_pool_stats(handle(w), &s); });
                 }});
    r.push_back({"name: " + what, EINVAL, [handle](World& w) { return pointer_call([&] { return pmalloc_pool_name(handle(w)); }); }});
    r.push_back({"destroy: " + what, 0, [handle](World& w) {
                   pmalloc_destroy_pool(handle(w));  // void: a no-op for anything but a live pool
                   return 0;
                 }});
  }
  // Sizes.
  for (pmalloc_pool* World::*pool : {&World::open, &World::locked}) {
    const std::string which = pool == &World::open ? " (writable pool)" : " (protected pool)";
    r.push_back({"pmalloc: size 0" + which, EINVAL, [pool](World& w) { return pointer_call([&] { return pmalloc(w.*pool, 0); }); }});
    r.push_back({"pmalloc: SIZE_MAX" + which, ENOMEM, [pool](World& w) { return pointer_call([&] { return pmalloc(w.*pool, SIZE_MAX); }); }});
    r.push_back({"pmalloc: SIZE_MAX - 15" + which, ENOMEM, [pool](World& w) { return pointer_call([&] { return pmalloc(w.*pool, SIZE_MAX - 15); }); }});
    r.push_back({"pmalloc: 2 TiB" + which, ENOMEM, [pool](World& w) { return pointer_call([&] { return pmalloc(w.*pool, kHuge); }); }});
    r.push_back({"prealloc: size 0" + which, EINVAL, [pool](World& w) { return code_call([&] { return pmalloc_prealloc(w.*pool, 0); }); }});
    r.push_back({"prealloc: SIZE_MAX" + which, ENOMEM, [pool](World& w) { return code_call([&] { return pmalloc_prealloc(w.*pool, SIZE_MAX); }); }});
    r.push_back({"pzalloc: size 0" + which, EINVAL, [pool](World& w) { return pointer_call([&] { return pzalloc(w.*pool, 0); }); }});
    r.push_back({"pzalloc: SIZE_MAX" + which, ENOMEM, [pool](World& w) { return pointer_call([&] { return pzalloc(w.*pool, SIZE_MAX); }); }});
    r.push_back({"pcalloc: 0 elements" + which, EINVAL, [pool](World& w) { return pointer_call([&] { return pcalloc(w.*pool, 0, 8); }); }});
    r.push_back({"pcalloc: 0-byte elements" + which, EINVAL, [pool](World& w) { return pointer_call([&] { return pcalloc(w.*pool, 8, 0); }); }});
    r.push_back({"pcalloc: overflowing product" + which, ENOMEM, [pool](World& w) { return pointer_call([&] { return pcalloc(w.*pool, SIZE_MAX / 2, 3); }); }});
    r.push_back({"pcalloc: 2^32 * 2^32" + which, ENOMEM, [pool](World& w) { return pointer_call([&] { return pcalloc(w.*pool, std::size_t{1} << 32, std::size_t{1} << 32); }); }});
    r.push_back({"pstrdup: NULL string" + which, EINVAL, [pool](World& w) { return pointer_call([&] { return pstrdup(w.*pool, nullptr); }); }});
    // Alignments.
    for (std::size_t align : {std::size_t{0}, std::size_t{3}, std::size_t{24}, std::size_t{8192}, std::size_t{1} << 63, SIZE_MAX}) {
      r.push_back({"aligned: alignment " + std::to_string(align) + which, EINVAL, [pool, align](World& w) {
                     return pointer_call([&] { return pmalloc_aligned(w.*pool, 64, align); });
                   }});
    }
    r.push_back({"aligned: size 0" + which, EINVAL, [pool](World& w) { return pointer_call([&] { return pmalloc_aligned(w.*pool, 0, 64); }); }});
    r.push_back({"aligned: SIZE_MAX" + which, ENOMEM, [pool](World& w) { return pointer_call([&] { return pmalloc_aligned(w.*pool, SIZE_MAX, 64); }); }});
  }
  // Frees.
  r.push_back({"pfree: NULL pointer", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, nullptr); }); }});
  r.push_back({"pfree: stack pointer", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, &w.stack_word); }); }});
  r.push_back({"pfree: heap pointer", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, w.heap.data()); }); }});
  r.push_back({"pfree: interior pointer (+16)", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, w.object(w.open, 3) + 16); }); }});
  r.push_back({"pfree: interior pointer (+1)", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, w.object(w.open, 3) + 1); }); }});
  r.push_back({"pfree: double free before protection", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, w.freed_open); }); }});
  r.push_back({"pfree: double free after protection", EINVAL, [](World& w) { return code_call([&] { return pfree(w.locked, w.freed_locked); }); }});
  r.push_back({"pfree: wrong pool (writable <- protected)", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, w.object(w.locked)); }); }});
  r.push_back({"pfree: wrong pool (protected <- writable)", EINVAL, [](World& w) { return code_call([&] { return pfree(w.locked, w.object(w.open)); }); }});
  r.push_back({"pfree: the pool descriptor", EINVAL, [](World& w) { return code_call([&] { return pfree(w.open, w.open); }); }});
  r.push_back({"pfree: the guard page", EINVAL, [](World& w) {
                 pmalloc::internal::registry::Entry e;
                 pmalloc::internal::registry::lookup(w.open, &e);
                 return code_call([&] { return pfree(w.open, reinterpret_cast<void*>(e.begin)); });
               }});
  r.push_back({"pfree: free space past the cursor", EINVAL, [](World& w) {
                 const auto* d = from_handle(w.open);
                 return code_call([&] { return pfree(w.open, d->first->data + d->first->cursor * 16 + 64); });
               }});
  r.push_back({"pfree: a pointer into a destroyed pool", EINVAL, [](World& w) {
                 return code_call([&] { return pfree(w.open, reinterpret_cast<char*>(w.dead) + 4096); });
               }});
  // Outputs.
  r.push_back({"stats: NULL output", EINVAL, [](World& w) { return code_call([&] { return pmalloc_pool_stats(w.open, nullptr); }); }});
  return r;
}

TEST(BadInput, EveryEntryRefusesAndNothingChanges) {
  World w;
  const std::vector<Row> table = rows();
  ASSERT_GT(table.size(), 120u);
  for (const Row& row : table) {
    const Snapshot before = snapshot(w);
    pmalloc::internal::clear_error();
    const int got = row.call(w);
    EXPECT_EQ(got, row.expect) << row.name << " (got " << got << ": " << pmalloc_last_error() << ")";
    if (row.expect != 0) {
      EXPECT_STRNE(pmalloc_last_error(), "") << row.name << ": no reason recorded";
    }
    expect_intact(w, before, row.name);
  }
}

// The C++ API turns the same refusals into exceptions; nothing changes either.
TEST(BadInput, CppApiThrowsAndNothingChanges) {
  World w;
  const Snapshot before = snapshot(w);
  pmalloc::Pool pool = pmalloc::Pool::adopt(w.open);
  try {
    EXPECT_THROW((void)pool.alloc(0), pmalloc::error);
    EXPECT_THROW((void)pool.alloc(64, 3), pmalloc::error);
    EXPECT_THROW((void)pool.alloc(SIZE_MAX), pmalloc::out_of_memory);
    EXPECT_THROW((void)pool.alloc(SIZE_MAX), std::bad_alloc);
    EXPECT_THROW(pool.free(w.object(w.locked)), pmalloc::error);
    EXPECT_THROW(pool.free(nullptr), pmalloc::error);
    try {
      pool.free(w.freed_open);
      ADD_FAILURE() << "double free accepted";
    } catch (const pmalloc::error& e) {
      EXPECT_EQ(e.code().value(), EINVAL);
      EXPECT_NE(std::string(e.what()).find("pfree"), std::string::npos) << e.what();
    }
    EXPECT_THROW(pmalloc::Pool("bad flags", 0x40u), pmalloc::error);
  } catch (...) {
    (void)pool.release();
    throw;
  }
  (void)pool.release();  // the World owns it
  expect_intact(w, before, "C++ API");
}

// --- The APIs built on the core: write-rare, execmem, sealed caches, stats.

struct Blob {
  const unsigned char* p;
  std::size_t n;
  std::vector<unsigned char> bytes;
};

// The core World, plus a sealed cache with objects and execmem allocations of each kind.
struct XWorld : World {
  pmalloc_cache* cache = nullptr;
  pmalloc_cache* other_cache = nullptr;
  std::vector<Blob> blobs;  // cache objects and execmem allocations, with their contents
  const unsigned char* freed_object = nullptr;
  unsigned char* text = nullptr;
  unsigned char* data = nullptr;
  unsigned char* freed_text = nullptr;

  XWorld() {
    cache = pmalloc_cache_create("cache", 48, 0, 0);
    other_cache = pmalloc_cache_create("other", 48, 0, 0);
    for (int i = 0; i < 6; ++i) blobs.push_back({make(cache, i), 48, {}});
    blobs.push_back({make(other_cache, 99), 48, {}});
    freed_object = make(cache, 7);
    pmalloc_cache_free(cache, freed_object);
    text = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 200));
    data = static_cast<unsigned char*>(execmem_alloc(EXECMEM_DATA, 100));
    freed_text = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 64));
    execmem_free(freed_text);
    const unsigned char ret[] = {0xC3};
    execmem_update_copy(text, ret, 1);
    std::memset(data, 0x5A, 100);
    blobs.push_back({text, 200, {}});
    blobs.push_back({data, 100, {}});
    for (Blob& b : blobs) b.bytes.assign(b.p, b.p + b.n);
  }
  ~XWorld() {
    execmem_free(text);
    execmem_free(data);
    pmalloc_cache_destroy(cache);
    pmalloc_cache_destroy(other_cache);
  }
  static const unsigned char* make(pmalloc_cache* c, int v) {
    return static_cast<const unsigned char*>(pmalloc_cache_alloc_init(
        c,
        [](void* staging, const void*, void* ctx) {
          std::memset(staging, *static_cast<int*>(ctx), 48);
          return 0;
        },
        &v));
  }
};

struct XSnapshot {
  Snapshot core;
  std::vector<pmalloc_stats> caches;
  std::vector<execmem_stats> execmem;
};

XSnapshot xsnapshot(const XWorld& w) {
  XSnapshot s{snapshot(w), {}, {}};
  for (pmalloc_cache* c : {w.cache, w.other_cache}) {
    pmalloc_stats st{};
    EXPECT_EQ(pmalloc_cache_stats(c, &st), 0);
    s.caches.push_back(st);
  }
  for (execmem_type t : {EXECMEM_TEXT, EXECMEM_RODATA, EXECMEM_DATA, EXECMEM_RO_AFTER_INIT}) {
    execmem_stats st{};
    EXPECT_EQ(execmem_get_stats(t, &st), 0);
    s.execmem.push_back(st);
  }
  return s;
}

void expect_x_intact(const XWorld& w, const XSnapshot& before, const std::string& row) {
  expect_intact(w, before.core, row);
  const XSnapshot now = xsnapshot(w);
  for (std::size_t i = 0; i < now.caches.size(); ++i) {
    EXPECT_EQ(std::memcmp(&now.caches[i], &before.caches[i], sizeof now.caches[i]), 0) << row << ": cache state changed";
  }
  for (std::size_t i = 0; i < now.execmem.size(); ++i) {
    EXPECT_EQ(std::memcmp(&now.execmem[i], &before.execmem[i], sizeof now.execmem[i]), 0) << row << ": execmem state changed";
  }
  for (const Blob& b : w.blobs) ASSERT_EQ(std::memcmp(b.p, b.bytes.data(), b.n), 0) << row << ": contents changed";
}

int bool_call(const std::function<bool()>& call) {
  errno = 0;
  return call() ? -1 : errno;
}

struct XRow {
  std::string name;
  int expect;
  std::function<int(XWorld&)> call;
};

std::vector<XRow> xrows() {
  std::vector<XRow> r;
  static const unsigned char src[64] = {1, 2, 3};
  // Write-rare.
  r.push_back({"wr_memcpy: stack destination", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(&w.stack_word, src, 4); }); }});
  r.push_back({"wr_memcpy: heap destination", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.heap.data(), src, 8); }); }});
  r.push_back({"wr_memcpy: NULL destination", EINVAL, [](XWorld&) { return bool_call([&] { return wr_memcpy(nullptr, src, 8); }); }});
  r.push_back({"wr_memcpy: NULL source", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.object(w.rare), nullptr, 8); }); }});
  r.push_back({"wr_memcpy: past the end of an allocation", EINVAL, [](XWorld& w) {
                 const Object& o = *std::find_if(w.objects.begin(), w.objects.end(), [&](const Object& x) { return x.pool == w.rare; });
                 return bool_call([&] { return wr_memcpy(o.p + o.n - 4, src, 8); });
               }});
  r.push_back({"wr_memcpy: across two allocations", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.object(w.rare, 1), src, 64 * 1024); }); }});
  r.push_back({"wr_memcpy: SIZE_MAX bytes", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.object(w.rare), src, SIZE_MAX); }); }});
  r.push_back({"wr_memcpy: the pool descriptor", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.rare, src, 8); }); }});
  r.push_back({"wr_memcpy: free space past the cursor", EINVAL, [](XWorld& w) {
                 const auto* d = from_handle(w.rare);
                 return bool_call([&] { return wr_memcpy(d->first->data + d->first->cursor * 16 + 32, src, 8); });
               }});
  r.push_back({"wr_memcpy: a destroyed pool", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(reinterpret_cast<char*>(w.dead) + 4096, src, 8); }); }});
  r.push_back({"wr_memcpy: write-once pool, protected", EPERM, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.object(w.locked), src, 1); }); }});
  r.push_back({"wr_memcpy: write-once pool, not protected", EPERM, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.object(w.open), src, 1); }); }});
  r.push_back({"wr_memcpy: a cache object", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(const_cast<unsigned char*>(w.blobs[0].p), src, 8); }); }});
  r.push_back({"wr_memcpy: execmem text", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memcpy(w.text, src, 1); }); }});
  r.push_back({"wr_memset: stack destination", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memset(&w.stack_word, 0, 4); }); }});
  r.push_back({"wr_memset: write-once pool", EPERM, [](XWorld& w) { return bool_call([&] { return wr_memset(w.object(w.locked), 0, 1); }); }});
  r.push_back({"wr_memset: past the end", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_memset(w.object(w.rare), 0, 4096); }); }});
  r.push_back({"wr_memcpy_batch: NULL ops", EINVAL, [](XWorld&) { return bool_call([] { return wr_memcpy_batch(nullptr, 2); }); }});
  r.push_back({"wr_memcpy_batch: one bad target among good ones", EINVAL, [](XWorld& w) {
                 const wr_batch_op ops[] = {{w.object(w.rare, 0), src, 4}, {w.object(w.rare, 1), src, 4}, {&w.stack_word, src, 4}};
                 return bool_call([&] { return wr_memcpy_batch(ops, 3); });
               }});
  r.push_back({"wr_memcpy_batch: one write-once target", EPERM, [](XWorld& w) {
                 const wr_batch_op ops[] = {{w.object(w.rare, 2), src, 4}, {w.object(w.locked, 1), src, 4}};
                 return bool_call([&] { return wr_memcpy_batch(ops, 2); });
               }});
  r.push_back({"wr_publish_pointer: misaligned slot", EINVAL, [](XWorld& w) { return bool_call([&] { return wr_publish_pointer(w.object(w.rare, 3) + 1, src); }); }});
  r.push_back({"wr_publish_pointer: NULL slot", EINVAL, [](XWorld&) { return bool_call([] { return wr_publish_pointer(nullptr, src); }); }});
  r.push_back({"wr_publish_pointer: write-once pool", EPERM, [](XWorld& w) { return bool_call([&] { return wr_publish_pointer(w.object(w.locked, 4), src); }); }});
  r.push_back({"make_pool_ro: NULL pool", EINVAL, [](XWorld&) { return code_call([] { return pmalloc_make_pool_ro(nullptr); }); }});
  r.push_back({"make_pool_ro: destroyed pool", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_make_pool_ro(w.dead); }); }});
  r.push_back({"make_pool_ro: pool data as pool", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_make_pool_ro(reinterpret_cast<pmalloc_pool*>(w.object(w.rare))); }); }});
  // execmem.
  r.push_back({"execmem_alloc: unknown type 7", EINVAL, [](XWorld&) { return pointer_call([] { return execmem_alloc(static_cast<execmem_type>(7), 64); }); }});
  r.push_back({"execmem_alloc: type -1", EINVAL, [](XWorld&) { return pointer_call([] { return execmem_alloc(static_cast<execmem_type>(-1), 64); }); }});
  r.push_back({"execmem_alloc: size 0", EINVAL, [](XWorld&) { return pointer_call([] { return execmem_alloc(EXECMEM_TEXT, 0); }); }});
  r.push_back({"execmem_alloc: SIZE_MAX", ENOMEM, [](XWorld&) { return pointer_call([] { return execmem_alloc(EXECMEM_DATA, SIZE_MAX); }); }});
  r.push_back({"execmem_update_copy: stack destination", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_update_copy(&w.stack_word, src, 4); }); }});
  r.push_back({"execmem_update_copy: NULL destination", EINVAL, [](XWorld&) { return code_call([] { return execmem_update_copy(nullptr, src, 4); }); }});
  r.push_back({"execmem_update_copy: NULL source", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_update_copy(w.text, nullptr, 4); }); }});
  r.push_back({"execmem_update_copy: past the end", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_update_copy(w.text + 190, src, 16); }); }});
  r.push_back({"execmem_update_copy: wraps around", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_update_copy(w.text + 8, src, SIZE_MAX); }); }});
  r.push_back({"execmem_update_copy: plain data", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_update_copy(w.data, src, 4); }); }});
  r.push_back({"execmem_update_copy: a pool allocation", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_update_copy(w.object(w.rare), src, 4); }); }});
  r.push_back({"execmem_update_copy: freed text", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_update_copy(w.freed_text, src, 4); }); }});
  r.push_back({"execmem_free: stack pointer", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_free(&w.stack_word); }); }});
  r.push_back({"execmem_free: interior pointer", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_free(w.text + 64); }); }});
  r.push_back({"execmem_free: double free", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_free(w.freed_text); }); }});
  r.push_back({"execmem_free: a pool allocation", EINVAL, [](XWorld& w) { return code_call([&] { return execmem_free(w.object(w.open)); }); }});
  r.push_back({"execmem_get_stats: NULL output", EINVAL, [](XWorld&) { return code_call([] { return execmem_get_stats(EXECMEM_TEXT, nullptr); }); }});
  r.push_back({"execmem_get_stats: unknown type", EINVAL, [](XWorld&) {
                 execmem_stats s{};
                 return code_call([&] { return execmem_get_stats(static_cast<execmem_type>(9), &s); });
               }});
  // Sealed caches.
  r.push_back({"cache_create: object size 0", EINVAL, [](XWorld&) { return pointer_call([] { return pmalloc_cache_create("x", 0, 0, 0); }); }});
  r.push_back({"cache_create: object size SIZE_MAX", EINVAL, [](XWorld&) { return pointer_call([] { return pmalloc_cache_create("x", SIZE_MAX, 0, 0); }); }});
  r.push_back({"cache_create: alignment 3", EINVAL, [](XWorld&) { return pointer_call([] { return pmalloc_cache_create("x", 64, 3, 0); }); }});
  r.push_back({"cache_create: alignment 8192", EINVAL, [](XWorld&) { return pointer_call([] { return pmalloc_cache_create("x", 64, 8192, 0); }); }});
  r.push_back({"cache_create: flag PMALLOC_WR", EINVAL, [](XWorld&) { return pointer_call([] { return pmalloc_cache_create("x", 64, 0, PMALLOC_WR); }); }});
  r.push_back({"cache_create: unknown flag", EINVAL, [](XWorld&) { return pointer_call([] { return pmalloc_cache_create("x", 64, 0, 0x100u); }); }});
  r.push_back({"cache_create: name too long", EINVAL, [](XWorld&) {
                 const std::string name(PMALLOC_NAME_MAX + 1, 'c');
                 return pointer_call([&] { return pmalloc_cache_create(name.c_str(), 64, 0, 0); });
               }});
  auto init = [](void*, const void*, void*) { return 0; };
  r.push_back({"cache_alloc_init: NULL cache", EINVAL, [init](XWorld&) { return pointer_call([&] { return pmalloc_cache_alloc_init(nullptr, init, nullptr); }); }});
  r.push_back({"cache_alloc_init: a pool as cache", EINVAL, [init](XWorld& w) {
                 return pointer_call([&] { return pmalloc_cache_alloc_init(reinterpret_cast<pmalloc_cache*>(w.open), init, nullptr); });
               }});
  r.push_back({"cache_alloc_init: NULL init", EINVAL, [](XWorld& w) { return pointer_call([&] { return pmalloc_cache_alloc_init(w.cache, nullptr, nullptr); }); }});
  r.push_back({"cache_alloc_init: init refuses", ECANCELED, [](XWorld& w) {
                 return pointer_call([&] { return pmalloc_cache_alloc_init(w.cache, [](void*, const void*, void*) { return 7; }, nullptr); });
               }});
  r.push_back({"cache_free: NULL object", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_free(w.cache, nullptr); }); }});
  r.push_back({"cache_free: interior pointer", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_free(w.cache, w.blobs[1].p + 8); }); }});
  r.push_back({"cache_free: double free", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_free(w.cache, w.freed_object); }); }});
  r.push_back({"cache_free: another cache's object", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_free(w.cache, w.blobs[6].p); }); }});
  r.push_back({"cache_free: a pool allocation", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_free(w.cache, w.object(w.open)); }); }});
  r.push_back({"cache_free: stack pointer", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_free(w.cache, &w.stack_word); }); }});
  r.push_back({"cache_free: NULL cache", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_free(nullptr, w.blobs[0].p); }); }});
  r.push_back({"cache_free_many: one bad object among good ones", EINVAL, [](XWorld& w) {
                 const void* objs[] = {w.blobs[2].p, w.blobs[3].p, &w.stack_word};
                 return code_call([&] { return pmalloc_cache_free_many(w.cache, objs, 3); });
               }});
  r.push_back({"cache_free_many: the same object twice", EINVAL, [](XWorld& w) {
                 const void* objs[] = {w.blobs[4].p, w.blobs[4].p};
                 return code_call([&] { return pmalloc_cache_free_many(w.cache, objs, 2); });
               }});
  r.push_back({"cache_stats: NULL output", EINVAL, [](XWorld& w) { return code_call([&] { return pmalloc_cache_stats(w.cache, nullptr); }); }});
  r.push_back({"cache_stats: NULL cache", EINVAL, [](XWorld&) {
                 pmalloc_stats s{};
                 return code_call([&] { return pmalloc_cache_stats(nullptr, &s); });
               }});
  r.push_back({"cache_name: NULL cache", EINVAL, [](XWorld&) { return pointer_call([] { return pmalloc_cache_name(nullptr); }); }});
  r.push_back({"cache_object_size: NULL cache", EINVAL, [](XWorld&) {
                 errno = 0;
                 return pmalloc_cache_object_size(nullptr) == 0 ? errno : -1;
               }});
  // Stats printing.
  r.push_back({"stats_print: unknown format", EINVAL, [](XWorld&) {
                 std::FILE* out = std::tmpfile();
                 errno = 0;
                 pmalloc_stats_print(out, "xml");
                 const int e = errno;
                 const long written = std::ftell(out);
                 std::fclose(out);
                 return written == 0 ? e : -3;
               }});
  return r;
}

TEST(BadInput, ExtensionApisRefuseAndNothingChanges) {
  XWorld w;
  ASSERT_NE(w.cache, nullptr);
  ASSERT_NE(w.text, nullptr);
  for (const Blob& b : w.blobs) ASSERT_NE(b.p, nullptr);
  const std::vector<XRow> table = xrows();
  for (const XRow& row : table) {
    const XSnapshot before = xsnapshot(w);
    pmalloc::internal::clear_error();
    const int got = row.call(w);
    EXPECT_EQ(got, row.expect) << row.name << " (got " << got << ": " << pmalloc_last_error() << ")";
    EXPECT_STRNE(pmalloc_last_error(), "") << row.name << ": no reason recorded";
    expect_x_intact(w, before, row.name);
  }
}

}  // namespace
