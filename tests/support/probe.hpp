// Test support: prove that memory is (or is not) writable, without trusting the library.
//
// write_faults() tries the writes in a forked child, so a missing protection shows up as a
// test failure rather than as corrupted memory in the test process; the child reports how
// many of the writes faulted (SIGSEGV caught and skipped with siglongjmp).
// count_mappings() counts the lines of /proc/self/maps.
#pragma once

#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace pmalloc_test {

namespace detail {
inline sigjmp_buf g_jump;
inline void on_segv(int) { siglongjmp(g_jump, 1); }
}  // namespace detail

// Forks; the child stores to every address in `targets` and counts the stores that fault.
// Returns that count (or -1 when the child died some other way). Each store writes the
// byte's own value back: a store to a read-only page faults all the same, and one that
// lands changes nothing, which matters where the child shares the pages with this process
// (memfd-backed pools under the alias writer).
inline long count_faulting_writes(const std::vector<volatile unsigned char*>& targets) {
  const pid_t child = fork();
  if (child == 0) {
    struct sigaction sa {};
    sa.sa_handler = detail::on_segv;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    long faults = 0;
    for (volatile unsigned char* p : targets) {
      if (sigsetjmp(detail::g_jump, 1) == 0) {
        *p = *p;
      } else {
        ++faults;
      }
    }
    // Exit status carries at most 8 bits: report "all faulted" / "some did not".
    _exit(faults == static_cast<long>(targets.size()) ? 0 : 1 + static_cast<int>(faults % 200));
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status)) return -1;
  const int code = WEXITSTATUS(status);
  return code == 0 ? static_cast<long>(targets.size()) : static_cast<long>(code - 1);
}

// True when a single write of `value` at p kills a forked child with SIGSEGV.
inline bool write_kills_child(volatile void* p, unsigned char value = 0xA5) {
  const pid_t child = fork();
  if (child == 0) {
    *static_cast<volatile unsigned char*>(p) = value;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

inline std::size_t count_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

// The permission string ("r--p", "rw-p", ...) of the mapping containing p, or "".
inline std::string mapping_perms(const void* p) {
  std::ifstream maps("/proc/self/maps");
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (std::string line; std::getline(maps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) return perms;
  }
  return "";
}

}  // namespace pmalloc_test
