// Section "targets": the three performance targets of issue 2, measured side by side.
//   1. resident bytes per allocation, 100,000 protected 64-byte objects (target <= 68);
//   2. allocation time pmalloc / malloc, 64-byte objects (target <= 1.0);
//   3. protecting a 40 MiB pool vs one mprotect over 40 MiB (target <= 1.2x), and vs
//      page-by-page mprotect.
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>

#include "cells.hpp"
#include "report.hpp"

namespace bench {
namespace {

constexpr long kSysMseal = 462;  // x86-64 (and generic) syscall number of mseal(2)

void bytes_per_allocation(Context& ctx) {
  constexpr std::size_t kCount = 100000, kSize = 64;
  ctx.md << "### 1. Resident bytes per allocation: 100,000 protected 64-byte objects\n\n"
            "Each object allocated, initialised with `memset`, then protected by the scheme's own "
            "means; resident anonymous memory (`RssAnon`) and page tables (`VmPTE`) from `/proc/self/status` measured before and after in a "
            "forked child. Target: ≤ 68 bytes (64 is the physical limit).\n\n";
  Table t({"scheme", "objects", "resident bytes / object", "+ page tables / object", "vs pmalloc",
           "kernel mappings added", "protected?"});
  double pm = 0;
  for (SchemeKind k : all_schemes()) {
    ctx.progress("targets: footprint %s", scheme_name(k));
    const auto r = footprint(k, kSize, kCount);
    if (!r.ok) {
      t.row({scheme_name(k), "-", "child " + r.failure, "", "", "", ""});
      continue;
    }
    const Footprint& f = r.value;
    if (k == SchemeKind::pmalloc) pm = f.rss_per_object;
    std::string objects = with_commas(f.made);
    if (f.error != 0) objects += " (" + failure_text(k, f) + ")";
    t.row({scheme_name(k), objects, fmt(f.rss_per_object, 1), fmt(f.pte_per_object, 2),
           ratio(f.rss_per_object, pm), std::to_string(f.mappings),
           k == SchemeKind::malloc ? "no" : (f.protected_n == f.made ? "yes" : "partly")});
    if (k == SchemeKind::pmalloc) {
      ctx.key.push_back({"resident bytes per protected 64-byte object (100,000 objects)", "≤ 68",
                         fmt(f.rss_per_object, 1) + " B", f.rss_per_object <= 68 ? "met" : "missed"});
    }
  }
  ctx.md << t.markdown();
}

void allocation_time(Context& ctx) {
  const std::size_t count = 100000;
  const int reps = ctx.quick ? 5 : 11;
  ctx.md << "### 2. Allocation time, pmalloc / malloc, 64-byte objects\n\n"
         << "Time to allocate " << with_commas(count) << " objects, median of " << reps
         << " runs, each in a fresh forked child (pool creation excluded: one warm-up allocation sets up "
            "the first region). Two situations, because on this machine a first-touch page fault costs "
         << human_time(ctx.machine.page_fault_seconds)
         << " (measured at start), which dwarfs an allocator's own work:\n\n"
            "- *cold*: fresh memory. malloc writes a chunk header into every data page it hands out and so "
            "takes the page faults during allocation; pmalloc keeps its metadata outside the data and only "
            "touches its bitmaps (the data pages fault later, when the caller writes). *alloc + init* "
            "(memset of each object) puts both on the same footing; *+ protect* adds "
            "`pmalloc_protect_pool` (malloc has nothing to add).\n"
            "- *warm*: the same allocations again after the first batch was rolled back (`pfree` in reverse) "
            "or freed, with malloc's trimming off: no page faults, only the allocator's own work.\n\n"
            "Target: ratio ≤ 1.0.\n\n";
  Table t({"variant", "pmalloc per object", "malloc per object", "pmalloc / malloc", "target ≤ 1.0"});
  struct Variant {
    const char* name;
    bool init, protect;
  } variants[] = {{"cold: alloc only", false, false},
                  {"cold: alloc + init", true, false},
                  {"cold: alloc + init + protect", true, true}};
  auto add_row = [&](const std::string& name, double p, double m) {
    t.row({name, human_time(p), human_time(m), ratio(p, m), p <= m ? "met" : "missed"});
    ctx.key.push_back({"allocation time pmalloc / malloc, 64-byte objects, " + name, "≤ 1.0",
                       ratio(p, m) + " (" + human_time(p) + " vs " + human_time(m) + ")", p <= m ? "met" : "missed"});
    if (p > m) {
      ctx.loss.push_back("Allocation (" + name + ") is slower than glibc malloc: " + ratio(p, m) + " for 64-byte objects (" +
                         human_time(p) + " vs " + human_time(m) + " per allocation).");
    }
  };
  for (const Variant& v : variants) {
    std::vector<double> pm, ma;
    ctx.progress("targets: allocation time (%s)", v.name);
    for (int i = 0; i < reps; ++i) {
      const auto a = alloc_time(SchemeKind::pmalloc, 64, count, v.init, v.protect);
      const auto b = alloc_time(SchemeKind::malloc, 64, count, v.init, false);
      if (a.ok) pm.push_back(a.value.seconds / double(count));
      if (b.ok) ma.push_back(b.value.seconds / double(count));
    }
    add_row(v.name, median(pm), median(ma));
  }
  {
    std::vector<double> pm, ma;
    ctx.progress("targets: allocation time (warm)");
    for (int i = 0; i < reps; ++i) {
      if (auto a = warm_alloc(true, 64, count); a.ok) pm.push_back(a.value / double(count));
      if (auto b = warm_alloc(false, 64, count); b.ok) ma.push_back(b.value / double(count));
    }
    add_row("warm: alloc only", median(pm), median(ma));
  }
  ctx.md << t.markdown();
}

struct ProtectTimes {
  double pool = 0;       // pmalloc_protect_pool
  double pool_seal = 0;  // with PMALLOC_SEAL
  double single = 0;     // one mprotect
  double single_seal = 0;// one mprotect + one mseal
  double per_page = 0;   // one mprotect per page
  double four_calls = 0; // the same 40 MiB mapping protected in 4 calls (1, 4, 16, 19 MiB)
};

// One repetition in a child. Every figure is the FIRST protection of freshly written
// memory, as for a pool (a later mprotect of the same pages is markedly cheaper on this
// kernel, which would flatter the baseline). The mappings are measured before the pools
// in odd runs and after them in even ones, so that neither side profits from its order.
ChildResult<ProtectTimes> protect_once(std::size_t bytes, bool page_by_page, bool mappings_first) {
  return in_child<ProtectTimes>([&] {
    ProtectTimes r;
    auto fresh = [&] {
      void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) std::abort();
      std::memset(m, 1, bytes);
      return m;
    };
    auto mappings = [&] {
      void* m = fresh();
      auto t0 = Clock::now();
      if (mprotect(m, bytes, PROT_READ) != 0) std::abort();
      r.single = seconds_since(t0);
      munmap(m, bytes);
      m = fresh();
      t0 = Clock::now();
      if (mprotect(m, bytes, PROT_READ) != 0) std::abort();
      (void)syscall(kSysMseal, m, bytes, 0UL);
      r.single_seal = seconds_since(t0);  // sealed: stays mapped until the child exits
      // What splitting alone costs: the ranges of a pool in 1, 4, 16 and 64 MiB regions.
      m = fresh();
      t0 = Clock::now();
      for (std::size_t off = 0, part = std::size_t{1} << 20; off < bytes; off += part, part *= 4) {
        if (mprotect(static_cast<char*>(m) + off, std::min(part, bytes - off), PROT_READ) != 0) std::abort();
      }
      r.four_calls = seconds_since(t0);
      munmap(m, bytes);
      if (page_by_page) {
        m = fresh();
        t0 = Clock::now();
        for (std::size_t off = 0; off < bytes; off += page_size()) {
          if (mprotect(static_cast<char*>(m) + off, page_size(), PROT_READ) != 0) std::abort();
        }
        r.per_page = seconds_since(t0);
        munmap(m, bytes);
      }
    };
    // The first mprotect of freshly written memory in a process costs about a third more
    // than later ones here, whatever it protects; unwarmed, the side measured first would
    // lose, and the per-run ratios would split into two clusters. A throwaway protection
    // of the same size puts both sides in the same state.
    {
      void* warm = fresh();
      if (mprotect(warm, bytes, PROT_READ) != 0) std::abort();
      munmap(warm, bytes);
    }
    if (mappings_first) mappings();
    for (int seal = 0; seal < 2; ++seal) {
      pmalloc_pool* pool = pmalloc_create_pool("protect", seal ? PMALLOC_SEAL : PMALLOC_RO);
      constexpr std::size_t kObject = 64;
      for (std::size_t done = 0; done < bytes; done += kObject) {
        void* p = pmalloc(pool, kObject);
        if (p == nullptr) std::abort();
        std::memset(p, 1, kObject);
      }
      const auto t0 = Clock::now();
      if (pmalloc_protect_pool(pool) != 0) std::abort();
      (seal ? r.pool_seal : r.pool) = seconds_since(t0);
      pmalloc_destroy_pool(pool);  // sealed pages stay mapped: the child exits soon
    }
    if (!mappings_first) mappings();
    return r;
  });
}

void protect_40mib(Context& ctx) {
  constexpr std::size_t kBytes = 40u << 20;
  const int reps = ctx.quick ? 3 : 9;
  ctx.md << "### 3. Protecting a 40 MiB pool\n\n"
         << "A pool filled with 40 MiB of 64-byte objects (all written), protected with "
            "`pmalloc_protect_pool`, against one `mprotect(PROT_READ)` over a 40 MiB anonymous mapping "
            "that was written the same way, against protecting such a mapping page by page (10,240 calls), and "
            "against protecting it in 4 calls over the ranges a pool of 1, 4, 16 and 64 MiB regions would have "
            "(what the number of calls alone costs). "
            "Every figure is the first protection of freshly written memory (a repeated mprotect of the same pages "
            "is markedly cheaper here), and mappings and pools take turns going first, after one throwaway "
            "protection of another freshly written 40 MiB mapping in the same child (the first mprotect of a "
            "process is about a third slower here, whichever side it is). Sealed variants: "
            "`PMALLOC_SEAL` against one `mprotect` + one `mseal`. "
         << reps
         << " runs, each in a forked child; the times are medians, the ratios are medians of the per-run "
            "ratios (both sides of a ratio measured in the same child, seconds apart, which cancels most of the "
            "machine's noise). Target: pool / single mprotect ≤ 1.2×.\n\n";
  std::vector<double> pool, pool_seal, single, single_seal, per_page, four, r_pool, r_seal, r_page, r_single_seal, r_four;
  for (int i = 0; i < reps; ++i) {
    ctx.progress("targets: protect 40 MiB, run %d/%d", i + 1, reps);
    const auto r = protect_once(kBytes, true, i % 2 == 1);
    if (!r.ok || r.value.single <= 0) continue;
    const ProtectTimes& v = r.value;
    pool.push_back(v.pool);
    pool_seal.push_back(v.pool_seal);
    single.push_back(v.single);
    single_seal.push_back(v.single_seal);
    per_page.push_back(v.per_page);
    four.push_back(v.four_calls);
    r_four.push_back(v.four_calls / v.single);
    r_pool.push_back(v.pool / v.single);
    r_seal.push_back(v.pool_seal / v.single);
    r_page.push_back(v.per_page / v.single);
    r_single_seal.push_back(v.single_seal / v.single);
  }
  const double rp = median(r_pool);
  auto x = [](double r) { return ratio(r, 1.0); };
  Table t({"what", "time (median)", "vs one mprotect (median of per-run ratios)", "range of the per-run ratios"});
  auto range = [](std::vector<double> v) {
    if (v.empty()) return std::string("-");
    std::sort(v.begin(), v.end());
    return fmt(v.front(), 2) + " … " + fmt(v.back(), 2);
  };
  t.row({"one mprotect over 40 MiB", human_time(median(single)), "1.00×", ""});
  t.row({"pmalloc_protect_pool (40 MiB pool)", human_time(median(pool)), x(rp), range(r_pool)});
  t.row({"the same mapping protected in 4 calls (1, 4, 16, 19 MiB)", human_time(median(four)), x(median(r_four)),
         range(r_four)});
  t.row({"mprotect page by page (10,240 calls)", human_time(median(per_page)), x(median(r_page)), range(r_page)});
  t.row({"one mprotect + one mseal over 40 MiB", human_time(median(single_seal)), x(median(r_single_seal)),
         range(r_single_seal)});
  t.row({"pmalloc_protect_pool with PMALLOC_SEAL", human_time(median(pool_seal)), x(median(r_seal)), range(r_seal)});
  ctx.md << t.markdown();
  ctx.key.push_back({"protecting a 40 MiB pool vs one mprotect over 40 MiB", "≤ 1.2×",
                     x(rp) + " (" + human_time(median(pool)) + " vs " + human_time(median(single)) + ")",
                     rp <= 1.2 ? "met" : "missed"});
  ctx.key.push_back({"page-by-page mprotect over 40 MiB vs one mprotect", "-", x(median(r_page)), "-"});
  if (rp > 1.2) {
    ctx.loss.push_back("Protecting a 40 MiB pool costs " + x(rp) + " of one mprotect over 40 MiB (" +
                       "one mprotect call: the pool is one region).");
  }
}

}  // namespace

void section_targets(Context& ctx) {
  ctx.md << "The three figures issue 2 sets targets for. Every row is measured in this run.\n\n";
  bytes_per_allocation(ctx);
  allocation_time(ctx);
  protect_40mib(ctx);
}

}  // namespace bench
