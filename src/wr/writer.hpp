// The writer: the one internal path that changes bytes in write-protected pmalloc pages.
//
// Pool metadata updates after protection, write-rare updates (wr_*), sealed-cache
// initialisation and execmem code updates all end here. The back end is chosen once, when
// the library is loaded, best first (docs/write-rare.md):
//   pkey     - protection keys: the data pages of protected write-rare pools carry a key
//              that every thread has write-disabled; an update enables writes for the
//              calling thread only, for the copy (two WRPKRU, no system call);
//   procmem  - the kernel writes through /proc/self/mem; no permission ever changes;
//   alias    - pool regions are memfd-backed; an update maps the target pages a second
//              time, read-write, at a random address, writes, and unmaps the view;
//   mprotect - last resort: the target pages are writable for every thread during the
//              update (warned once on stderr).
// PMALLOC_WR_BACKEND=<name> forces one. A forced back end that is unknown or unavailable
// here is refused with one line on stderr, and the automatic choice is used instead.
//
// Targets the primary back end cannot reach are written by the fallback writer (procmem
// where available, else mprotect): under pkey, pages without the key (metadata, text,
// read-only pools); under alias, pages that are not memfd-backed or are sealed.
//
// The writer checks nothing about its target: callers validate (pool metadata, registry)
// and serialise writers of the same bytes. Targets must be readable. `restore` is the
// access the target pages have now and must have again afterwards (read or read_exec;
// only the mprotect windows use it; no page is ever writable and executable).
#pragma once

#include <cstddef>
#include <cstdint>

#include "os/os.hpp"

namespace pmalloc::internal::wr {

enum class Backend { pkey, procmem, alias, mprotect, none };

struct Chunk {
  void* dst;
  const void* src;
  std::size_t n;
};

// The back end in use (chosen once, at load time).
Backend backend() noexcept;
const char* backend_name(Backend b) noexcept;
// Whether a back end can work on this machine (probed once, cached).
bool backend_available(Backend b) noexcept;
// Why a back end is unavailable here ("" when it is available).
const char* unavailable_reason(Backend b) noexcept;

// The selection rule, pure so that it can be tested for every machine: `forced` is the
// environment value (nullptr/"" for none); `available(b)` says what works. Writes a
// one-line refusal into `message` when a forced back end cannot be honoured ("" if not).
Backend select_backend(const char* forced, bool (*available)(Backend, void*), void* context, char* message,
                       std::size_t message_size) noexcept;

// Whether a writer here can change mseal()ed pages: procmem can (the kernel writes them,
// as the primary back end or as the fallback); alias, mprotect and the pkey fallback
// cannot. Where none can (kernels that refuse /proc/self/mem writes), pools seal their
// data but not their metadata, which must stay updatable (pool/region.cpp), and sealed
// caches do not seal (cache/cache.cpp).
bool writes_sealed_pages() noexcept;

// How pool regions must be set up for the chosen back end (asked by pool/region.cpp):
// alias needs memfd-backed regions; pkey tags the data pages of write-rare pools with
// data_pkey() when they are protected (-1: no tagging).
bool regions_shared() noexcept;
int data_pkey() noexcept;

// 0 or an errno value. Nothing is written on EINVAL/ENOTSUP. An aligned 8-byte chunk is
// stored with one release store (the procmem kernel copy of an aligned word is one store
// on x86-64 too), so concurrent readers never see it torn.
[[nodiscard]] int write(void* dst, const void* src, std::size_t n, os::Access restore) noexcept;
// All or nothing: when a chunk fails, the chunks already written get their old bytes back
// (if even that fails the process stops, as for metadata). Chunks are applied in order;
// the fixed cost (alias mapping, PKRU switch, mprotect window) is paid once per region
// where the back end allows it.
[[nodiscard]] int write_many(const Chunk* chunks, std::size_t count, os::Access restore) noexcept;
[[nodiscard]] int fill(void* dst, int byte, std::size_t n, os::Access restore) noexcept;
// Stores an aligned pointer-sized word with release ordering (for wr_rcu_assign_pointer).
[[nodiscard]] int publish(void* dst, std::uintptr_t value, os::Access restore) noexcept;

// True when the back end's cost is one system call per chunk (procmem): callers that own
// a span of protected bytes exclusively may merge nearby chunks into one.
bool merging_pays() noexcept;

}  // namespace pmalloc::internal::wr
