// --prove (see prove.hpp). This file calls mprotect() on purpose: the demonstration is
// that the kernel refuses it on sealed pages. Library code never does this outside
// src/os/.
#include "prove.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>

#include "lookup.hpp"

namespace psl {
namespace {

// Child preparation: no core file, default action for SIGSEGV/SIGBUS.
void child_setup() noexcept {
  rlimit none{0, 0};
  setrlimit(RLIMIT_CORE, &none);
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status)) + " (the write went through)";
  return "ended oddly";
}

// Forks a child that writes `value` to `target`; true when it died of SIGSEGV.
bool stray_write_faults(volatile unsigned char* target, unsigned char value, std::FILE* out) {
  std::fflush(out);
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(out, "     fork failed: %s\n", std::strerror(errno));
    return false;
  }
  if (child == 0) {
    child_setup();
    *target = value;
    _exit(0);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  std::fprintf(out, "     child %d %s\n", static_cast<int>(child), describe(status).c_str());
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

// Forks a child that tries to make the page of `target` writable again and then writes.
// Returns true when mprotect failed with EPERM and the write died of SIGSEGV.
bool seal_holds(volatile unsigned char* target, std::FILE* out) {
  int fds[2];
  if (pipe(fds) != 0) {
    std::fprintf(out, "     pipe failed: %s\n", std::strerror(errno));
    return false;
  }
  std::fflush(out);
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(out, "     fork failed: %s\n", std::strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (child == 0) {
    child_setup();
    close(fds[0]);
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    void* base = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(target) & ~(page - 1));
    const int result = mprotect(base, page, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
    (void)!write(fds[1], &result, sizeof result);
    close(fds[1]);
    *target = static_cast<unsigned char>(*target ^ 0xFF);
    _exit(0);
  }
  close(fds[1]);
  int result = -1;
  const bool got = read(fds[0], &result, sizeof result) == static_cast<ssize_t>(sizeof result);
  close(fds[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!got) {
    std::fprintf(out, "     child %d reported nothing; %s\n", static_cast<int>(child), describe(status).c_str());
    return false;
  }
  std::fprintf(out, "     child %d: mprotect(PROT_READ|PROT_WRITE) -> %s\n", static_cast<int>(child),
               result == 0 ? "succeeded" : (std::string(strerrorname_np(result)) + " (" + std::strerror(result) + ")").c_str());
  std::fprintf(out, "     child %d then wrote to the rule: %s\n", static_cast<int>(child), describe(status).c_str());
  return result == EPERM && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

const Rule* pick_rule(const List& list) noexcept {
  for (std::size_t i = 0; i < list.counts.rules; ++i) {
    if (list.rules[i]->kind == RuleKind::exception) return list.rules[i];
  }
  return list.rules[0];
}

}  // namespace

int prove(const List& list, bool sealed, std::FILE* out) {
  int failed = 0;
  const Rule* rule = pick_rule(list);
  const std::string text = rule->text();
  const std::string probe = "www." + std::string(rule->name());
  const Answer before = lookup(list, probe);

  std::fprintf(out, "proof 1: a stray write into rule '%s' (line %u, at %p)\n", text.c_str(), rule->line,
               static_cast<const void*>(rule->name()));
  auto* name = reinterpret_cast<volatile unsigned char*>(const_cast<char*>(rule->name()));
  const bool p1 = stray_write_faults(name, 'X', out);
  std::fprintf(out, "   %s\n", p1 ? "OK: the write was stopped" : "FAILED: the rule was writable");
  failed += !p1;

  std::fprintf(out, "proof 2: a stray write into the list header (the rule-array pointer at %p)\n",
               static_cast<const void*>(&list.rules));
  auto* header = reinterpret_cast<volatile unsigned char*>(const_cast<const Rule***>(&list.rules));
  const bool p2 = stray_write_faults(header, 0x41, out);
  std::fprintf(out, "   %s\n", p2 ? "OK: the write was stopped" : "FAILED: the header was writable");
  failed += !p2;

  if (sealed) {
    std::fprintf(out, "proof 3: the sealed pool cannot be made writable again with mprotect\n");
    const bool p3 = seal_holds(name, out);
    std::fprintf(out, "   %s\n", p3 ? "OK: the kernel refused (EPERM) and the page stayed read-only"
                                     : "FAILED: the seal did not hold");
    failed += !p3;
  } else {
    std::fprintf(out, "proof 3: skipped: the pool is not sealed (%s)\n",
                 "mseal is not supported here, or --no-seal was given");
  }

  const Answer after = lookup(list, probe);
  const bool same = before.verdict == after.verdict && before.domain == after.domain && before.rule == after.rule;
  std::fprintf(out, "afterwards: '%s' -> %s, as before: %s\n", probe.c_str(),
               after.verdict == Verdict::registrable ? after.domain.c_str() : verdict_marker(after.verdict),
               same ? "nothing changed" : "CHANGED");
  failed += !same;
  return failed;
}

}  // namespace psl
