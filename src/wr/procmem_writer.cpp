// The procmem back end: the kernel writes on our behalf through /proc/self/mem.
//
// A write to /proc/self/mem goes through the kernel's "remote access" path (FOLL_FORCE),
// which may write pages that are read-only for the process, even mseal()ed ones, and
// ignores protection keys. No permission changes at any moment, so no other thread can
// ever write the page; the cost is one system call per chunk (about 2 us for 8 bytes
// here), which is why callers that own a span merge nearby chunks (writer.hpp).
// An aligned 8-byte chunk is copied by the kernel's memcpy in one store on x86-64
// (checked by wr_torn_test under load), so a published pointer is never seen torn.
#include <cstdint>

#include "os/os.hpp"
#include "wr/backends.hpp"

namespace pmalloc::internal::wr::detail {

// The OS layer opens /proc/self/mem only where a write to a read-only page really lands
// (some kernels or security modules open the file but refuse such writes).
bool procmem_probe() noexcept { return os::procmem_available(); }

int procmem_write(const Chunk* chunks, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    if (int e = os::procmem_write(chunks[i].dst, chunks[i].src, chunks[i].n)) return e;
  }
  return 0;
}

}  // namespace pmalloc::internal::wr::detail
