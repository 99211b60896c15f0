// Section "execmem": executable memory for JITs (pmalloc/execmem.h). How densely small
// functions are packed (pages and mappings they take) and what rewriting code costs,
// against the usual way: one mmap per function, written, then mprotect(PROT_READ|EXEC),
// and updated through an mprotect window (RX -> RW, memcpy, RW -> RX).
// The execmem component's own, larger benchmark is bench/execmem_bench.cpp
// (docs/bench/execmem.md); this section puts the key figures into the report.
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>

#include <cstring>

#include "cells.hpp"
#include "report.hpp"

namespace bench {
namespace {

struct Packing {
  std::size_t functions = 0;
  std::size_t bytes = 0;  // sum of the function sizes
  double resident = 0;    // RssAnon growth
  long mappings = 0;
  double seconds = 0;     // allocate + write + make executable, all functions
  int error = 0;
};

std::size_t function_size(std::size_t i) { return 100 + (i * 2654435761u) % 201; }  // 100..300 bytes

ChildResult<Packing> pack(bool use_execmem, std::size_t n) {
  return in_child<Packing>([&] {
    Packing r;
    std::vector<unsigned char> code(400, 0xC3);  // ret
    std::vector<void*> fns(n);
    const Memory before = memory_now(true);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t size = function_size(i);
      r.bytes += size;
      if (use_execmem) {
        fns[i] = execmem_alloc(EXECMEM_TEXT, size);
        if (fns[i] == nullptr || execmem_update_copy(fns[i], code.data(), size) != 0) {
          r.error = errno;
          break;
        }
      } else {
        const std::size_t len = (size + page_size() - 1) / page_size() * page_size();
        void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
          r.error = errno;
          break;
        }
        std::memcpy(p, code.data(), size);
        if (mprotect(p, len, PROT_READ | PROT_EXEC) != 0) {
          r.error = errno;
          break;
        }
        fns[i] = p;
      }
      ++r.functions;
    }
    r.seconds = seconds_since(t0);
    const Memory after = memory_now(true);
    r.resident = double(after.rss - before.rss);
    r.mappings = after.mappings - before.mappings;
    return r;
  });
}

struct Update {
  double execmem = 0, window = 0, plain = 0;
  int error = 0;
};

ChildResult<Update> update(std::size_t bytes, std::size_t iterations) {
  return in_child<Update>([&] {
    Update r;
    std::vector<unsigned char> src(bytes, 0x90);
    void* text = execmem_alloc(EXECMEM_TEXT, 256);
    if (text == nullptr) {
      r.error = errno;
      return r;
    }
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < iterations; ++i) {
      src[0] = static_cast<unsigned char>(i);
      if (execmem_update_copy(text, src.data(), bytes) != 0) {
        r.error = errno;
        return r;
      }
    }
    r.execmem = seconds_since(t0) / double(iterations);
    void* page = mmap(nullptr, page_size(), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t0 = Clock::now();
    for (std::size_t i = 0; i < iterations; ++i) {
      src[0] = static_cast<unsigned char>(i);
      if (mprotect(page, page_size(), PROT_READ | PROT_WRITE) != 0) std::abort();
      std::memcpy(page, src.data(), bytes);
      if (mprotect(page, page_size(), PROT_READ | PROT_EXEC) != 0) std::abort();
      __builtin___clear_cache(static_cast<char*>(page), static_cast<char*>(page) + bytes);
    }
    r.window = seconds_since(t0) / double(iterations);
    std::vector<unsigned char> dst(bytes);
    t0 = Clock::now();
    for (std::size_t i = 0; i < iterations * 100; ++i) {
      src[0] = static_cast<unsigned char>(i);
      std::memcpy(dst.data(), src.data(), bytes);
      keep(dst[0]);
    }
    r.plain = seconds_since(t0) / double(iterations * 100);
    return r;
  });
}

}  // namespace

void section_execmem(Context& ctx) {
  const std::size_t n = ctx.quick ? 1000 : 5000;
  const int reps = ctx.quick ? 3 : 5;
  ctx.md << "Small functions of 100–300 bytes (" << with_commas(n)
         << " of them), each allocated, written and made executable: with `execmem_alloc(EXECMEM_TEXT)` + "
            "`execmem_update_copy` (packed into shared packs, never writable), and with one `mmap` per "
            "function + memcpy + `mprotect(PROT_READ|PROT_EXEC)`. Median of "
         << reps << " forked runs. The component's own benchmark: docs/bench/execmem.md.\n\n";
  std::vector<double> er, mr, es, ms;
  long em = 0, mm = 0;
  std::size_t total = 0;
  for (int i = 0; i < reps; ++i) {
    ctx.progress("execmem: packing, run %d/%d", i + 1, reps);
    if (auto a = pack(true, n); a.ok && a.value.error == 0) {
      er.push_back(a.value.resident);
      es.push_back(a.value.seconds);
      em = a.value.mappings;
      total = a.value.bytes;
    }
    if (auto b = pack(false, n); b.ok && b.value.error == 0) {
      mr.push_back(b.value.resident);
      ms.push_back(b.value.seconds);
      mm = b.value.mappings;
    }
  }
  const double minimum = double((total + page_size() - 1) / page_size());
  Table t({"placement", "pages resident", "× minimum", "kernel mappings added", "time per function", "time vs mmap"});
  t.row({"execmem (packed)", fmt(median(er) / double(page_size()), 0), fmt(median(er) / double(page_size()) / minimum, 2),
         std::to_string(em), human_time(median(es) / double(n)), ratio(median(es), median(ms))});
  t.row({"one mmap per function", fmt(median(mr) / double(page_size()), 0), fmt(median(mr) / double(page_size()) / minimum, 2),
         std::to_string(mm), human_time(median(ms) / double(n)), "1.00×"});
  ctx.md << t.markdown() << "Minimum: ⌈" << with_commas(total) << " bytes / page⌉ = " << fmt(minimum, 0)
         << " pages.\n\n";
  ctx.key.push_back({"execmem pages for small functions vs one mmap per function", "-",
                     ratio(median(er), median(mr)), "-"});

  const std::size_t iterations = ctx.quick ? 2000 : 10000;
  Table u({"bytes rewritten", "execmem_update_copy", "mprotect window (RX→RW, memcpy, RW→RX)", "execmem / window",
           "plain memcpy (for scale)"});
  for (std::size_t bytes : {8u, 64u, 200u}) {
    std::vector<double> a, b, c;
    ctx.progress("execmem: update %zu bytes", bytes);
    for (int i = 0; i < reps; ++i) {
      if (auto r = update(bytes, iterations); r.ok && r.value.error == 0) {
        a.push_back(r.value.execmem);
        b.push_back(r.value.window);
        c.push_back(r.value.plain);
      }
    }
    u.row({std::to_string(bytes), human_time(median(a)), human_time(median(b)), ratio(median(a), median(b)),
           human_time(median(c))});
    if (bytes == 64) {
      ctx.key.push_back({"execmem code update (64 bytes) vs an mprotect window", "-", ratio(median(a), median(b)), "-"});
    }
  }
  ctx.md << "Rewriting code in place, per update (median of " << reps << " runs of " << with_commas(iterations)
         << "). The window is also the weaker mechanism: during it the page is writable for every thread.\n\n"
         << u.markdown();
}

}  // namespace bench
