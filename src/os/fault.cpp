// Fault injection countdown for the OS layer; see fault.hpp.
#include "os/fault.hpp"

#include <atomic>

namespace pmalloc::os::fault {
namespace {
std::atomic<unsigned long> g_countdown{0};
std::atomic<int> g_error{0};
std::atomic<unsigned long> g_calls{0};
std::atomic<bool> g_fired{false};
}  // namespace

void arm(unsigned long n, int error) noexcept {
  g_error.store(error, std::memory_order_relaxed);
  g_fired.store(false, std::memory_order_relaxed);
  g_countdown.store(n, std::memory_order_release);
}

void disarm() noexcept { g_countdown.store(0, std::memory_order_release); }

unsigned long calls() noexcept { return g_calls.load(std::memory_order_relaxed); }

bool fired() noexcept { return g_fired.load(std::memory_order_relaxed); }

int should_fail() noexcept {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  unsigned long c = g_countdown.load(std::memory_order_acquire);
  while (c != 0) {
    if (g_countdown.compare_exchange_weak(c, c - 1, std::memory_order_acq_rel)) {
      if (c == 1) {
        g_fired.store(true, std::memory_order_relaxed);
        return g_error.load(std::memory_order_relaxed);
      }
      return 0;
    }
  }
  return 0;
}

}  // namespace pmalloc::os::fault
