// The fixed table of pool locks (see lock.hpp).
#include "pool/lock.hpp"

namespace pmalloc::internal::lock_table {

PaddedLock g_locks[kLocks];

}  // namespace pmalloc::internal::lock_table
