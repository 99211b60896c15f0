// Section "throughput": allocations per second by object size for every scheme, the
// rollback path (allocate then pfree in reverse), and two threads sharing one pool.
#include <pmalloc/pmalloc.h>

#include <algorithm>
#include <thread>

#include "cells.hpp"
#include "report.hpp"

namespace bench {
namespace {

// Two threads allocate `each` 64-byte objects; shared = one pool for both.
ChildResult<double> two_threads(int mode, std::size_t each) {
  return in_child<double>([&] {
    pmalloc_pool* pools[2] = {pmalloc_create_pool("t0", 0), pmalloc_create_pool("t1", 0)};
    auto work = [&](int id) {
      pmalloc_pool* pool = pools[mode == 0 ? 0 : id];
      for (std::size_t i = 0; i < each; ++i) {
        void* p = mode == 2 ? std::malloc(64) : pmalloc(pool, 64);
        if (p == nullptr) std::abort();
        keep(p);
      }
    };
    const auto t0 = Clock::now();
    std::thread a(work, 0), b(work, 1);
    a.join();
    b.join();
    return seconds_since(t0);
  });
}

// Allocate n objects, then pfree them in reverse (the rollback of a rejected input).
ChildResult<double> rollback(std::size_t n, bool use_malloc) {
  return in_child<double>([&] {
    std::vector<void*> objects(n);
    pmalloc_pool* pool = pmalloc_create_pool("rollback", 0);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) objects[i] = use_malloc ? std::malloc(64) : pmalloc(pool, 64);
    for (std::size_t i = n; i-- > 0;) {
      if (use_malloc) {
        std::free(objects[i]);
      } else if (pfree(pool, objects[i]) != 0) {
        std::abort();
      }
    }
    return seconds_since(t0);
  });
}

std::string per_second(double seconds_per_op) {
  if (seconds_per_op <= 0) return "failed";
  const double r = 1.0 / seconds_per_op;
  if (r >= 1e6) return fmt(r / 1e6, 2) + " M/s";
  if (r >= 1e3) return fmt(r / 1e3, 1) + " k/s";
  return fmt(r, 0) + " /s";
}

}  // namespace

void section_throughput(Context& ctx) {
  const std::vector<std::size_t> sizes{16, 64, 256, 1024};
  const std::size_t count = ctx.quick ? 50000 : 100000;
  const std::size_t sodium_count = ctx.quick ? 2000 : 5000;  // below sodium's failure point; each costs 2 page faults
  const int reps = ctx.quick ? 3 : 5;
  ctx.md << "Allocations per second, each object written once after allocation (memset), on fresh memory: "
            "the cost a program pays per object, page faults included. Median of "
         << reps << " forked runs of " << with_commas(count) << " allocations or 8 MiB of objects, whichever is "
            "less (mmap per object: at most " << (ctx.quick ? "2,000" : "5,000") << "; sodium_malloc: "
         << with_commas(sodium_count)
         << "; each of its allocations maps fresh pages and makes several system calls, and it fails beyond "
            "~16k objects).\n\n";
  std::vector<std::string> header{"size"};
  for (SchemeKind k : all_schemes()) header.push_back(scheme_name(k));
  header.push_back("pmalloc / malloc (time)");
  Table t(header);
  std::vector<Series> series;
  for (SchemeKind k : all_schemes()) series.push_back(Series{scheme_name(k), {}});
  for (std::size_t size : sizes) {
    std::vector<std::string> row{std::to_string(size) + " B"};
    double pm = 0, ma = 0;
    std::size_t si = 0;
    for (SchemeKind k : all_schemes()) {
      // At most 8 MiB of objects per run (1M objects of 1 KiB would be page faults only).
      std::size_t n = std::min(count, (std::size_t{8} << 20) / size);
      if (k == SchemeKind::sodium) n = sodium_count;
      if (k == SchemeKind::mmap) n = std::min<std::size_t>(n, ctx.quick ? 2000 : 5000);
      std::vector<double> per;
      ctx.progress("throughput: %s %zu B", scheme_name(k), size);
      for (int i = 0; i < reps; ++i) {
        const auto r = alloc_time(k, size, n, true, false);
        if (r.ok && r.value.made == n) per.push_back(r.value.seconds / double(n));
      }
      const double s = median(per);
      if (k == SchemeKind::pmalloc) pm = s;
      if (k == SchemeKind::malloc) ma = s;
      row.push_back(per_second(s));
      if (s > 0) series[si].points.emplace_back(double(size), 1.0 / s);
      ++si;
    }
    row.push_back(ratio(pm, ma));
    t.row(row);
    if (pm > ma * 1.05) {
      ctx.loss.push_back("Allocating and initialising " + std::to_string(size) + "-byte objects: " + ratio(pm, ma) +
                         " of malloc's time.");
    }
  }
  ctx.md << t.markdown();

  ctx.md << "The allocator's own work, without page faults: the same allocations a second time, after the "
            "first batch was rolled back (`pfree` in reverse; malloc: `free`, trimming off). pmalloc's allocation "
            "takes the pool lock and validates the pool handle against the address registry on every call "
            "(the hardening that refuses a forged or stale handle); malloc's fast path does neither.\n\n";
  Table w({"size", "pmalloc", "malloc", "pmalloc / malloc (time)"});
  Series wp{"pmalloc, warm (no page faults)", {}}, wm{"malloc, warm (no page faults)", {}};
  for (std::size_t size : sizes) {
    std::vector<double> pm, ma;
    ctx.progress("throughput: warm %zu B", size);
    for (int i = 0; i < reps; ++i) {
      const std::size_t n = std::min(count, (std::size_t{8} << 20) / size);
      if (auto a = warm_alloc(true, size, n); a.ok) pm.push_back(a.value / double(n));
      if (auto b = warm_alloc(false, size, n); b.ok) ma.push_back(b.value / double(n));
    }
    const double p = median(pm), m = median(ma);
    w.row({std::to_string(size) + " B", per_second(p), per_second(m), ratio(p, m)});
    if (p > 0) wp.points.emplace_back(double(size), 1.0 / p);
    if (m > 0) wm.points.emplace_back(double(size), 1.0 / m);
  }
  ctx.md << w.markdown();
  series.push_back(wp);
  series.push_back(wm);
  Plot p;
  p.file = "throughput.png";
  p.title = "Allocations per second (allocate + initialise on fresh memory; warm: allocator work only)";
  p.xlabel = "object size (bytes)";
  p.ylabel = "allocations per second";
  p.logx = p.logy = true;
  p.extra = "set xtics (16, 64, 256, 1024)\nset xrange [12:1400]";
  p.series = series;
  ctx.md << ctx.plot(p);

  // Rollback and threads.
  std::vector<double> rb_p, rb_m, sh, own, mal;
  const std::size_t each = count / 2;
  for (int i = 0; i < reps; ++i) {
    ctx.progress("throughput: rollback and threads, run %d/%d", i + 1, reps);
    if (auto r = rollback(count, false); r.ok) rb_p.push_back(r.value);
    if (auto r = rollback(count, true); r.ok) rb_m.push_back(r.value);
    if (auto r = two_threads(0, each); r.ok) sh.push_back(r.value);
    if (auto r = two_threads(1, each); r.ok) own.push_back(r.value);
    if (auto r = two_threads(2, each); r.ok) mal.push_back(r.value);
  }
  const double n = double(count);
  Table r({"workload (64-byte objects)", "per object", "vs malloc"});
  r.row({"allocate then free in reverse: pmalloc + pfree", human_time(median(rb_p) / n), ratio(median(rb_p), median(rb_m))});
  r.row({"allocate then free in reverse: malloc + free", human_time(median(rb_m) / n), "1.00×"});
  r.row({"2 threads, one shared pool", human_time(median(sh) / n), ratio(median(sh), median(mal))});
  r.row({"2 threads, one pool each", human_time(median(own) / n), ratio(median(own), median(mal))});
  r.row({"2 threads, malloc", human_time(median(mal) / n), "1.00×"});
  ctx.md << "Rollback (what a parser does with a rejected input) and two threads allocating "
         << with_commas(each) << " objects each (wall time ÷ all objects; " << ctx.machine.cpus
         << " CPUs):\n\n"
         << r.markdown();
  if (median(sh) > median(own) * 1.2) {
    ctx.loss.push_back("Two threads sharing one pool serialise on its lock: " + ratio(median(sh), median(own)) +
                       " of the time with a pool per thread.");
  }
}

}  // namespace bench
