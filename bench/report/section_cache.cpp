// Section "cache": sealed object caches (pmalloc/cache.h), objects that are read-only from
// their first moment and written once through the write-rare writer. Cost per object
// created, one at a time and in batches, and memory per object, against the two other ways
// of getting an immutable object: a pool (allocate + write, one protect for the lot) and
// sodium_malloc + write + sodium_mprotect_readonly per object.
#include <pmalloc/pmalloc.h>

#include <cstring>

#include "cells.hpp"
#include "report.hpp"

#ifdef PMALLOC_HAVE_SODIUM
#include <sodium.h>
#endif

namespace bench {
namespace {

constexpr std::size_t kObject = 64;

enum class Way { cache_one, cache_batch, pool, sodium };

const char* way_name(Way w) {
  switch (w) {
    case Way::cache_one: return "sealed cache, one object per call";
    case Way::cache_batch: return "sealed cache, batches of 256";
    case Way::pool: return "pool: allocate + write, one protect at the end";
    case Way::sodium: return "sodium_malloc + write + sodium_mprotect_readonly";
  }
  return "?";
}

int init_one(void* staging, const void*, void* ctx) {
  std::memset(staging, static_cast<int>(reinterpret_cast<std::uintptr_t>(ctx)), kObject);
  return 0;
}
int init_many(void* staging, const void*, std::size_t index, void*) {
  std::memset(staging, static_cast<int>(index), kObject);
  return 0;
}

struct CacheRun {
  double seconds = 0;  // per object
  double resident = 0; // per object
  int error = 0;
  int sealed = 0;
};

ChildResult<CacheRun> run(Way way, std::size_t n) {
  return in_child<CacheRun>([&] {
    CacheRun r;
    const unsigned seal = pmalloc_seal_supported() == 1 ? PMALLOC_SEAL : 0u;
    std::vector<const void*> objects(n);
    const Memory before = memory_now();
    const auto t0 = Clock::now();
    if (way == Way::cache_one || way == Way::cache_batch) {
      pmalloc_cache* c = pmalloc_cache_create("bench", kObject, 0, seal);
      if (c == nullptr) {
        r.error = errno;
        return r;
      }
      if (way == Way::cache_one) {
        for (std::size_t i = 0; i < n; ++i) {
          objects[i] = pmalloc_cache_alloc_init(c, init_one, reinterpret_cast<void*>(i & 0xFF));
          if (objects[i] == nullptr) {
            r.error = errno;
            return r;
          }
        }
      } else {
        for (std::size_t i = 0; i < n; i += 256) {
          const std::size_t k = n - i < 256 ? n - i : 256;
          if (int e = pmalloc_cache_alloc_init_many(c, k, objects.data() + i, init_many, nullptr)) {
            r.error = e;
            return r;
          }
        }
      }
      pmalloc_stats s{};
      if (pmalloc_cache_stats(c, &s) == 0) r.sealed = s.sealed;
    } else if (way == Way::pool) {
      pmalloc_pool* pool = pmalloc_create_pool("bench", seal);
      for (std::size_t i = 0; i < n; ++i) {
        void* p = pmalloc(pool, kObject);
        if (p == nullptr) {
          r.error = errno;
          return r;
        }
        std::memset(p, static_cast<int>(i), kObject);
        objects[i] = p;
      }
      if (int e = pmalloc_protect_pool(pool)) {
        r.error = e;
        return r;
      }
    } else {
#ifdef PMALLOC_HAVE_SODIUM
      if (sodium_init() < 0) std::abort();
      for (std::size_t i = 0; i < n; ++i) {
        void* p = sodium_malloc(kObject);
        if (p == nullptr) {
          r.error = errno;
          return r;
        }
        std::memset(p, static_cast<int>(i), kObject);
        if (sodium_mprotect_readonly(p) != 0) {
          r.error = errno;
          return r;
        }
        objects[i] = p;
      }
#else
      r.error = ENOSYS;
      return r;
#endif
    }
    r.seconds = seconds_since(t0) / double(n);
    const Memory after = memory_now();
    r.resident = double(after.rss - before.rss) / double(n);
    return r;
  });
}

}  // namespace

void section_cache(Context& ctx) {
  const std::size_t n = ctx.quick ? 5000 : 10000;
  const int reps = ctx.quick ? 3 : 5;
  ctx.md << with_commas(n) << " objects of " << kObject
         << " bytes, each written once and read-only afterwards (sealed where the kernel can); time and resident "
            "memory per object, median of "
         << reps
         << " forked runs. A cache object is never writable, not even while it is initialised (the writer "
            "copies a staging buffer into the read-only slot), so it can be created at any time; a pool object "
            "is writable until the pool is protected.\n\n";
  std::vector<Way> ways{Way::cache_one, Way::cache_batch, Way::pool};
#ifdef PMALLOC_HAVE_SODIUM
  ways.push_back(Way::sodium);
#endif
  Table t({"way", "time per object", "vs pool", "resident bytes per object", "vs pool"});
  std::vector<double> secs, mem;
  std::vector<std::string> fail;
  for (Way w : ways) {
    std::vector<double> s, m;
    std::string why;
    ctx.progress("cache: %s", way_name(w));
    for (int i = 0; i < reps; ++i) {
      const auto r = run(w, n);
      if (!r.ok || r.value.error != 0) {
        why = r.ok ? errno_name(r.value.error) : r.failure;
        continue;
      }
      s.push_back(r.value.seconds);
      m.push_back(r.value.resident);
    }
    secs.push_back(median(s));
    mem.push_back(median(m));
    fail.push_back(s.empty() ? why : "");
  }
  const double pool_s = secs[2], pool_m = mem[2];
  for (std::size_t i = 0; i < ways.size(); ++i) {
    if (!fail[i].empty()) {
      t.row({way_name(ways[i]), "failed: " + fail[i], "", "", ""});
      continue;
    }
    t.row({way_name(ways[i]), human_time(secs[i]), ratio(secs[i], pool_s), fmt(mem[i], 1), ratio(mem[i], pool_m)});
  }
  ctx.md << t.markdown();
  if (fail[0].empty()) {
    ctx.key.push_back({"sealed cache: time per 64-byte object, one per call vs batches of 256", "-",
                       ratio(secs[0], secs[1]) + " (" + human_time(secs[0]) + " vs " + human_time(secs[1]) + ")", "-"});
    ctx.loss.push_back("A sealed-cache object created on its own costs " + ratio(secs[0], pool_s) +
                       " the time of a pool object (one writer call per object); batches bring it to " +
                       ratio(secs[1], pool_s) + ".");
  }
}

}  // namespace bench
