// Sealed object caches: the cost of creating one immutable 64-byte object, and the memory
// it occupies, side by side with the ways a program can get the same protection today.
//
//   WriterCall         one write-rare writer call (64 bytes into a read-only page): the
//                      reference; target: cache creation within 2x of it
//   CacheCreate        pmalloc_cache_alloc_init: reserve a slot, init a staging copy,
//                      write it (and the slot's live bit) through the writer
//   CacheCreateBatch   pmalloc_cache_alloc_init_many, 64 objects per call
//   CacheCreateFree    create + free (the slot is wiped through the writer)
//   MallocMemcpy       (a) malloc + memcpy: no protection at all (memory: malloc's own
//                      accounting, mallinfo2, since freed heap is reused)
//   SodiumReadonly     (b) sodium_malloc + memcpy + sodium_mprotect_readonly per object
//   PagePerObject      (c) a fresh page + memcpy + mprotect(PROT_READ) per object
//   PoolProtectEach    (c') a pmalloc pool: pmalloc + memcpy + pmalloc_protect_pool per object
//
// Every benchmark also reports the memory one object occupies (bytes_per_object, from the
// growth of the process's resident set over many objects, or the library's statistics
// where that is exact) and the kernel mappings it adds (maps_per_1k_objects).
// Results and the command that produced them: docs/bench/cache.md.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#ifdef PMALLOC_HAVE_SODIUM
#include <sodium.h>
#endif

#include "os/os.hpp"
#include "wr/writer.hpp"

namespace {

constexpr std::size_t kObject = 64;
const unsigned char kTemplate[kObject] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::size_t mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

int template_init(void* staging, const void*, void*) {
  std::memcpy(staging, kTemplate, kObject);
  return 0;
}

int template_init_many(void* staging, const void*, std::size_t, void*) {
  std::memcpy(staging, kTemplate, kObject);
  return 0;
}

// Memory of `count` objects made by make(), measured as resident-set growth.
template <class Make>
void report_memory(benchmark::State& state, std::size_t count, Make make) {
  const std::size_t rss = resident_bytes();
  const std::size_t maps = mappings();
  make(count);
  const std::size_t grown = resident_bytes() - rss;
  state.counters["bytes_per_object"] = static_cast<double>(grown) / static_cast<double>(count);
  state.counters["maps_per_1k_objects"] =
      (static_cast<double>(mappings()) - static_cast<double>(maps)) * 1000.0 / static_cast<double>(count);
}

void WriterCall(benchmark::State& state) {
  const std::size_t page = pmalloc::os::page_size();
  void* p = nullptr;
  if (pmalloc::os::reserve(page * 64, &p) != 0 || pmalloc::os::set_access(p, page * 64, pmalloc::os::Access::read) != 0) {
    state.SkipWithError("cannot map a page");
    return;
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto* dst = static_cast<unsigned char*>(p) + (i++ % 63) * kObject;
    if (pmalloc::internal::wr::write(dst, kTemplate, kObject, pmalloc::os::Access::read) != 0) {
      state.SkipWithError("writer failed");
      break;
    }
  }
  (void)pmalloc::os::release(p, page * 64);
  state.SetLabel(pmalloc::internal::wr::backend_name(pmalloc::internal::wr::backend()));
}
BENCHMARK(WriterCall);

void CacheCreate(benchmark::State& state) {
  pmalloc_cache* c = pmalloc_cache_create("bench", kObject, 0, static_cast<unsigned>(state.range(0)));
  for (auto _ : state) {
    const void* p = pmalloc_cache_alloc_init(c, template_init, nullptr);
    if (p == nullptr) {
      state.SkipWithError(pmalloc_last_error());
      break;
    }
    benchmark::DoNotOptimize(p);
  }
  pmalloc_stats s{};
  (void)pmalloc_cache_stats(c, &s);
  pmalloc_cache_destroy(c);
  // Exact figure from the statistics (all slabs, metadata not included) and the process's
  // view for 100,000 objects (everything included).
  state.counters["committed_per_object"] =
      s.allocations_live != 0 ? static_cast<double>(s.bytes_committed) / static_cast<double>(s.allocations_live) : 0;
  pmalloc_cache* m = pmalloc_cache_create("bench-memory", kObject, 0, static_cast<unsigned>(state.range(0)));
  report_memory(state, 100000, [&](std::size_t n) {
    std::vector<const void*> out(1000);
    for (std::size_t i = 0; i < n; i += out.size()) {
      if (pmalloc_cache_alloc_init_many(m, out.size(), out.data(), template_init_many, nullptr) != 0) std::abort();
    }
  });
  pmalloc_cache_destroy(m);
}
BENCHMARK(CacheCreate)->Arg(0)->Arg(PMALLOC_SEAL)->ArgName("flags");

void CacheCreateBatch(benchmark::State& state) {
  pmalloc_cache* c = pmalloc_cache_create("bench", kObject, 0, 0);
  std::vector<const void*> out(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    if (pmalloc_cache_alloc_init_many(c, out.size(), out.data(), template_init_many, nullptr) != 0) {
      state.SkipWithError(pmalloc_last_error());
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  pmalloc_cache_destroy(c);
}
BENCHMARK(CacheCreateBatch)->Arg(64)->ArgName("objects");

void CacheCreateFree(benchmark::State& state) {
  pmalloc_cache* c = pmalloc_cache_create("bench", kObject, 0, 0);
  // A standing population, so that the pair works inside a partly used slab.
  std::vector<const void*> standing(1000);
  if (pmalloc_cache_alloc_init_many(c, standing.size(), standing.data(), template_init_many, nullptr) != 0) {
    state.SkipWithError(pmalloc_last_error());
  }
  for (auto _ : state) {
    const void* p = pmalloc_cache_alloc_init(c, template_init, nullptr);
    if (p == nullptr || pmalloc_cache_free(c, p) != 0) {
      state.SkipWithError(pmalloc_last_error());
      break;
    }
  }
  pmalloc_cache_destroy(c);
}
BENCHMARK(CacheCreateFree);

void MallocMemcpy(benchmark::State& state) {
  std::vector<void*> keep;
  keep.reserve(1 << 22);
  for (auto _ : state) {
    void* p = std::malloc(kObject);
    std::memcpy(p, kTemplate, kObject);
    benchmark::DoNotOptimize(p);
    keep.push_back(p);
  }
  for (void* p : keep) std::free(p);
  // The resident set would not grow (the heap reuses what the loop above freed): count
  // what malloc itself hands out and keeps for 100,000 objects instead.
  std::vector<void*> mem;
  mem.reserve(100000);
  const std::size_t before = mallinfo2().uordblks;
  for (std::size_t i = 0; i < 100000; ++i) {
    void* p = std::malloc(kObject);
    std::memcpy(p, kTemplate, kObject);
    mem.push_back(p);
  }
  state.counters["bytes_per_object"] = static_cast<double>(mallinfo2().uordblks - before) / 100000.0;
  state.counters["maps_per_1k_objects"] = 0;
  for (void* p : mem) std::free(p);
}
BENCHMARK(MallocMemcpy);

#ifdef PMALLOC_HAVE_SODIUM
// Live sodium allocations are kept below ~16,000 (each costs kernel mappings; the
// default vm.max_map_count stops it near 16,377): they are freed, untimed, every 4,000.
void SodiumReadonly(benchmark::State& state) {
  if (sodium_init() < 0) {
    state.SkipWithError("sodium_init failed");
    return;
  }
  std::vector<void*> live;
  live.reserve(4000);
  for (auto _ : state) {
    void* p = sodium_malloc(kObject);
    if (p == nullptr) {
      state.SkipWithError("sodium_malloc failed");
      break;
    }
    std::memcpy(p, kTemplate, kObject);
    sodium_mprotect_readonly(p);
    live.push_back(p);
    if (live.size() == 4000) {
      state.PauseTiming();
      for (void* q : live) sodium_free(q);
      live.clear();
      state.ResumeTiming();
    }
  }
  for (void* q : live) sodium_free(q);
  live.clear();
  report_memory(state, 4000, [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      void* p = sodium_malloc(kObject);
      std::memcpy(p, kTemplate, kObject);
      sodium_mprotect_readonly(p);
      live.push_back(p);
    }
  });
  for (void* q : live) sodium_free(q);
}
BENCHMARK(SodiumReadonly);
#endif

// One fresh page per object, written, then made read-only: what a program does by hand.
void PagePerObject(benchmark::State& state) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  constexpr std::size_t kPages = 1 << 17;  // 512 MiB of address space, reused
  auto* arena = static_cast<unsigned char*>(
      mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (arena == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  std::size_t next = 0;
  for (auto _ : state) {
    if (next == kPages) {
      state.PauseTiming();
      munmap(arena, kPages * page);
      arena = static_cast<unsigned char*>(
          mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
      next = 0;
      state.ResumeTiming();
    }
    unsigned char* p = arena + next++ * page;
    std::memcpy(p, kTemplate, kObject);
    mprotect(p, page, PROT_READ);
  }
  munmap(arena, kPages * page);
  auto* mem = static_cast<unsigned char*>(
      mmap(nullptr, 20000 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  report_memory(state, 20000, [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(mem + i * page, kTemplate, kObject);
      mprotect(mem + i * page, page, PROT_READ);
    }
  });
  munmap(mem, 20000 * page);
}
BENCHMARK(PagePerObject);

// A pmalloc pool used for objects created one by one: protect after each object (new
// allocations then come from fresh pages beyond the protected ones).
void PoolProtectEach(benchmark::State& state) {
  pmalloc_pool* pool = pmalloc_create_pool("bench", 0);
  std::size_t n = 0;
  for (auto _ : state) {
    void* p = pmalloc(pool, kObject);
    if (p == nullptr) {
      state.SkipWithError(pmalloc_last_error());
      break;
    }
    std::memcpy(p, kTemplate, kObject);
    if (pmalloc_protect_pool(pool) != 0) {
      state.SkipWithError(pmalloc_last_error());
      break;
    }
    if (++n == 4000) {  // bound the address space: start a new pool (untimed)
      state.PauseTiming();
      pmalloc_destroy_pool(pool);
      pool = pmalloc_create_pool("bench", 0);
      n = 0;
      state.ResumeTiming();
    }
  }
  pmalloc_destroy_pool(pool);
  pmalloc_pool* m = pmalloc_create_pool("bench-memory", 0);
  report_memory(state, 2000, [&](std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      void* p = pmalloc(m, kObject);
      if (p == nullptr) std::abort();
      std::memcpy(p, kTemplate, kObject);
      if (pmalloc_protect_pool(m) != 0) std::abort();
    }
  });
  pmalloc_stats s{};
  (void)pmalloc_pool_stats(m, &s);
  state.counters["committed_per_object"] = static_cast<double>(s.bytes_committed) / 2000.0;
  pmalloc_destroy_pool(m);
}
BENCHMARK(PoolProtectEach);

}  // namespace

BENCHMARK_MAIN();
