// Scale comparison (issue 4): live protected 32-byte allocations, pmalloc vs libsodium.
//
// pmalloc: one pool, 1,000,000 allocations, one pmalloc_protect_pool(). libsodium: one
// sodium_malloc() + sodium_mprotect_readonly() per allocation (its model: every object
// gets its own guarded pages), until it fails; at vm.max_map_count it cannot map more.
// Printed as a Markdown table: live allocations reached, kernel mappings added, bytes of
// resident memory per allocation, time per allocation. Results: docs/bench/hardening.md.
#include <pmalloc/pmalloc.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#ifdef PMALLOC_HAVE_SODIUM
#include <sodium.h>
#endif

namespace {

std::size_t count_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * 4096;
}

std::size_t max_map_count() {
  std::ifstream f("/proc/sys/vm/max_map_count");
  std::size_t n = 0;
  f >> n;
  return n;
}

struct Result {
  const char* name;
  std::size_t live = 0;
  std::size_t mappings = 0;
  double resident_per_object = 0;
  double ns_per_object = 0;
  std::string note;
};

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

Result run_pmalloc(std::size_t count) {
  Result r{"pmalloc (one pool, one protect)"};
  std::vector<void*> objects(count);
  const std::size_t maps0 = count_mappings();
  const std::size_t rss0 = resident_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  pmalloc_pool* pool = pmalloc_create_pool("scale", PMALLOC_RO);
  for (std::size_t i = 0; i < count; ++i) {
    auto* p = static_cast<unsigned char*>(pmalloc(pool, 32));
    if (p == nullptr) {
      r.note = std::string("failed: ") + pmalloc_last_error();
      break;
    }
    std::memset(p, static_cast<int>(i), 32);
    objects[r.live++] = p;
  }
  if (pmalloc_protect_pool(pool) != 0) r.note = std::string("protect failed: ") + pmalloc_last_error();
  const double ns = since(t0);
  r.mappings = count_mappings() - maps0;
  r.resident_per_object = static_cast<double>(resident_bytes() - rss0) / static_cast<double>(r.live);
  r.ns_per_object = ns / static_cast<double>(r.live);
  pmalloc_destroy_pool(pool);
  return r;
}

#ifdef PMALLOC_HAVE_SODIUM
Result run_sodium(std::size_t limit) {
  Result r{"sodium_malloc + sodium_mprotect_readonly"};
  std::vector<void*> objects;
  objects.reserve(limit);
  const std::size_t maps0 = count_mappings();
  const std::size_t rss0 = resident_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < limit; ++i) {
    void* p = sodium_malloc(32);
    if (p == nullptr) {
      r.note = "sodium_malloc failed after " + std::to_string(i) + " live allocations (errno " +
               std::to_string(errno) + ")";
      break;
    }
    std::memset(p, static_cast<int>(i), 32);
    if (sodium_mprotect_readonly(p) != 0) {
      r.note = "sodium_mprotect_readonly failed after " + std::to_string(i) + " allocations";
      sodium_free(p);
      break;
    }
    objects.push_back(p);
  }
  const double ns = since(t0);
  r.live = objects.size();
  r.mappings = count_mappings() - maps0;
  r.resident_per_object = static_cast<double>(resident_bytes() - rss0) / static_cast<double>(r.live);
  r.ns_per_object = ns / static_cast<double>(r.live);
  for (void* p : objects) sodium_free(p);
  return r;
}
#endif

}  // namespace

int main() {
  std::printf("Live protected 32-byte allocations (vm.max_map_count = %zu)\n\n", max_map_count());
  std::vector<Result> results;
  results.push_back(run_pmalloc(1000000));
#ifdef PMALLOC_HAVE_SODIUM
  if (sodium_init() < 0) {
    std::fprintf(stderr, "sodium_init failed\n");
    return 1;
  }
  results.push_back(run_sodium(1000000));
#else
  std::printf("(libsodium not found: its row is left out)\n");
#endif
  std::printf("| allocator | live allocations | kernel mappings added | resident bytes / allocation | ns / allocation | note |\n");
  std::printf("|---|---:|---:|---:|---:|---|\n");
  for (const Result& r : results) {
    std::printf("| %s | %zu | %zu | %.1f | %.0f | %s |\n", r.name, r.live, r.mappings, r.resident_per_object,
                r.ns_per_object, r.note.c_str());
  }
  if (results.size() == 2) {
    const Result& p = results[0];
    const Result& s = results[1];
    std::printf("\npmalloc / sodium: %.1fx the live allocations, %.2gx the mappings per allocation, "
                "%.2gx the resident bytes per allocation, %.2gx the time per allocation\n",
                static_cast<double>(p.live) / static_cast<double>(s.live),
                (static_cast<double>(p.mappings) / p.live) / (static_cast<double>(s.mappings) / s.live),
                p.resident_per_object / s.resident_per_object, p.ns_per_object / s.ns_per_object);
  }
  return 0;
}
