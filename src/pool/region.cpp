// Region life cycle (see region.hpp and the layout in layout.hpp).
#include "pool/region.hpp"

#include <cerrno>
#include <cstring>
#include <new>

#include "core/error.hpp"
#include "pmalloc/pmalloc.h"
#include "os/os.hpp"
#include "registry/registry.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal {
namespace {

std::size_t align_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }

}  // namespace

int region_create(Pool* pool, std::size_t data_bytes, unsigned flags, Region** out,
                  Pool** pool_out) noexcept {
  const std::size_t page = os::page_size();
  data_bytes = os::round_up_to_page(data_bytes);
  const std::size_t granules = data_bytes / kGranule;
  const std::size_t words = bitmap::words_for(granules);

  // Metadata: header, optional descriptor, two bitmaps, a nibble per granule.
  std::size_t off = align_up(sizeof(Region), alignof(std::max_align_t));
  const std::size_t pool_off = off;
  if (pool_out != nullptr) off = align_up(off + sizeof(Pool), alignof(bitmap::Word));
  const std::size_t used_off = off;
  const std::size_t start_off = used_off + words * sizeof(bitmap::Word);
  const std::size_t tails_off = start_off + words * sizeof(bitmap::Word);
  const std::size_t meta_bytes = os::round_up_to_page(tails_off + (granules + 1) / 2);

  const std::size_t guard = (flags & PMALLOC_NO_GUARD) != 0 ? 0 : page;
  const std::size_t total = guard + meta_bytes + data_bytes + guard;

  void* base = nullptr;
  // The alias writer needs memfd-backed regions (wr/alias_writer.cpp). Sealed pools stay
  // private where procmem exists: the kernel's /proc/self/mem path writes read-only pages
  // of private mappings only, and it is their writer (sealed pages cannot be aliased).
  // Where it does not, only their data gets sealed and their metadata is aliased like any.
  const bool shared = wr::regions_shared() && ((flags & PMALLOC_SEAL) == 0 || !wr::writes_sealed_pages());
  const int reserved = shared ? os::reserve_shared(total, &base) : os::reserve(total, &base);
  if (int e = reserved) {
    return fail(e == ENOMEM ? ENOMEM : e, "pmalloc: cannot reserve %zu bytes of address space (errno %d)",
                total, e);
  }
  auto* meta = static_cast<std::byte*>(base) + guard;
  if (int e = os::set_access(meta, meta_bytes, os::Access::read_write)) {
    (void)os::release(base, total);
    return fail(ENOMEM, "pmalloc: cannot commit %zu bytes of pool metadata (errno %d%s)", meta_bytes, e,
                e == ENOMEM ? "; raising vm.max_map_count may help" : "");
  }

  auto* r = new (meta) Region{};
  r->magic = kRegionMagic;
  r->pool = pool;
  r->reservation = static_cast<std::byte*>(base);
  r->reservation_size = total;
  r->meta = meta;
  r->meta_bytes = meta_bytes;
  r->data = meta + meta_bytes;
  r->capacity = granules;
  r->used = reinterpret_cast<bitmap::Word*>(meta + used_off);
  r->start = reinterpret_cast<bitmap::Word*>(meta + start_off);
  r->tails = reinterpret_cast<std::uint8_t*>(meta + tails_off);
  r->shared_owner = shared ? os::process_id() : 0;
  if (pool_out != nullptr) {
    auto* p = new (meta + pool_off) Pool{};
    r->pool = p;
    *pool_out = p;
  }
  if (registry::add(r->reservation, total, r) != 0) {
    (void)os::release(base, total);
    return fail(ENOMEM, "pmalloc: out of memory registering a region");
  }
  *out = r;
  return 0;
}

int region_commit(Region* r, std::size_t bytes, std::size_t* committed_out) noexcept {
  *committed_out = r->committed;
  if (bytes <= r->committed) return 0;
  std::size_t want = os::round_up_to_page(bytes);
  if (want < r->committed + kCommitStep) want = r->committed + kCommitStep;
  if (want > r->capacity_bytes()) want = r->capacity_bytes();
  if (int e = os::set_access(r->data + r->committed, want - r->committed, os::Access::read_write)) {
    return fail(ENOMEM, "pmalloc: cannot commit %zu bytes of pool data (errno %d%s)", want - r->committed,
                e, e == ENOMEM ? "; raising vm.max_map_count may help" : "");
  }
  *committed_out = want;
  return 0;
}

namespace {

// Whether protecting data up to `upto` tags pages with the write-rare key (pkey writer):
// the data pages of a write-rare pool then stay read-write but carry a key that every
// thread has write-disabled (wr/pkey_writer.cpp); metadata is read-only as usual.
int data_key(const Region& r, std::size_t upto) noexcept {
  if ((r.pool->flags & PMALLOC_WR) == 0 || upto <= r.protected_bytes) return -1;
  return wr::data_pkey();
}

// The OS side of a protection: meta (if not yet) and data [protected_bytes, upto) become
// read-only, or key-tagged (two calls instead of one, only then). `r` is the header as it
// was before. 0 or the errno of the call that failed.
int protect_pages(const Region& r, std::size_t upto) noexcept {
  std::byte* begin = r.meta_protected ? r.data + r.protected_bytes : r.meta;
  std::byte* const end = r.data + upto;
  if (const int key = data_key(r, upto); key >= 0) {
    std::byte* data_begin = r.data + r.protected_bytes;
    if (begin < data_begin) {
      if (int e = os::set_access(begin, static_cast<std::size_t>(data_begin - begin), os::Access::read)) {
        return fail(e, "pmalloc: mprotect of pool metadata failed (errno %d)", e);
      }
    }
    if (int e = os::set_access_pkey(data_begin, static_cast<std::size_t>(end - data_begin),
                                    os::Access::read_write, key)) {
      return fail(e, "pmalloc: pkey_mprotect of %zu bytes failed (errno %d)",
                  static_cast<std::size_t>(end - data_begin), e);
    }
    return 0;
  }
  if (end <= begin) return 0;
  if (int e = os::set_access(begin, static_cast<std::size_t>(end - begin), os::Access::read)) {
    return fail(e, "pmalloc: mprotect of %zu bytes failed (errno %d%s)", static_cast<std::size_t>(end - begin), e,
                e == ENOMEM ? "; raising vm.max_map_count may help" : "");
  }
  return 0;
}

// Takes back what protect_pages(before, upto) did: the pages were read-write before.
void unprotect_pages(const Region& before, std::size_t upto, int cause) noexcept {
  std::byte* begin = before.meta_protected ? before.data + before.protected_bytes : before.meta;
  std::byte* end = before.data + upto;
  if (end <= begin) return;
  int undo = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if ((undo = os::set_access(begin, static_cast<std::size_t>(end - begin), os::Access::read_write)) == 0) return;
  }
  fatal("region at %p: pages protected but the protection cannot be recorded (errno %d) nor undone (errno %d)",
        static_cast<void*>(before.meta), cause, undo);
}

// The header of `r` once data [0, upto) is protected: freed space below the new boundary
// is no longer reusable, and the cursor moves up to it.
Region protected_header(const Region& r, std::size_t upto) noexcept {
  Region h = r;
  const std::size_t pg = upto / kGranule;
  const std::size_t cursor = r.cursor > pg ? r.cursor : pg;
  h.protected_bytes = upto;
  if (data_key(r, upto) >= 0) h.pkey_bytes = upto;
  h.meta_protected = true;
  h.cursor = cursor;
  h.free_below_cursor = (cursor - pg) - bitmap::count(r.used, pg, cursor);
  return h;
}

// Writes into *dst the header fields a protection changes (those of protected_header()),
// and no other: the fields fixed at registration (pool, meta, data, ...) are read without
// the pool lock by the live-pool walk (pool/lifecycle.cpp), so they are never rewritten.
void store_protection(Region* dst, const Region& src) noexcept {
  dst->protected_bytes = src.protected_bytes;
  dst->pkey_bytes = src.pkey_bytes;
  dst->meta_protected = src.meta_protected;
  dst->cursor = src.cursor;
  dst->free_below_cursor = src.free_below_cursor;
}

// mseal()s what is protected of r (meta and data [0, protected_bytes)) and records it.
// Where no writer can change sealed pages (wr::writes_sealed_pages()), the metadata must
// stay updatable: it stays protected but unsealed, and only the data is sealed. A header
// update that fails after mseal under-reports what is sealed: never less safe, and
// reported as an error.
int seal_protected(Region* r) noexcept {
  std::byte* const end = r->data + r->protected_bytes;
  std::byte* begin = r->meta + r->sealed_bytes;
  if (!wr::writes_sealed_pages() && begin < r->data) begin = r->data;
  if (!os::seal_supported() || end <= begin) return 0;
  const auto span = static_cast<std::size_t>(end - r->meta);
  if (int e = os::seal(begin, static_cast<std::size_t>(end - begin))) {
    return fail(e, "pmalloc: mseal failed (errno %d); the pages are read-only but not sealed", e);
  }
  MetaTxn tx;
  Region* h = tx.edit(r, true);
  if (h == nullptr) return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
  h->sealed_bytes = span;
  return tx.commit();
}

}  // namespace

int region_protect_commit(Region* r, std::size_t upto, bool seal) noexcept {
  // A memfd-backed region (alias writer) is shared with a forked child: the header the
  // child would record its protection in is the parent's too, and the parent's pages
  // would not follow. Only the process that created the region protects it.
  if (r->shared_owner != 0 && r->shared_owner != os::process_id()) {
    return fail(EPERM, "pmalloc: the pool's pages are shared with the process this one was forked from "
                "(memfd pages of the 'alias' writer); only that process can protect them");
  }
  const Region before = *r;
  const Region after = protected_header(before, upto);
  if (!before.meta_protected) {
    // First protection: the header is still writable, so it is written in place *before*
    // the pages become read-only (no writer call), and put back if the OS refuses.
    store_protection(r, after);
    if (int e = protect_pages(before, upto)) {
      unprotect_pages(before, upto, e);
      store_protection(r, before);
      return e;
    }
  } else {
    if (int e = protect_pages(before, upto)) {
      unprotect_pages(before, upto, e);
      return e;
    }
    MetaTxn tx;
    Region* h = tx.edit(r, true);
    int e = h == nullptr ? fail(ENOMEM, "pmalloc: out of memory staging a metadata update") : 0;
    if (e == 0) {
      store_protection(h, after);
      e = tx.commit();
    }
    if (e != 0) {
      unprotect_pages(before, upto, e);
      return e;
    }
  }
  return seal ? seal_protected(r) : 0;
}

namespace {
// munmap of a whole reservation needs no split, so it fails only transiently (or under
// fault injection); a failure would leak the mapping for the life of the process.
void release_retrying(void* addr, std::size_t size) noexcept {
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (os::release(addr, size) == 0) return;
  }
}
}  // namespace

std::size_t region_release(Region* r) noexcept {
  std::byte* base = r->reservation;
  const std::size_t total = r->reservation_size;
  // The sealed span (seal_protected): from the metadata, or from the data where the
  // metadata was left unsealed.
  std::byte* sealed_from = wr::writes_sealed_pages() ? r->meta : r->data;
  std::byte* after = r->meta + r->sealed_bytes;
  registry::remove(base);
  if (after <= sealed_from) {
    release_retrying(base, total);
    return 0;
  }
  // The sealed span [sealed_from, after) cannot be unmapped or discarded; let go of
  // everything in front of it and after it.
  if (sealed_from > base) release_retrying(base, static_cast<std::size_t>(sealed_from - base));
  if (after < base + total) release_retrying(after, static_cast<std::size_t>(base + total - after));
  return static_cast<std::size_t>(after - sealed_from);
}

}  // namespace pmalloc::internal
