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

int region_protect(Region* r, std::size_t upto, bool seal, MetaTxn& tx) noexcept {
  std::byte* begin = r->meta_protected ? r->data + r->protected_bytes : r->meta;
  std::byte* end = r->data + upto;
  // Under the pkey writer the data pages of a write-rare pool stay read-write but get the
  // write-rare key, which every thread has write-disabled (wr/pkey_writer.cpp); metadata
  // is read-only as usual. Two calls instead of one, only then.
  const int key = (r->pool->flags & PMALLOC_WR) != 0 ? wr::data_pkey() : -1;
  std::size_t pkey_bytes = r->pkey_bytes;
  if (key >= 0 && end > r->data + r->protected_bytes) {
    std::byte* data_begin = r->data + r->protected_bytes;
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
    pkey_bytes = upto;
    begin = end;  // done
  }
  if (end > begin) {
    if (int e = os::set_access(begin, static_cast<std::size_t>(end - begin), os::Access::read)) {
      return fail(e, "pmalloc: mprotect of %zu bytes failed (errno %d%s)", static_cast<std::size_t>(end - begin), e,
                  e == ENOMEM ? "; raising vm.max_map_count may help" : "");
    }
  }
  int seal_error = 0;
  std::size_t sealed = r->sealed_bytes;
  const std::size_t protected_span = static_cast<std::size_t>(end - r->meta);
  if (seal && os::seal_supported() && protected_span > sealed) {
    // Where no writer can change sealed pages (no /proc/self/mem), the metadata stays
    // unsealed so that the pool keeps working after protect (frees, allocations in fresh
    // pages, new regions, destroy): it is read-only like the data, only not mseal()ed.
    std::byte* from = r->meta + sealed;
    if (!wr::writes_sealed_pages() && from < r->data) from = r->data;
    if (end > from) seal_error = os::seal(from, static_cast<std::size_t>(end - from));
    if (seal_error == 0) {
      sealed = protected_span;
    } else {
      (void)fail(seal_error, "pmalloc: mseal failed (errno %d); the pages are read-only but not sealed",
                 seal_error);
    }
  }

  // Freed space below the new protected boundary is no longer reusable.
  const std::size_t pg = upto / kGranule;
  const std::size_t cursor = r->cursor > pg ? r->cursor : pg;
  const std::size_t live_above = bitmap::count(r->used, pg, cursor);
  // The metadata is read-only now (it was, or the call above covered it).
  Region* h = tx.edit(r, true);
  if (h == nullptr) return fail(ENOMEM, "pmalloc: out of memory staging a metadata update");
  h->protected_bytes = upto;
  h->pkey_bytes = pkey_bytes;
  h->meta_protected = true;
  h->sealed_bytes = sealed;
  h->cursor = cursor;
  h->free_below_cursor = (cursor - pg) - live_above;
  return seal_error;
}

int region_protect_commit(Region* r, std::size_t upto, bool seal) noexcept {
  // A memfd-backed region (alias writer) is shared with a forked child: the header the
  // child would record its protection in is the parent's too, and the parent's pages
  // would not follow. Only the process that created the region protects it.
  if (r->shared_owner != 0 && r->shared_owner != os::process_id()) {
    return fail(EPERM, "pmalloc: the pool's pages are shared with the process this one was forked from "
                "(memfd pages of the 'alias' writer); only that process can protect them");
  }
  std::byte* begin = r->meta_protected ? r->data + r->protected_bytes : r->meta;
  std::byte* end = r->data + upto;
  // Phase 1: protect and record it. Nothing is sealed yet, so a failure can be undone.
  MetaTxn tx;
  int e = region_protect(r, upto, false, tx);
  if (e == 0) e = tx.commit();
  if (e != 0) {
    if (end > begin) {
      int undo = 0;
      for (int attempt = 0; attempt < 4; ++attempt) {
        if ((undo = os::set_access(begin, static_cast<std::size_t>(end - begin), os::Access::read_write)) == 0) {
          return e;
        }
      }
      fatal("region at %p: pages protected but the protection cannot be recorded (errno %d) nor undone "
            "(errno %d)", static_cast<void*>(r->meta), e, undo);
    }
    return e;
  }
  if (!seal) return 0;
  // Phase 2: seal what is protected now. If the header update fails after mseal, the
  // header under-reports what is sealed: never less safe, and reported as an error.
  MetaTxn stx;
  e = region_protect(r, upto, true, stx);
  const int c = stx.commit();
  return e != 0 ? e : c;
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
  // The sealed span (region_protect): from the metadata, or from the data where the
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
