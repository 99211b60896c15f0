// Section "wr": write-rare latency per writer back end (pmalloc/wr.h) against the obvious
// alternative, an mprotect window (RO -> RW, memcpy, RW -> RO) around a plain write.
//
// The back end is chosen once per process (PMALLOC_WR_BACKEND forces one), so each back
// end is measured in a fresh process: this program re-executes itself with the hidden
// option --wr-child <back end> and the variable set, and reads the figures back from its
// stdout. A back end this machine lacks (pkey without protection keys) is reported as such.
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cells.hpp"
#include "report.hpp"

namespace bench {
namespace {

struct WrFigures {
  std::string backend;  // the back end actually in use
  double w8 = 0, w64 = 0, ptr = 0, batch16 = 0, window64 = 0, plain64 = 0;
  bool ok = false;
  std::string error;
};

WrFigures run_child(const std::string& backend, std::size_t iterations) {
  WrFigures f;
  const std::string cmd = "PMALLOC_WR_BACKEND=" + backend + " /proc/" + std::to_string(getpid()) +
                          "/exe --wr-child " + std::to_string(iterations) + " 2>/dev/null";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    f.error = "popen failed";
    return f;
  }
  char name[64] = {};
  const int got = std::fscanf(p, "%63s %lf %lf %lf %lf %lf %lf", name, &f.w8, &f.w64, &f.ptr, &f.batch16,
                              &f.window64, &f.plain64);
  const int status = pclose(p);
  f.backend = name;
  f.ok = got == 7 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!f.ok) f.error = got >= 1 ? std::string(name) : "child failed";
  return f;
}

}  // namespace

// The --wr-child side: measures with the back end this process was started with.
int wr_child_main(std::size_t iterations) {
  pmalloc_pool* pool = pmalloc_create_pool("wr-bench", PMALLOC_WR);
  if (pool == nullptr) {
    std::printf("create-failed\n");
    return 1;
  }
  auto* obj = static_cast<unsigned char*>(pmalloc(pool, 256));
  void** slot = static_cast<void**>(pmalloc(pool, sizeof(void*)));
  auto* many = static_cast<unsigned char*>(pmalloc(pool, 16 * 64));
  if (obj == nullptr || slot == nullptr || many == nullptr || pmalloc_protect_pool(pool) != 0) {
    std::printf("setup-failed\n");
    return 1;
  }
  unsigned char src[64];
  std::memset(src, 0x5A, sizeof src);
  // Up to n operations, but stop after 0.25 s (slow back ends cost ~100 µs a call on a
  // loaded virtual machine; 2,500 of them say as much as 20,000).
  auto time_it = [&](auto&& op, std::size_t n) {
    const auto t0 = Clock::now();
    std::size_t i = 0;
    for (; i < n; ++i) {
      src[0] = static_cast<unsigned char>(i);
      if (!op(i)) {
        std::printf("write-failed\n");
        std::exit(1);
      }
      if ((i & 255) == 255 && seconds_since(t0) > 0.25) {
        ++i;
        break;
      }
    }
    return seconds_since(t0) / double(i);
  };
  const double w8 = time_it([&](std::size_t) { return wr_memcpy(obj, src, 8); }, iterations);
  const double w64 = time_it([&](std::size_t) { return wr_memcpy(obj + 64, src, 64); }, iterations);
  const double ptr = time_it([&](std::size_t i) { return wr_publish_pointer(slot, obj + (i & 1)); }, iterations);
  wr_batch_op ops[16];
  for (int k = 0; k < 16; ++k) ops[k] = {many + 64 * k, src, 64};
  const double batch = time_it([&](std::size_t) { return wr_memcpy_batch(ops, 16); }, iterations / 4 + 1);
  // The alternative: an mprotect window around a plain write, on a page of its own.
  void* page = mmap(nullptr, page_size(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const double window = time_it(
      [&](std::size_t) {
        if (mprotect(page, page_size(), PROT_READ | PROT_WRITE) != 0) return false;
        std::memcpy(page, src, 64);
        return mprotect(page, page_size(), PROT_READ) == 0;
      },
      iterations);
  unsigned char plain[64];
  const double copy = time_it(
      [&](std::size_t) {
        std::memcpy(plain, src, 64);
        keep(plain[0]);
        return true;
      },
      iterations * 100);
  std::printf("%s %.9g %.9g %.9g %.9g %.9g %.9g\n", pmalloc_wr_backend(), w8, w64, ptr, batch, window, copy);
  return 0;
}

void section_wr(Context& ctx) {
  const std::size_t iterations = ctx.quick ? 5000 : 20000;
  const int reps = ctx.quick ? 3 : 5;
  ctx.md << "Latency of one write-rare update into a protected `PMALLOC_WR` pool, per writer back end (each "
            "measured in a fresh process started with `PMALLOC_WR_BACKEND=<name>`; median of "
         << reps << " processes of up to " << with_commas(iterations)
         << " updates or 0.25 s each), against an mprotect window around a plain write on a page of its own "
            "(`mprotect(RW)`, memcpy, `mprotect(RO)`). The window is what wr_* exist to avoid: while it is open "
            "every thread can write the page. The back end chosen automatically here is **"
         << pmalloc_wr_backend() << "**.\n\n";
  Table t({"back end", "wr_memcpy 8 B", "wr_memcpy 64 B", "64 B vs mprotect window", "wr_rcu_assign_pointer",
           "batch of 16 × 64 B", "mprotect window, 64 B", "plain memcpy 64 B"});
  for (const char* backend : {"pkey", "procmem", "alias", "mprotect"}) {
    ctx.progress("wr: %s", backend);
    std::vector<double> a, b, c, d, e, g;
    std::string actual, error;
    for (int i = 0; i < reps; ++i) {
      const WrFigures f = run_child(backend, iterations);
      if (!f.ok) {
        error = f.error;
        continue;
      }
      actual = f.backend;
      a.push_back(f.w8);
      b.push_back(f.w64);
      c.push_back(f.ptr);
      d.push_back(f.batch16);
      e.push_back(f.window64);
      g.push_back(f.plain64);
    }
    if (a.empty()) {
      t.row({backend, "failed: " + error, "", "", "", "", "", ""});
      continue;
    }
    if (actual != backend) {
      t.row({backend, "not available here (fell back to " + actual + ")", "", "", "", "", "", ""});
      continue;
    }
    t.row({backend, human_time(median(a)), human_time(median(b)), ratio(median(b), median(e)), human_time(median(c)),
           human_time(median(d)), human_time(median(e)), human_time(median(g))});
    if (std::string(backend) == pmalloc_wr_backend()) {
      ctx.key.push_back({std::string("write-rare update (64 B, ") + backend + " writer) vs an mprotect window", "-",
                         ratio(median(b), median(e)) + " (" + human_time(median(b)) + " vs " + human_time(median(e)) + ")",
                         "-"});
      if (median(b) > median(e)) {
        ctx.loss.push_back(std::string("A write-rare update through the ") + backend + " writer costs " +
                           ratio(median(b), median(e)) + " of an mprotect window (which, unlike it, opens the page to every thread).");
      }
    }
  }
  ctx.md << t.markdown();
}

}  // namespace bench
