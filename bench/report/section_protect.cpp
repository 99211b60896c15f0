// Section "protect": the cost of write-protecting data as the amount grows, pmalloc
// (one mprotect per region) against the floor (one mprotect over the same bytes) and the
// per-object schemes (sodium_mprotect_readonly / mprotect per object).
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <utility>

#include "cells.hpp"
#include "report.hpp"

namespace bench {
namespace {

constexpr std::size_t kObject = 256;

struct ProtectRun {
  double seconds = 0;
  std::size_t regions = 0;  // pmalloc: regions of the pool
};

// Seconds to protect `bytes` of written data under `kind` (mmap kind with whole = true:
// the single-mprotect floor).
ChildResult<ProtectRun> protect_cost(SchemeKind kind, std::size_t bytes, bool whole) {
  return in_child<ProtectRun>([&] {
    ProtectRun r;
    if (whole) {
      void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) std::abort();
      std::memset(m, 1, bytes);
      const auto t0 = Clock::now();
      if (mprotect(m, bytes, PROT_READ) != 0) std::abort();
      r.seconds = seconds_since(t0);
      return r;
    }
    const std::size_t n = bytes / kObject;
    std::vector<void*> objects(n);
    auto scheme = make_scheme(kind);
    for (std::size_t i = 0; i < n; ++i) {
      objects[i] = scheme->alloc(kObject);
      if (objects[i] == nullptr) std::_Exit(4);
      std::memset(objects[i], 1, kObject);
    }
    const auto t0 = Clock::now();
    if (scheme->protect(objects.data(), n, kObject) != 0) std::_Exit(5);
    r.seconds = seconds_since(t0);
    r.regions = scheme->regions();
    return r;
  });
}

}  // namespace

void section_protect(Context& ctx) {
  std::vector<std::size_t> sizes;
  for (std::size_t b = 64u << 10; b <= (ctx.quick ? (16u << 20) : (256u << 20)); b *= 4) sizes.push_back(b);
  const int reps = ctx.quick ? 3 : 5;
  const std::size_t sodium_limit = 12000 * kObject;   // stay below sodium's mapping limit
  const std::size_t mmap_limit = 64u << 20;           // one page per 256-byte object: 16x the memory
  ctx.md << "Time to write-protect data of the given total size, made of " << kObject
         << "-byte objects that were all written first; median of " << reps
         << " forked runs. *one mprotect* is the floor: a single call over one mapping of the same size. "
            "sodium_malloc is run up to "
         << human_bytes(double(sodium_limit)) << " (it fails beyond ~16k objects), the mmap-per-object scheme up to "
         << human_bytes(double(mmap_limit))
         << " (and each only while a size's repetitions take less than " << (ctx.quick ? 2 : 5)
         << " s here; '-' marks what was not run).\n\n";
  std::vector<std::string> header{"data", "one mprotect"};
  for (SchemeKind k : all_schemes()) {
    if (k != SchemeKind::malloc) header.push_back(scheme_name(k));
  }
  header.push_back("pmalloc / one mprotect");
  header.push_back("pool regions");
  Table t(header);
  std::tuple<double, std::size_t, std::size_t> worst{0, 0, 0};  // ratio, data bytes, pool regions
  std::vector<Series> series{{"one mprotect", {}}};
  for (SchemeKind k : all_schemes()) {
    if (k != SchemeKind::malloc) series.push_back({scheme_name(k), {}});
  }
  for (std::size_t bytes : sizes) {
    ctx.progress("protect: %s", human_bytes(double(bytes)).c_str());
    std::size_t regions = 0;
    auto med = [&](SchemeKind k, bool whole) {
      std::vector<double> v;
      for (int i = 0; i < reps; ++i) {
        if (auto r = protect_cost(k, bytes, whole); r.ok) {
          v.push_back(r.value.seconds);
          if (k == SchemeKind::pmalloc && !whole) regions = r.value.regions;
        }
      }
      return median(v);
    };
    const double floor = med(SchemeKind::mmap, true);
    std::vector<std::string> row{human_bytes(double(bytes)), human_time(floor)};
    series[0].points.emplace_back(double(bytes) / 1024, floor * 1e6);
    double pm = 0;
    std::size_t si = 1;
    for (SchemeKind k : all_schemes()) {
      if (k == SchemeKind::malloc) continue;
      const double takes = double(reps) * predicted_seconds(k, kObject, bytes / kObject, ctx.machine.page_fault_seconds);
      const bool skip = (k == SchemeKind::sodium && bytes > sodium_limit) || (k == SchemeKind::mmap && bytes > mmap_limit) ||
                        (k != SchemeKind::pmalloc && takes > (ctx.quick ? 2.0 : 5.0));
      if (skip) {
        row.push_back("-");
      } else {
        const double s = med(k, false);
        if (k == SchemeKind::pmalloc) pm = s;
        row.push_back(human_time(s) + " (" + ratio(s, floor) + ")");
        series[si].points.emplace_back(double(bytes) / 1024, s * 1e6);
      }
      ++si;
    }
    row.push_back(ratio(pm, floor));
    row.push_back(std::to_string(regions));
    t.row(row);
    if (pm > 1.2 * floor) worst = std::max(worst, std::make_tuple(pm / floor, bytes, regions));
  }
  ctx.md << t.markdown()
         << "`pmalloc_protect_pool` makes one `mprotect` call per region (the first region has room for 64 MiB, "
            "the next ones for 256 MiB each), and a first protect updates the region headers in place before the "
            "call: every pool in this table up to 64 MiB is one `mprotect` and no other system call (strace). "
            "The rest is the page-table work, the same as for one `mprotect`, plus the pool's metadata pages.\n\n";
  if (const auto [worst_ratio, worst_bytes, worst_regions] = worst; worst_ratio > 0) {
    ctx.loss.push_back("Protecting a pool costs up to " + ratio(worst_ratio, 1.0) + " of one mprotect over the same bytes (" +
                       human_bytes(double(worst_bytes)) + ", " + std::to_string(worst_regions) +
                       " region(s), so as many mprotect calls): the call also covers the pool's metadata pages, and "
                       "medians of few runs of a sub-millisecond call vary from run to run here.");
  }
  Plot p;
  p.file = "protect-cost.png";
  p.title = "Time to write-protect data (256-byte objects)";
  p.xlabel = "data (KiB)";
  p.ylabel = "microseconds";
  p.logx = p.logy = true;
  p.series = series;
  ctx.md << ctx.plot(p);
}

}  // namespace bench
