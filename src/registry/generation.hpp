// The registry's generation, inline: it changes whenever a registration is added or
// removed, and is odd while a change is under way. An answer derived from the table while
// the generation was g (even) still holds as long as generation() == g. The allocation
// fast path (pool/pool.cpp) asks on every call, so this is two loads, not a call.
#pragma once

#include <cstdint>

#include "registry/store.hpp"

namespace pmalloc::internal::registry {

inline std::uint64_t generation() noexcept {
  const Arena* a = arena();
  return a == nullptr ? 1 : __atomic_load_n(&a->header.seq, __ATOMIC_ACQUIRE);
}

}  // namespace pmalloc::internal::registry
