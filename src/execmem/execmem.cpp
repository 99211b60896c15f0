// The execmem front end (see execmem.hpp): type locks, pack choice, validation of
// updates and frees, ro_after_init protection and statistics.
#include "execmem/execmem.hpp"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.hpp"
#include "execmem/directory.hpp"
#include "execmem/pack.hpp"
#include "pmalloc/execmem.h"
#include "wr/writer.hpp"

namespace pmalloc::internal::execmem {
namespace {

#ifdef PMALLOC_DEBUG_CHECKS
constexpr bool kDebugChecks = true;
#else
constexpr bool kDebugChecks = false;
#endif

std::mutex& type_lock(Kind k) noexcept {
  static std::mutex* locks = new std::mutex[kKinds];  // never destroyed, like the packs
  return locks[static_cast<unsigned>(k)];
}

std::atomic<int>& huge_setting() noexcept {
  static std::atomic<int> value{[] {
    const char* env = std::getenv("PMALLOC_EXECMEM_HUGEPAGES");
    return env != nullptr && std::strcmp(env, "1") == 0 ? 1 : 0;
  }()};
  return value;
}

void debug_check(const Pack* p) noexcept {
  if constexpr (kDebugChecks) {
    if (!pack_check(p)) fatal("%s", last_error());
  }
}

// Finds the pack that holds p and takes its type's lock. A pack can be released and its
// address reused by a pack of another type between the lookup and the lock, so the
// lookup is repeated under the lock until both agree.
bool lock_pack_of(const void* p, std::unique_lock<std::mutex>* lock, DirEntry* out) noexcept {
  DirEntry d{};
  if (!directory::find(p, &d)) return false;
  for (;;) {
    std::unique_lock<std::mutex> l(type_lock(d.kind));
    DirEntry again{};
    if (!directory::find(p, &again)) return false;
    if (again.kind == d.kind) {
      if (again.pack->magic != kPackMagic || again.pack->self != again.pack || again.pack->kind != again.kind) {
        fatal("execmem: the pack directory points to a damaged pack at %p", static_cast<void*>(again.pack));
      }
      *lock = std::move(l);
      *out = again;
      return true;
    }
    d = again;
  }
}

// After a free left `p` empty: dedicated and closed packs go back to the OS; of the
// empty standard packs of a type one is kept, for the next allocation.
void retire_if_empty(Pack* p) noexcept {
  if (!pack_empty(p)) return;
  if (p->has(kDedicated) || p->has(kClosed)) {
    (void)pack_release(p);
    return;
  }
  std::vector<Pack*> packs;
  if (directory::packs_of(p->kind, &packs) != 0) return;
  for (Pack* other : packs) {
    if (other != p && pack_empty(other) && !other->has(kDedicated) && !other->has(kClosed) &&
        other->has(kHugeAsked) == p->has(kHugeAsked)) {
      (void)pack_release(p);
      return;
    }
  }
}

}  // namespace

void set_hugepages(bool enable) noexcept { huge_setting().store(enable ? 1 : 0, std::memory_order_relaxed); }
bool hugepages() noexcept { return huge_setting().load(std::memory_order_relaxed) != 0; }

int alloc(unsigned type, std::size_t size, void** out) noexcept {
  *out = nullptr;
  if (!valid_kind(type)) return fail(EINVAL, "execmem_alloc: unknown type %u", type);
  if (size == 0) return fail(EINVAL, "execmem_alloc: size must not be 0");
  if (size > kMaxAllocation) {
    return fail(ENOMEM, "execmem_alloc: %zu bytes is more than execmem hands out (at most %zu)", size, kMaxAllocation);
  }
  const auto kind = static_cast<Kind>(type);
  const bool huge = kind == Kind::text && hugepages();
  std::lock_guard<std::mutex> guard(type_lock(kind));

  if (size > kDedicatedAbove) {
    Pack* p = nullptr;
    if (int e = pack_create(kind, size, true, huge, &p)) return e;
    if (int e = pack_alloc(p, size, out)) {
      (void)pack_release(p);
      return e == ENOSPC ? fail(ENOMEM, "execmem_alloc: no room for %zu bytes in a dedicated pack", size) : e;
    }
    debug_check(p);
    return 0;
  }

  std::vector<Pack*> packs;
  if (int e = directory::packs_of(kind, &packs)) return e;
  for (Pack* p : packs) {
    // With huge pages asked for, new text goes only to packs created in that mode.
    if (p->has(kDedicated) || (huge && !p->has(kHugeAsked))) continue;
    const int e = pack_alloc(p, size, out);
    if (e == 0) {
      debug_check(p);
      return 0;
    }
    if (e != ENOSPC) return e;
  }
  Pack* p = nullptr;
  if (int e = pack_create(kind, kPackBytes, false, huge, &p)) return e;
  if (int e = pack_alloc(p, size, out)) {
    (void)pack_release(p);
    return e == ENOSPC ? fail(ENOMEM, "execmem_alloc: no room for %zu bytes in a fresh pack", size) : e;
  }
  debug_check(p);
  return 0;
}

int update_copy(void* dst, const void* src, std::size_t n) noexcept {
  if (dst == nullptr) return fail(EINVAL, "execmem_update_copy: destination is NULL");
  if (n != 0 && src == nullptr) return fail(EINVAL, "execmem_update_copy: source is NULL");
  if (n > UINTPTR_MAX - reinterpret_cast<std::uintptr_t>(dst)) {
    return fail(EINVAL, "execmem_update_copy: %p + %zu wraps around the address space", dst, n);
  }
  std::unique_lock<std::mutex> lock;
  DirEntry d{};
  if (!lock_pack_of(dst, &lock, &d)) {
    return fail(EINVAL, "execmem_update_copy: %p is not execmem memory", dst);
  }
  Block b;
  if (!pack_block_containing(d.pack, dst, n == 0 ? 1 : n, &b)) {
    return fail(EINVAL, "execmem_update_copy: [%p, +%zu) is not inside one live %s allocation (free space, "
                "metadata, or past the end of the block)", dst, n, kind_name(d.kind));
  }
  if (d.kind == Kind::data) {
    return fail(EINVAL, "execmem_update_copy: %p is EXECMEM_DATA, plain read-write memory that is not "
                "written by update; write it directly", dst);
  }
  if (d.kind == Kind::ro_after_init && d.pack->has(kClosed)) {
    return fail(EPERM, "execmem_update_copy: %p is EXECMEM_RO_AFTER_INIT memory, read-only for good since "
                "execmem_protect_ro_after_init()", dst);
  }
  if (n == 0) return 0;
  if (d.kind == Kind::ro_after_init) {
    std::memmove(dst, src, n);
    return 0;
  }
  // The writer copies from src page by page; a source overlapping the destination is
  // copied aside first so that the result is the one memmove would give.
  const auto s = reinterpret_cast<std::uintptr_t>(src);
  const auto t = reinterpret_cast<std::uintptr_t>(dst);
  std::vector<unsigned char> aside;
  if (s < t + n && t < s + n) {
    try {
      aside.assign(static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + n);
    } catch (const std::bad_alloc&) {
      return fail(ENOMEM, "execmem_update_copy: out of memory copying an overlapping source");
    }
    src = aside.data();
  }
  if (int e = wr::write(dst, src, n, page_access(d.kind))) {
    return fail(e, "execmem_update_copy: the '%s' writer failed (errno %d)", wr::backend_name(wr::backend()), e);
  }
  if (d.kind == Kind::text) {
    // Make the new code visible to instruction fetch (a no-op on x86-64, whose caches are
    // coherent, but required on other architectures).
    __builtin___clear_cache(static_cast<char*>(dst), static_cast<char*>(dst) + n);
  }
  return 0;
}

int deallocate(void* p) noexcept {
  if (p == nullptr) return 0;
  std::unique_lock<std::mutex> lock;
  DirEntry d{};
  if (!lock_pack_of(p, &lock, &d)) return fail(EINVAL, "execmem_free: %p is not execmem memory", p);
  Block b;
  if (!pack_block_at(d.pack, p, &b)) {
    return fail(EINVAL, "execmem_free: %p does not start a live %s allocation (interior pointer, free space or "
                "double free)", p, kind_name(d.kind));
  }
  if (int e = pack_free(d.pack, b)) return e;
  debug_check(d.pack);
  retire_if_empty(d.pack);
  return 0;
}

int protect_ro_after_init() noexcept {
  std::lock_guard<std::mutex> guard(type_lock(Kind::ro_after_init));
  std::vector<Pack*> packs;
  if (int e = directory::packs_of(Kind::ro_after_init, &packs)) return e;
  int first_error = 0;
  for (Pack* p : packs) {
    if (!pack_needs_protect(p)) continue;
    const int e = pack_protect(p);
    if (e != 0 && first_error == 0) first_error = e;
    debug_check(p);
  }
  if (first_error != 0) {
    // Keep the first failure's reason: later successes do not overwrite it.
    return first_error;
  }
  return 0;
}

int stats(unsigned type, execmem_stats* out) noexcept {
  if (out == nullptr) return fail(EINVAL, "execmem_get_stats: output is NULL");
  if (!valid_kind(type)) return fail(EINVAL, "execmem_get_stats: unknown type %u", type);
  const auto kind = static_cast<Kind>(type);
  std::lock_guard<std::mutex> guard(type_lock(kind));
  std::vector<Pack*> packs;
  if (int e = directory::packs_of(kind, &packs)) return e;
  *out = execmem_stats{};
  for (const Pack* p : packs) pack_add_stats(p, out);
  return 0;
}

Placement locate(const void* p, std::size_t n, Found* out) noexcept {
  std::unique_lock<std::mutex> lock;
  DirEntry d{};
  if (!lock_pack_of(p, &lock, &d)) return Placement::none;
  Block b;
  if (!pack_block_containing(d.pack, p, n == 0 ? 1 : n, &b)) return Placement::bad;
  out->kind = d.kind;
  out->begin = b.begin;
  out->size = b.size;
  out->writable = d.kind == Kind::data || (d.kind == Kind::ro_after_init && !d.pack->has(kClosed));
  return Placement::ok;
}

bool check_all() noexcept {
  for (unsigned k = 0; k < kKinds; ++k) {
    const auto kind = static_cast<Kind>(k);
    std::lock_guard<std::mutex> guard(type_lock(kind));
    std::vector<Pack*> packs;
    if (directory::packs_of(kind, &packs) != 0) return false;
    for (const Pack* p : packs) {
      if (!pack_check(p)) return false;
    }
  }
  return true;
}

}  // namespace pmalloc::internal::execmem
