// Pool locks.
//
// A pool's descriptor lives in pages that are write-protected with the pool, so the lock
// cannot live inside it. Locks live in a fixed table in ordinary memory instead, picked by
// hashing the descriptor's address. Two pools may share a lock (harmless: no code path
// ever holds two pool locks). An attacker who can write this table can only make threads
// wait or race on bookkeeping; it grants no write access to protected pages, because
// every such write goes through the writer after validation.
//
// The lock is a test-and-test-and-set spin lock that yields after a short spin: pool
// critical sections are a few bitmap operations (tens of nanoseconds) except for rare
// system calls, and an uncontended acquire/release pair costs one atomic exchange and one
// store, about half of a std::mutex pair.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pmalloc::internal {

class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      if (!held_.exchange(true, std::memory_order_acquire)) return;
      for (int spin = 0; held_.load(std::memory_order_relaxed); ++spin) {
        if (spin >= 64) {
          sched_yield();
          spin = 0;
        } else {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        }
      }
    }
  }
  void unlock() noexcept { held_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> held_{false};
};

// The lock of the pool whose descriptor is at `descriptor`.
SpinLock& pool_lock(const void* descriptor) noexcept;

class PoolGuard {
 public:
  explicit PoolGuard(const void* descriptor) noexcept : lock_(pool_lock(descriptor)) { lock_.lock(); }
  ~PoolGuard() { lock_.unlock(); }
  PoolGuard(const PoolGuard&) = delete;
  PoolGuard& operator=(const PoolGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace pmalloc::internal
