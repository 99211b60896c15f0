// The pkey back end: memory protection keys make write permission a per-thread register.
//
// The data pages of a protected write-rare pool are mapped read-write but tagged with one
// key (os::set_access_pkey, done by pool/region.cpp at protect time), and every thread's
// PKRU has that key write-disabled: the key is allocated write-disabled before main()
// (writer.cpp) and threads inherit their creator's PKRU. An update sets the calling
// thread's PKRU to allow writes, copies, and puts the old value back: two WRPKRU, no
// system call, and no other thread ever gains anything.
//
// Caveats (docs/write-rare.md): signal handlers run with the kernel's default PKRU, which
// access-disables every key but 0, so a handler cannot even read write-rare data; threads
// that existed before the library was loaded (dlopen) likewise. A fresh mmap() carries
// key 0, so pages are tagged again at each protect; mprotect() keeps the key.
// This machine's CPU has no protection keys: pkey_probe() fails and the unit tests cover
// the detection, the PKRU arithmetic and the fallback choice.
#include <atomic>

#include "os/os.hpp"
#include "os/pkru.hpp"
#include "wr/backends.hpp"

namespace pmalloc::internal::wr::detail {
namespace {
std::atomic<int> g_key{-1};
}

bool pkey_probe() noexcept {
  if (!os::cpu_has_pkeys()) return false;
  int key = -1;
  if (os::pkey_alloc_write_disabled(&key) != 0) return false;
  g_key.store(key, std::memory_order_release);
  return true;
}

int pkey_key() noexcept { return g_key.load(std::memory_order_acquire); }

int pkey_write(const Chunk* chunks, std::size_t count) noexcept {
  const int key = pkey_key();
  if (key < 0) return ENOTSUP;
  const std::uint32_t old = os::pkru::read();
  os::pkru::write(os::pkru::allow_write(old, key));
  for (std::size_t i = 0; i < count; ++i) copy_bytes(chunks[i].dst, chunks[i].src, chunks[i].n);
  os::pkru::write(old);
  return 0;
}

}  // namespace pmalloc::internal::wr::detail
