// Test support for the C++ adapter tests: run a mutation in a forked child and report
// how the child ended, so a missing protection shows up as a failed expectation instead
// of corrupting the test process.
//
// The child restores the default SIGSEGV action first (sanitizer runtimes install their
// own handler, which would turn the fault into an ordinary exit), then runs the mutation
// and exits with status 0 only if the mutation returned (status 3 if it threw).
#pragma once

#include <pmalloc/wr.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <utility>

namespace pmalloc_test {

enum class ChildEnd { segv, exited, threw, other };

template <class F>
ChildEnd run_in_child(F&& mutation) {
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    try {
      std::forward<F>(mutation)();
    } catch (...) {
      _exit(3);  // never back into the test framework: the child must not run more tests
    }
    _exit(0);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) return ChildEnd::other;
  if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS)) return ChildEnd::segv;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ChildEnd::exited;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return ChildEnd::threw;
  return ChildEnd::other;
}

// True when `mutation` faults (the child is killed by SIGSEGV).
template <class F>
bool faults(F&& mutation) {
  return run_in_child(std::forward<F>(mutation)) == ChildEnd::segv;
}

// For mutations that allocate from the protected pool first (an insertion): true when the
// child faults, or - only under the alias writer, whose memfd-backed pool pages a forked
// child shares with its parent - when the library refuses the child's allocation from the
// inherited pool (EPERM, thrown) before anything is written (docs/write-rare.md).
template <class F>
bool allocating_mutation_faults(F&& mutation) {
  const ChildEnd end = run_in_child(std::forward<F>(mutation));
  return end == ChildEnd::segv || (end == ChildEnd::threw && std::strcmp(pmalloc_wr_backend(), "alias") == 0);
}

}  // namespace pmalloc_test
