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
#include <sys/single_threaded.h>

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
  // One attempt, no waiting: the allocation fast path gives up to the general path.
  bool try_lock() noexcept { return !held_.load(std::memory_order_relaxed) && !held_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { held_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> held_{false};
};

// The lock of the pool whose descriptor is at `descriptor`.
namespace lock_table {
inline constexpr std::size_t kLocks = 64;
struct alignas(64) PaddedLock {  // one cache line each: no false sharing between pools
  SpinLock lock;
};
extern PaddedLock g_locks[kLocks];
}  // namespace lock_table

// Inline: the allocation fast path takes it without a call.
inline SpinLock& pool_lock(const void* descriptor) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(descriptor);
  a ^= a >> 17;
  a *= 0x9e3779b97f4a7c15ULL;
  return lock_table::g_locks[(a >> 58) % lock_table::kLocks].lock;
}

// Holds the pool's lock for a scope. While the process has only ever had one thread
// (glibc's __libc_single_threaded, the flag its own malloc uses) there is nobody to
// exclude and the lock is skipped. The flag goes from true to false only in
// pthread_create, which no pool operation calls, so it cannot change inside a guarded
// scope; a thread created later finds every lock free and every skipped scope finished.
class PoolGuard {
 public:
  explicit PoolGuard(const void* descriptor) noexcept
      : lock_(__libc_single_threaded != 0 ? nullptr : &pool_lock(descriptor)) {
    if (lock_ != nullptr) lock_->lock();
  }
  ~PoolGuard() {
    if (lock_ != nullptr) lock_->unlock();
  }
  PoolGuard(const PoolGuard&) = delete;
  PoolGuard& operator=(const PoolGuard&) = delete;

 private:
  SpinLock* lock_;
};

}  // namespace pmalloc::internal
