// Section "check": latency of is_pmalloc_object (pmalloc/check.h), the query behind the
// hardened-usercopy checks, by kind of range and number of live pools, next to the
// operations it would guard or resemble: a 64-byte memcpy and glibc's
// malloc_usable_size (the cheapest "what is this heap pointer" query malloc offers).
#include <malloc.h>
#include <pmalloc/pmalloc.h>

#include <cstring>

#include "cells.hpp"
#include "report.hpp"

namespace bench {
namespace {

struct CheckTimes {
  double ok = 0, none_heap = 0, none_stack = 0, bad_cross = 0, bad_guard = 0, usercopy = 0;
  double memcpy64 = 0, usable_size = 0;
  int sane = 0;  // 1 when every classification was the expected one
};

constexpr std::size_t kTargets = 1024;  // pointers cycled through (power of two)

template <class F>
double per_call(std::size_t iterations, F&& f) {
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < iterations; ++i) f(i & (kTargets - 1));
  return seconds_since(t0) / double(iterations);
}

ChildResult<CheckTimes> measure(std::size_t pools, std::size_t iterations) {
  return in_child<CheckTimes>([&] {
    CheckTimes r;
    std::vector<pmalloc_pool*> all(pools);
    std::vector<char*> objects;  // 64-byte objects, spread over the pools
    std::vector<char*> firsts;   // each pool's first object: right after its metadata
    for (std::size_t i = 0; i < pools; ++i) {
      all[i] = pmalloc_create_pool("check", PMALLOC_RO);
      for (int j = 0; j < 16; ++j) objects.push_back(static_cast<char*>(pmalloc(all[i], 64)));
      firsts.push_back(objects[objects.size() - 16]);
      if (pmalloc_protect_pool(all[i]) != 0) std::abort();
    }
    std::vector<const char*> ok(kTargets), cross(kTargets), guard(kTargets), heap(kTargets);
    for (std::size_t i = 0; i < kTargets; ++i) {
      char* o = objects[(i * 7919) % (objects.size() - 1)];
      ok[i] = o + (i % 32);
      cross[i] = o + 32;                 // 64 bytes from here cross into the next object
      guard[i] = firsts[i % pools] - 64;  // the pool's metadata, just before its data
      heap[i] = static_cast<const char*>(std::malloc(64));
    }
    char stack_buf[64] = {};
    r.sane = 1;
    for (std::size_t i = 0; i < kTargets; ++i) {
      if (is_pmalloc_object(ok[i], 32) != PMALLOC_OBJECT_OK) r.sane = 0;
      if (is_pmalloc_object(cross[i], 64) != PMALLOC_OBJECT_BAD) r.sane = 0;
      if (is_pmalloc_object(heap[i], 64) != PMALLOC_OBJECT_NONE) r.sane = 0;
      if (is_pmalloc_object(guard[i], 16) != PMALLOC_OBJECT_BAD) r.sane = 0;
    }
    long sink = 0;
    r.ok = per_call(iterations, [&](std::size_t i) { sink += is_pmalloc_object(ok[i], 32); });
    r.none_heap = per_call(iterations, [&](std::size_t i) { sink += is_pmalloc_object(heap[i], 64); });
    r.none_stack = per_call(iterations, [&](std::size_t) { sink += is_pmalloc_object(stack_buf, 64); });
    r.bad_cross = per_call(iterations, [&](std::size_t i) { sink += is_pmalloc_object(cross[i], 64); });
    r.bad_guard = per_call(iterations, [&](std::size_t i) { sink += is_pmalloc_object(guard[i], 16); });
    r.usercopy = per_call(iterations, [&](std::size_t i) { pmalloc_usercopy_check(ok[i], 32, false); });
    char dst[64];
    r.memcpy64 = per_call(iterations, [&](std::size_t i) {
      std::memcpy(dst, ok[i], 32);
      keep(dst[0]);
    });
    r.usable_size = per_call(iterations, [&](std::size_t i) { sink += static_cast<long>(malloc_usable_size(const_cast<char*>(heap[i]))); });
    keep(sink);
    return r;
  });
}

}  // namespace

void section_check(Context& ctx) {
  const std::vector<std::size_t> pool_counts = ctx.quick ? std::vector<std::size_t>{1, 100}
                                                         : std::vector<std::size_t>{1, 100, 1000};
  const std::size_t iterations = ctx.quick ? 500000 : 2000000;
  const int reps = 3;
  ctx.md << "`is_pmalloc_object(p, n)` per call, cycling through " << kTargets
         << " different pointers, median of " << reps
         << " forked runs, with 1 … " << pool_counts.back()
         << " live protected pools of 16 objects each. For scale: a 32-byte memcpy out of a pool object, and "
            "glibc's `malloc_usable_size` on a heap pointer.\n\n";
  std::vector<std::string> header{"range"};
  for (std::size_t p : pool_counts) header.push_back(std::to_string(p) + (p == 1 ? " pool" : " pools"));
  header.push_back("vs 32-byte memcpy (" + std::to_string(pool_counts.back()) + " pools)");
  Table t(header);
  std::vector<std::vector<double>> cols;  // per pool count: the eight medians
  bool sane = true;
  for (std::size_t pools : pool_counts) {
    ctx.progress("check: %zu pools", pools);
    std::vector<std::vector<double>> v(8);
    for (int i = 0; i < reps; ++i) {
      const auto r = measure(pools, iterations);
      if (!r.ok) continue;
      sane = sane && r.value.sane == 1;
      const double f[8] = {r.value.ok, r.value.none_heap, r.value.none_stack, r.value.bad_cross,
                           r.value.bad_guard, r.value.usercopy, r.value.memcpy64, r.value.usable_size};
      for (int k = 0; k < 8; ++k) v[k].push_back(f[k]);
    }
    std::vector<double> med;
    for (auto& x : v) med.push_back(median(x));
    cols.push_back(med);
  }
  const char* names[8] = {"inside a live object → OK",
                          "heap pointer → NONE",
                          "stack buffer → NONE",
                          "crossing two objects → BAD",
                          "pool metadata → BAD",
                          "pmalloc_usercopy_check (inside an object)",
                          "memcpy of 32 bytes (for scale)",
                          "malloc_usable_size (for scale)"};
  for (int k = 0; k < 8; ++k) {
    std::vector<std::string> row{names[k]};
    for (const auto& c : cols) row.push_back(human_time(c[static_cast<std::size_t>(k)]));
    row.push_back(k < 6 ? ratio(cols.back()[static_cast<std::size_t>(k)], cols.back()[6]) : "");
    t.row(row);
  }
  ctx.md << t.markdown();
  if (!sane) ctx.md << "**Warning: some classification came out other than expected in this run.**\n\n";
  const double ok_many = cols.back()[0], ok_one = cols.front()[0];
  ctx.key.push_back({"is_pmalloc_object, inside an object, " + std::to_string(pool_counts.back()) + " pools vs 1 pool",
                     "-", ratio(ok_many, ok_one) + " (" + human_time(ok_many) + ")", "-"});
}

}  // namespace bench
