// The pack directory (see directory.hpp): a sorted array in read-only pages.
#include "execmem/directory.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <shared_mutex>

#include "core/error.hpp"
#include "os/os.hpp"
#include "pool/meta_txn.hpp"

namespace pmalloc::internal::execmem::directory {
namespace {

// 1 MiB of address space: 32,766 packs, i.e. 64 GiB of standard packs. Pages that were
// never written cost nothing (they read as the shared zero page).
constexpr std::size_t kBytes = std::size_t{1} << 20;
constexpr std::uint64_t kMagic = 0x7269646d656d7865ULL;  // "exmemdir"

struct Header {
  std::uint64_t magic;
  std::size_t count;
  std::size_t capacity;
};
constexpr std::size_t kEntriesOffset = 64;
static_assert(sizeof(Header) <= kEntriesOffset);

struct State {
  std::shared_mutex lock;
  std::mutex init_lock;
  std::atomic<Header*> header{nullptr};
};

State& state() noexcept {
  static State* s = new State;  // never destroyed: execmem memory may outlive static destructors
  return *s;
}

DirEntry* entries(Header* h) noexcept {
  return reinterpret_cast<DirEntry*>(reinterpret_cast<std::byte*>(h) + kEntriesOffset);
}

// The directory pages, set up on first use. Retried after a failure (which fault-injection
// tests provoke), so one failed OS call does not disable execmem for good.
Header* storage() noexcept {
  State& s = state();
  Header* h = s.header.load(std::memory_order_acquire);
  if (h != nullptr) return h;
  std::lock_guard guard(s.init_lock);
  h = s.header.load(std::memory_order_acquire);
  if (h != nullptr) return h;
  void* base = nullptr;
  if (os::reserve(kBytes, &base) != 0) return nullptr;
  if (os::set_access(base, kBytes, os::Access::read_write) != 0) {
    (void)os::release(base, kBytes);
    return nullptr;
  }
  auto* fresh = new (base) Header{kMagic, 0, (kBytes - kEntriesOffset) / sizeof(DirEntry)};
  if (os::set_access(base, kBytes, os::Access::read) != 0) {
    (void)os::release(base, kBytes);
    return nullptr;
  }
  s.header.store(fresh, std::memory_order_release);
  return fresh;
}

// Index of the first entry whose begin is > a.
std::size_t upper(const Header* h, std::uintptr_t a) noexcept {
  const DirEntry* e = entries(const_cast<Header*>(h));
  return static_cast<std::size_t>(
      std::upper_bound(e, e + h->count, a, [](std::uintptr_t x, const DirEntry& d) { return x < d.begin; }) - e);
}

}  // namespace

int add(const DirEntry& entry) noexcept {
  Header* h = storage();
  if (h == nullptr) return fail(ENOMEM, "execmem: cannot set up the pack directory");
  std::unique_lock guard(state().lock);
  const std::size_t count = h->count;
  if (count >= h->capacity) {
    return fail(ENOMEM, "execmem: the pack directory is full (%zu packs)", count);
  }
  const std::size_t at = upper(h, entry.begin);
  MetaTxn tx;
  // A private copy of entries [at, count], the last slot being the free one.
  auto* view = tx.edit(entries(h) + at, true, count - at + 1);
  auto* n = tx.edit(&h->count, true);
  if (view == nullptr || n == nullptr) return fail(ENOMEM, "execmem: out of memory staging a directory update");
  std::memmove(view + 1, view, (count - at) * sizeof(DirEntry));
  view[0] = entry;
  *n = count + 1;
  if (int e = tx.commit()) {
    return fail(e, "execmem: cannot update the pack directory through the writer (errno %d)", e);
  }
  return 0;
}

int remove(const Pack* pack) noexcept {
  Header* h = state().header.load(std::memory_order_acquire);
  if (h == nullptr) return 0;
  std::unique_lock guard(state().lock);
  const std::size_t count = h->count;
  DirEntry* e = entries(h);
  std::size_t at = 0;
  while (at < count && e[at].pack != pack) ++at;
  if (at == count) return 0;
  MetaTxn tx;
  auto* view = tx.edit(e + at, true, count - at);
  auto* n = tx.edit(&h->count, true);
  if (view == nullptr || n == nullptr) return fail(ENOMEM, "execmem: out of memory staging a directory update");
  std::memmove(view, view + 1, (count - at - 1) * sizeof(DirEntry));
  std::memset(static_cast<void*>(view + (count - at - 1)), 0, sizeof(DirEntry));
  *n = count - 1;
  if (int err = tx.commit()) {
    return fail(err, "execmem: cannot update the pack directory through the writer (errno %d)", err);
  }
  return 0;
}

bool find(const void* p, DirEntry* out) noexcept {
  Header* h = state().header.load(std::memory_order_acquire);
  if (h == nullptr) return false;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::shared_lock guard(state().lock);
  const std::size_t i = upper(h, a);
  if (i == 0) return false;
  const DirEntry& d = entries(h)[i - 1];
  if (a >= d.end) return false;
  *out = d;
  return true;
}

int packs_of(Kind kind, std::vector<Pack*>* out) noexcept {
  out->clear();
  Header* h = state().header.load(std::memory_order_acquire);
  if (h == nullptr) return 0;
  std::shared_lock guard(state().lock);
  const DirEntry* e = entries(h);
  try {
    for (std::size_t i = 0; i < h->count; ++i) {
      if (e[i].kind == kind) out->push_back(e[i].pack);
    }
  } catch (const std::bad_alloc&) {
    return fail(ENOMEM, "execmem: out of memory listing packs");
  }
  return 0;
}

std::size_t size() noexcept {
  Header* h = state().header.load(std::memory_order_acquire);
  if (h == nullptr) return 0;
  std::shared_lock guard(state().lock);
  return h->count;
}

}  // namespace pmalloc::internal::execmem::directory
