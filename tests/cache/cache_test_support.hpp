// Test support for the sealed object cache tests (tests/cache_*_test.cpp).
//
// Back-end parameterisation: tests/cache/CMakeLists.txt runs every cache test program
// once more per writer back end with PMALLOC_WR_BACKEND=<name>. The writer picks its back
// end once per process; when the requested one is not available here (no protection keys
// on this CPU, say) the process runs another one, and every test skips with a message
// containing "pmalloc-backend-unavailable"; when it is the one chosen automatically anyway,
// with "pmalloc-backend-default" (ctest reports both kinds of runs as skipped).
//
// Residency: resident_bytes() asks the kernel (mincore) how many pages of a cache's
// reservations hold memory, independently of the cache's own statistics.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "cache/cache.hpp"
#include "pmalloc/pmalloc.h"
#include "wr/writer.hpp"

namespace cache_test {

// Skips the current test when PMALLOC_WR_BACKEND asks for a back end this process does
// not run, or for the one the automatic choice picks anyway (the default registration of
// the same tests, without the variable, covers that one already).
inline void skip_unless_requested_backend() {
  namespace wr = pmalloc::internal::wr;
  const char* want = std::getenv("PMALLOC_WR_BACKEND");
  if (want == nullptr || *want == '\0') return;
  const char* have = wr::backend_name(wr::backend());
  if (std::strcmp(want, have) != 0) {
    GTEST_SKIP() << "pmalloc-backend-unavailable: PMALLOC_WR_BACKEND=" << want << " is not available here (running '"
                 << have << "')";
  }
  const wr::Backend automatic = wr::select_backend(
      nullptr, [](wr::Backend b, void*) { return wr::backend_available(b); }, nullptr, nullptr, 0);
  if (automatic == wr::backend()) {
    GTEST_SKIP() << "pmalloc-backend-default: '" << have << "' is the automatic choice here; the default run covers it";
  }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// The mprotect back end pays two mprotect calls (and TLB flushes) per chunk: hundreds of
// microseconds per object on a virtual machine. Sanitizers instrument every byte the
// writer copies. Volume tests therefore scale down under either (what they prove does not
// depend on the volume beyond a few slabs); their full size runs in the default tier.
inline bool slow_writer() {
  return pmalloc::internal::wr::backend() == pmalloc::internal::wr::Backend::mprotect;
}
inline bool reduced_volume() { return kSanitized || slow_writer(); }
inline std::size_t scaled(std::size_t n) { return reduced_volume() ? n / 10 : n; }

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override { skip_unless_requested_backend(); }
};

// Forks; the child writes one byte at p. True when the child was killed by SIGSEGV.
// The child first restores the default SIGSEGV action with the raw system call, so that
// a sanitizer's own SEGV handler (ASan, TSan report and exit instead) cannot intercept.
inline bool write_kills_child(const volatile void* p, unsigned char value = 0xA5) {
  const pid_t child = fork();
  if (child == 0) {
    struct {
      void (*handler)(int);
      unsigned long flags;
      void (*restorer)();
      unsigned long mask;
    } action{SIG_DFL, 0, nullptr, 0};
    syscall(SYS_rt_sigaction, SIGSEGV, &action, nullptr, sizeof action.mask);
    *const_cast<volatile unsigned char*>(static_cast<const volatile unsigned char*>(p)) = value;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

inline const pmalloc::internal::CacheDesc* desc(const pmalloc_cache* c) {
  return pmalloc::internal::from_handle(c);
}

// The reservations [begin, end) of a cache.
inline std::vector<std::pair<std::uintptr_t, std::uintptr_t>> reservations(const pmalloc_cache* c) {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> out;
  const int e = pmalloc::internal::cache_for_each_reservation(
      desc(c),
      [](const void* b, std::size_t n, void* arg) {
        auto* v = static_cast<std::vector<std::pair<std::uintptr_t, std::uintptr_t>>*>(arg);
        const auto begin = reinterpret_cast<std::uintptr_t>(b);
        v->emplace_back(begin, begin + n);
      },
      &out);
  EXPECT_EQ(e, 0);
  return out;
}

// Bytes of [begin, end) that are resident (mincore); unmapped pages count as 0.
inline std::size_t resident_in(std::uintptr_t begin, std::uintptr_t end) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::size_t bytes = 0;
  std::vector<unsigned char> vec(1);
  for (std::uintptr_t p = begin; p < end; p += page) {
    if (mincore(reinterpret_cast<void*>(p), page, vec.data()) == 0 && (vec[0] & 1) != 0) bytes += page;
  }
  return bytes;
}

inline std::size_t resident_bytes(const pmalloc_cache* c) {
  std::size_t total = 0;
  for (auto [b, e] : reservations(c)) total += resident_in(b, e);
  return total;
}

// True when some page of [begin, end) is mapped (mincore fails with ENOMEM on holes).
inline bool any_mapped(std::uintptr_t begin, std::uintptr_t end) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  unsigned char v = 0;
  for (std::uintptr_t p = begin; p < end; p += page) {
    if (mincore(reinterpret_cast<void*>(p), page, &v) == 0) return true;
  }
  return false;
}

// The permission strings of the kernel mappings intersecting [begin, end).
inline std::vector<std::string> perms_in(std::uintptr_t begin, std::uintptr_t end) {
  std::vector<std::string> out;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo < end && hi > begin) out.push_back(perms);
  }
  return out;
}

inline pmalloc_stats stats_of(const pmalloc_cache* c) {
  pmalloc_stats s{};
  EXPECT_EQ(pmalloc_cache_stats(c, &s), 0) << pmalloc_last_error();
  return s;
}

// An init callback that copies a value from ctx (ctx points at object_size bytes).
inline int copy_init(void* staging, const void*, void* ctx) {
  auto* src = static_cast<const std::pair<const void*, std::size_t>*>(ctx);
  std::memcpy(staging, src->first, src->second);
  return 0;
}

// A typical record: 48 bytes, a pointer to itself, a sequence number and a tag.
struct Record {
  const Record* self;
  std::uint64_t seq;
  char tag[32];
};
static_assert(sizeof(Record) == 48);

inline int record_init(void* staging, const void* final_address, void* ctx) {
  auto* r = static_cast<Record*>(staging);
  r->self = static_cast<const Record*>(final_address);
  r->seq = *static_cast<std::uint64_t*>(ctx);
  std::snprintf(r->tag, sizeof r->tag, "record-%llu", static_cast<unsigned long long>(r->seq));
  return 0;
}

inline const Record* make_record(pmalloc_cache* c, std::uint64_t seq) {
  return static_cast<const Record*>(pmalloc_cache_alloc_init(c, record_init, &seq));
}

inline bool record_ok(const Record* r, std::uint64_t seq) {
  char want[32];
  std::snprintf(want, sizeof want, "record-%llu", static_cast<unsigned long long>(seq));
  return r->self == r && r->seq == seq && std::strcmp(r->tag, want) == 0;
}

}  // namespace cache_test
