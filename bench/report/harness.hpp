// Measurement harness of the benchmark report: clocks, medians, resident memory, forked
// cells, machine description, number formatting.
//
// Rules every section follows (so that figures are comparable and honest):
//   * a figure is a median over repetitions, and is printed next to the figure of the
//     alternative it is compared with, plus their ratio, all from the same run;
//   * anything that allocates a lot, or may fail (sodium_malloc runs out of kernel
//     mappings at ~16k objects), runs in a forked child (in_child), so each cell starts
//     from the same clean process image and a failure cannot take the runner down;
//   * resident memory is measured, not computed: RssAnon (resident anonymous memory) and
//     VmPTE (page tables) from /proc/self/status before and after, in the child.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v);

std::size_t page_size();

struct Memory {
  long rss = 0;       // resident anonymous bytes (RssAnon)
  long pte = 0;       // bytes of page tables (VmPTE)
  long mappings = 0;  // lines of /proc/self/maps
};
Memory memory_now(bool with_mappings = false);

// The result of a forked cell: value when the child finished, else why not.
template <class T>
struct ChildResult {
  bool ok = false;
  T value{};
  std::string failure;  // "killed by SIGSEGV", "exit 3", ...
};

// Returns the free memory of the malloc heap to the kernel (malloc_trim), so that an
// allocation in a fresh child is charged for the pages it really needs.
void trim_heap();

// Runs fn() in a forked child and ships its (trivially copyable) result back by pipe.
template <class T, class F>
ChildResult<T> in_child(F&& fn) {
  static_assert(std::is_trivially_copyable_v<T>, "results cross a pipe");
  ChildResult<T> r;
  int fds[2];
  if (pipe(fds) != 0) {
    r.failure = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) {
    r.failure = std::string("fork: ") + std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return r;
  }
  if (child == 0) {
    close(fds[0]);
    trim_heap();
    T value = fn();
    const char* p = reinterpret_cast<const char*>(&value);
    std::size_t left = sizeof value;
    while (left > 0) {
      const ssize_t w = write(fds[1], p, left);
      if (w <= 0) _exit(3);
      p += w;
      left -= static_cast<std::size_t>(w);
    }
    _exit(0);
  }
  close(fds[1]);
  std::size_t got = 0;
  char* p = reinterpret_cast<char*>(&r.value);
  while (got < sizeof(T)) {
    const ssize_t n = read(fds[0], p + got, sizeof(T) - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    r.failure = std::string("killed by ") + sigabbrev_np(WTERMSIG(status));
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    r.failure = "exit status " + std::to_string(WEXITSTATUS(status));
  } else if (got != sizeof(T)) {
    r.failure = "no result";
  } else {
    r.ok = true;
  }
  return r;
}

struct Machine {
  std::string cpu;
  unsigned cpus = 0;
  std::string kernel;
  std::string memory;
  std::string os;
  std::string compiler;
  std::string load;          // load average when the run started
  long max_map_count = 0;
  bool seal = false;         // pmalloc_seal_supported()
  std::string sodium;        // libsodium version or "not built in"
  double page_fault_seconds = 0;  // one first-touch fault of an anonymous page
};
Machine machine();

// Formatting.
std::string fmt(double v, int decimals = 1);
std::string human_bytes(double bytes);
std::string human_count(double n);  // 1000 -> "1k", 1000000 -> "1M"
std::string human_time(double seconds);
std::string ratio(double a, double b);  // "2.31x" (a / b), "-" when b is 0
std::string errno_name(int e);

// Defeats dead-code elimination of benchmark loops.
template <class T>
inline void keep(T const& v) {
  asm volatile("" : : "g"(v) : "memory");
}

}  // namespace bench
