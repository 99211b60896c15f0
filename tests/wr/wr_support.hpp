// Test support for the write-rare suites: which writer this run is for, and proofs that
// do not trust the library (forked children, /proc/self/maps).
#pragma once

#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace wr_test {

// The writer this run was registered for (PMALLOC_WR_BACKEND), or "" when run by hand.
inline std::string requested() {
  const char* b = std::getenv("PMALLOC_WR_BACKEND");
  return b != nullptr ? b : "";
}
inline bool is(const char* name) { return std::strcmp(pmalloc_wr_backend(), name) == 0; }
// Loop counts: the system-call writers are slow on a loaded 2-core CI machine; the full
// count runs where the property is most at risk or the writer is cheap (procmem, pkey).
inline long rounds(long full) { return (is("procmem") || is("pkey")) ? full : full / 8; }

// Skips the test when the requested writer could not be had here.
#define WR_REQUIRE_BACKEND()                                                                       \
  do {                                                                                             \
    const std::string want = ::wr_test::requested();                                               \
    if (!want.empty() && want != pmalloc_wr_backend()) {                                           \
      GTEST_SKIP() << "writer '" << want << "' is not available on this machine (the library "    \
                   << "refused it and uses '" << pmalloc_wr_backend() << "')";                     \
    }                                                                                              \
  } while (0)

// Forks; the child writes `value` at p. True when the write faulted (SIGSEGV): the
// child's own handler reports it with exit status 42, so sanitizers' handlers, which would
// turn the signal into a report and exit 1, do not hide it.
inline bool write_kills_child(volatile void* p, unsigned char value = 0xA5) {
  const pid_t child = fork();
  if (child == 0) {
    struct sigaction sa {};
    sa.sa_handler = [](int) { _exit(42); };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    *static_cast<volatile unsigned char*>(p) = value;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return (WIFEXITED(status) && WEXITSTATUS(status) == 42) || (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
}

// Every mapping line of /proc/self/maps whose permissions include both w and x.
inline std::vector<std::string> writable_executable_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::vector<std::string> bad;
  for (std::string line; std::getline(maps, line);) {
    const auto space = line.find(' ');
    if (space == std::string::npos || space + 4 >= line.size()) continue;
    const std::string perms = line.substr(space + 1, 4);
    if (perms[1] == 'w' && perms[2] == 'x') bad.push_back(line);
  }
  return bad;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;  // the sanitizers map memory of their own at any time
#else
inline constexpr bool kSanitized = false;
#endif

// The number of mappings of the process, or of those whose line contains `needle`.
inline std::size_t count_mappings(const char* needle = nullptr) {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (needle == nullptr || line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

// The permission string ("r--p", "rw-s", ...) of the mapping containing p, or "".
inline std::string mapping_perms(const void* p) {
  std::ifstream maps("/proc/self/maps");
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (std::string line; std::getline(maps, line);) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) return perms;
  }
  return "";
}

}  // namespace wr_test
