// The fixed table of pool locks (see lock.hpp).
#include "pool/lock.hpp"

#include <cstdint>

namespace pmalloc::internal {
namespace {
constexpr std::size_t kLocks = 64;
struct alignas(64) PaddedLock {
  SpinLock lock;
};
PaddedLock g_locks[kLocks];
}  // namespace

SpinLock& pool_lock(const void* descriptor) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(descriptor);
  a ^= a >> 17;
  a *= 0x9e3779b97f4a7c15ULL;
  return g_locks[(a >> 58) % kLocks].lock;
}

}  // namespace pmalloc::internal
