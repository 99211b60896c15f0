// Writer front end: back-end selection (once, at load time), routing of each chunk to the
// primary back end or the fallback writer, and the all-or-nothing rule of write_many.
#include "wr/writer.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "core/error.hpp"
#include "pool/layout.hpp"
#include "registry/registry.hpp"
#include "wr/backends.hpp"

namespace pmalloc::internal::wr {
namespace {

constexpr Backend kOrder[] = {Backend::pkey, Backend::procmem, Backend::alias, Backend::mprotect};

bool probe_available(Backend b, void*) noexcept { return backend_available(b); }

Backend choose() noexcept {
  char message[256];
  const Backend b = select_backend(std::getenv("PMALLOC_WR_BACKEND"), probe_available, nullptr, message,
                                   sizeof message);
  if (message[0] != '\0') std::fprintf(stderr, "pmalloc: %s\n", message);
  return b;
}

// Chosen before main() runs: the pkey back end must allocate its key before the program
// starts threads (they inherit the creator's PKRU), and the probes must not meet a fault
// armed by a test (os/fault.hpp) half way through a program.
[[gnu::constructor]] void choose_at_load() { (void)backend(); }

// The writer for targets the primary back end cannot reach.
int fallback_write(const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  if (count == 0) return 0;
  if (backend_available(Backend::procmem)) return detail::procmem_write(chunks, count);
  return detail::mprotect_write(chunks, count, restore);
}

// Splits chunks between the primary back end (those `primary(target)` accepts) and the
// fallback writer; each group keeps its order.
template <class Accept, class Primary>
int routed_write(const Chunk* chunks, std::size_t count, os::Access restore, Accept accept,
                 Primary primary) noexcept {
  if (count == 1) {
    const detail::Target t = detail::classify(chunks[0]);
    if (accept(t)) {
      const int e = primary(chunks, 1);
      if (e != EINVAL && e != EPERM) return e;  // not aliasable after all: fall back
    }
    return fallback_write(chunks, 1, restore);
  }
  std::vector<Chunk> mine, others;
  try {
    mine.reserve(count);
    others.reserve(count);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  for (std::size_t i = 0; i < count; ++i) {
    (accept(detail::classify(chunks[i])) ? mine : others).push_back(chunks[i]);
  }
  if (!mine.empty()) {
    const int e = primary(mine.data(), mine.size());
    if (e == EINVAL || e == EPERM) {
      others.insert(others.begin(), mine.begin(), mine.end());
    } else if (e != 0) {
      return e;
    }
  }
  return fallback_write(others.data(), others.size(), restore);
}

int apply(const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  switch (backend()) {
    case Backend::procmem: return detail::procmem_write(chunks, count);
    case Backend::mprotect:
      // mprotect cannot touch sealed pages; procmem can, where it exists.
      return routed_write(
          chunks, count, restore, [](const detail::Target& t) { return !t.sealed; },
          [restore](const Chunk* c, std::size_t n) { return detail::mprotect_write(c, n, restore); });
    case Backend::alias:
      return routed_write(
          chunks, count, restore, [](const detail::Target& t) { return t.region != nullptr && !t.sealed; },
          [](const Chunk* c, std::size_t n) { return detail::alias_write(c, n); });
    case Backend::pkey:
      return routed_write(
          chunks, count, restore, [](const detail::Target& t) { return t.tagged; },
          [](const Chunk* c, std::size_t n) { return detail::pkey_write(c, n); });
    case Backend::none: return ENOTSUP;
  }
  return ENOTSUP;
}

}  // namespace

const char* backend_name(Backend b) noexcept {
  switch (b) {
    case Backend::pkey: return "pkey";
    case Backend::procmem: return "procmem";
    case Backend::alias: return "alias";
    case Backend::mprotect: return "mprotect";
    case Backend::none: return "none";
  }
  return "none";
}

bool backend_available(Backend b) noexcept {
  switch (b) {
    case Backend::pkey: {
      static const bool ok = detail::pkey_probe();
      return ok;
    }
    case Backend::procmem: {
      static const bool ok = detail::procmem_probe();
      return ok;
    }
    case Backend::alias: {
      static const bool ok = detail::alias_probe();
      return ok;
    }
    case Backend::mprotect: return true;
    case Backend::none: return false;
  }
  return false;
}

const char* unavailable_reason(Backend b) noexcept {
  if (backend_available(b)) return "";
  switch (b) {
    case Backend::pkey:
      return os::cpu_has_pkeys() ? "pkey_alloc() failed (no free protection key)"
                                 : "this CPU or kernel has no memory protection keys";
    case Backend::procmem: return "/proc/self/mem cannot be opened for writing or refuses writes";
    case Backend::alias: return "memfd_create() or a second mapping of shared pages failed";
    case Backend::mprotect:
    case Backend::none: return "not a back end";
  }
  return "";
}

Backend select_backend(const char* forced, bool (*available)(Backend, void*), void* context, char* message,
                       std::size_t message_size) noexcept {
  if (message_size > 0) message[0] = '\0';
  Backend automatic = Backend::none;
  for (Backend b : kOrder) {
    if (available(b, context)) {
      automatic = b;
      break;
    }
  }
  if (forced == nullptr || *forced == '\0') return automatic;
  for (Backend b : kOrder) {
    if (std::strcmp(forced, backend_name(b)) != 0) continue;
    if (available(b, context)) return b;
    std::snprintf(message, message_size,
                  "PMALLOC_WR_BACKEND=%s refused: that writer is not available on this machine; "
                  "using '%s' instead", forced, backend_name(automatic));
    return automatic;
  }
  std::snprintf(message, message_size,
                "PMALLOC_WR_BACKEND=%s refused: unknown writer (pkey, procmem, alias or mprotect); "
                "using '%s' instead", forced, backend_name(automatic));
  return automatic;
}

Backend backend() noexcept {
  static const Backend chosen = choose();
  return chosen;
}

bool regions_shared() noexcept { return backend() == Backend::alias; }

bool writes_sealed_pages() noexcept { return backend_available(Backend::procmem); }

int data_pkey() noexcept { return backend() == Backend::pkey ? detail::pkey_key() : -1; }

bool merging_pays() noexcept { return backend() == Backend::procmem; }

namespace detail {

Target classify(const Chunk& c) noexcept {
  Target t;
  const Region* r = registry::find(c.dst);
  if (r == nullptr) return t;
  auto* b = static_cast<const std::byte*>(c.dst);
  const std::byte* e = b + c.n;
  if (b < r->meta || e > r->data + r->capacity_bytes()) return t;  // guard pages: not ours to write
  t.region = r;
  // The sealed span: [meta, meta + sealed_bytes), without the metadata pages where no
  // writer reaches sealed pages (pool/region.cpp seals only data there).
  const std::byte* seal_lo = writes_sealed_pages() ? r->meta : r->data;
  const std::byte* seal_hi = r->meta + r->sealed_bytes;
  t.sealed = seal_hi > seal_lo && b < seal_hi && e > seal_lo;
  t.inherited = r->shared_owner != 0 && r->shared_owner != os::process_id();
  t.tagged = b >= r->data && e <= r->data + r->pkey_bytes;
  t.uniform_read = r->meta_protected && e <= r->data + r->protected_bytes;
  return t;
}

}  // namespace detail

int write_many(const Chunk* chunks, std::size_t count, os::Access restore) noexcept {
  if (count != 0 && chunks == nullptr) return EINVAL;
  std::size_t live = 0, bytes = 0;
  const Chunk* only = nullptr;
  for (std::size_t i = 0; i < count; ++i) {
    if (chunks[i].n == 0) continue;
    if (chunks[i].dst == nullptr || chunks[i].src == nullptr) return EINVAL;
    ++live;
    bytes += chunks[i].n;
    only = &chunks[i];
  }
  if (live == 0) return 0;
  // memfd-backed pages stay shared with a forked child: what the child wrote through the
  // writer (pool metadata, wr_* data) would change the parent's pools. Only the process
  // that created a shared region updates it.
  if (regions_shared()) {
    for (std::size_t i = 0; i < count; ++i) {
      if (chunks[i].n != 0 && detail::classify(chunks[i]).inherited) {
        return fail(EPERM, "pmalloc: %p lies in pool memory shared with the process this one was forked from "
                    "(memfd pages of the 'alias' writer); only that process can change it", chunks[i].dst);
      }
    }
  }
  // Keep the old bytes so that a failure half way (or after the copy: an mprotect restore,
  // an unmap of the view) can be undone. Every snapshot is taken before anything is
  // written, so writing all of them back restores the original state even when chunks
  // overlap.
  std::byte small[512];
  Chunk one_work, one_undo;
  std::unique_ptr<std::byte[]> large;
  std::vector<Chunk> many_work, many_undo;
  std::byte* old = small;
  const Chunk* work = &one_work;
  const Chunk* undo = &one_undo;
  try {
    if (bytes > sizeof small) {
      large = std::make_unique<std::byte[]>(bytes);
      old = large.get();
    }
    if (live == 1) {
      std::memcpy(old, only->dst, only->n);
      one_work = *only;
      one_undo = Chunk{only->dst, old, only->n};
    } else {
      many_work.reserve(live);
      many_undo.reserve(live);
      std::size_t at = 0;
      for (std::size_t i = 0; i < count; ++i) {
        if (chunks[i].n == 0) continue;
        std::memcpy(old + at, chunks[i].dst, chunks[i].n);
        many_work.push_back(chunks[i]);
        many_undo.push_back(Chunk{chunks[i].dst, old + at, chunks[i].n});
        at += chunks[i].n;
      }
      work = many_work.data();
      undo = many_undo.data();
    }
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  const int e = apply(work, live, restore);
  if (e == 0) return 0;
  if (int u = apply(undo, live, restore)) {
    // Most failures happen before anything is written (the writer could not reach the
    // pages at all): then there is nothing to undo. Otherwise the state is half applied.
    for (std::size_t i = 0; i < live; ++i) {
      if (std::memcmp(undo[i].dst, undo[i].src, undo[i].n) != 0) {
        fatal("write-rare update failed (errno %d) and could not be undone (errno %d)", e, u);
      }
    }
  }
  return e;
}

int write(void* dst, const void* src, std::size_t n, os::Access restore) noexcept {
  if (n == 0) return 0;
  if (dst == nullptr || src == nullptr) return EINVAL;
  const Chunk c{dst, src, n};
  return write_many(&c, 1, restore);
}

int fill(void* dst, int byte, std::size_t n, os::Access restore) noexcept {
  if (n == 0) return 0;
  if (dst == nullptr) return EINVAL;
  unsigned char small[256];
  std::unique_ptr<unsigned char[]> large;
  unsigned char* buffer = small;
  if (n > sizeof small) {
    large.reset(new (std::nothrow) unsigned char[n]);
    if (large == nullptr) return ENOMEM;
    buffer = large.get();
  }
  std::memset(buffer, byte, n);
  return write(dst, buffer, n, restore);
}

int publish(void* dst, std::uintptr_t value, os::Access restore) noexcept {
  if (dst == nullptr || (reinterpret_cast<std::uintptr_t>(dst) & (sizeof(void*) - 1)) != 0) return EINVAL;
  // Everything written before (the object being published) is visible first: the
  // in-process back ends store the word with a release store (detail::copy_bytes); for
  // procmem the system call orders all earlier stores, and this keeps the compiler from
  // sinking them past it. (No atomic_thread_fence: ThreadSanitizer does not model it.)
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return write(dst, &value, sizeof value, restore);
}

}  // namespace pmalloc::internal::wr
