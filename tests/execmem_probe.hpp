// Test support for the execmem tests: machine code snippets, /proc/self/maps and smaps
// readers, and forked-child probes that prove a write or a call faults without trusting
// the library (and without corrupting the test process when protection is missing).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace execmem_test {

// ---- x86-64 snippets (System V calling convention) -----------------------------------
// int add(int a, int b): lea eax, [rdi + rsi]; ret
inline const std::vector<std::uint8_t> kAdd = {0x8d, 0x04, 0x37, 0xc3};
// int sub(int a, int b): mov eax, edi; sub eax, esi; ret
inline const std::vector<std::uint8_t> kSub = {0x89, 0xf8, 0x29, 0xf0, 0xc3};

// int f(void) { return value; }: mov eax, imm32; ret
inline std::vector<std::uint8_t> ret_const(std::uint32_t value) {
  std::vector<std::uint8_t> c = {0xb8};
  for (int i = 0; i < 4; ++i) c.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
  c.push_back(0xc3);
  return c;
}

// int f(void) { return *(const int*)address; }: movabs rax, imm64; mov eax, [rax]; ret
inline std::vector<std::uint8_t> load_from(const void* address) {
  std::vector<std::uint8_t> c = {0x48, 0xb8};
  const auto a = reinterpret_cast<std::uint64_t>(address);
  for (int i = 0; i < 8; ++i) c.push_back(static_cast<std::uint8_t>(a >> (8 * i)));
  c.insert(c.end(), {0x8b, 0x00, 0xc3});
  return c;
}

// A function of exactly `size` bytes (>= 6) returning `value`: nop padding before the body.
inline std::vector<std::uint8_t> padded_const(std::uint32_t value, std::size_t size) {
  std::vector<std::uint8_t> body = ret_const(value);
  std::vector<std::uint8_t> c(size - body.size(), 0x90);
  c.insert(c.end(), body.begin(), body.end());
  return c;
}

template <class Fn>
Fn as_function(void* p) {
  return reinterpret_cast<Fn>(p);
}

// ---- /proc/self/maps ------------------------------------------------------------------
struct Mapping {
  std::uintptr_t lo = 0, hi = 0;
  std::string perms;
  std::string line;
};

inline std::vector<Mapping> read_maps() {
  std::vector<Mapping> out;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    Mapping m;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &m.lo, &m.hi, perms) == 3) {
      m.perms = perms;
      m.line = line;
      out.push_back(m);
    }
  }
  return out;
}

// The permission string ("r-xp", ...) of the mapping that holds p, or "" when unmapped.
inline std::string perms_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (const Mapping& m : read_maps()) {
    if (a >= m.lo && a < m.hi) return m.perms;
  }
  return "";
}

inline bool writable_and_executable(const std::string& perms) {
  return perms.size() >= 3 && perms[1] == 'w' && perms[2] == 'x';
}

// Every mapping of the process that is writable and executable (empty: none).
inline std::vector<std::string> wx_mappings() {
  std::vector<std::string> out;
  for (const Mapping& m : read_maps()) {
    if (writable_and_executable(m.perms)) out.push_back(m.line);
  }
  return out;
}

// A numeric field ("THPeligible", "AnonHugePages", "Rss" in kB) of the smaps entry that
// holds p; -1 when absent.
inline long smaps_field(const void* p, const char* field) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false;
  const std::string key = std::string(field) + ":";
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    if (std::sscanf(line.c_str(), "%lx%c%lx", &lo, &dash, &hi) == 3 && dash == '-') {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.compare(0, key.size(), key) == 0) return std::strtol(line.c_str() + key.size(), nullptr, 10);
  }
  return -1;
}

// ---- forked probes ----------------------------------------------------------------------
// Runs fn in a forked child; returns the signal that killed it, 0 when it exited normally.
template <class Fn>
int signal_in_child(Fn fn) {
  const pid_t child = fork();
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGTRAP, SIG_DFL);
    signal(SIGILL, SIG_DFL);
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

inline int write_signal(void* p, unsigned char value = 0x90) {
  return signal_in_child([=] { *static_cast<volatile unsigned char*>(p) = value; });
}

inline int call_signal(void* p) {
  return signal_in_child([=] { (void)as_function<int (*)()>(p)(); });
}

inline int read_signal(const void* p) {
  return signal_in_child([=] { (void)*static_cast<const volatile unsigned char*>(p); });
}

}  // namespace execmem_test
