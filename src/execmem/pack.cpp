// Packs: set-up, allocation, free with page return, ro_after_init protection, invariants.
// The layout, page states and invariants are described in pack.hpp.
#include "execmem/pack.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "execmem/directory.hpp"
#include "os/os.hpp"
#include "pmalloc/execmem.h"
#include "pool/meta_txn.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal::execmem {
namespace {

using bitmap::kBits;
using bitmap::Word;

std::size_t align_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }

// Tails: a byte per granule for text (size % 64 needs 6 bits), a nibble for 16-byte granules.
bool byte_tails(std::uint32_t shift) noexcept { return shift > 4; }
std::size_t tail_bytes(std::uint32_t shift, std::size_t granules) noexcept {
  return byte_tails(shift) ? granules : (granules + 1) / 2;
}
unsigned tail_of(const Pack* p, std::size_t g) noexcept {
  if (byte_tails(p->granule_shift)) return p->tails[g];
  return (p->tails[g / 2] >> ((g & 1) * 4)) & 0xFu;
}
std::size_t size_of(const Pack* p, std::size_t granules, unsigned tail) noexcept {
  return (granules << p->granule_shift) - (tail == 0 ? 0 : p->granule() - tail);
}

// Stages bits [b, e) of w set or clear. One call per bitmap per operation: MetaTxn keeps
// one private copy per edited range, so overlapping edits of one array would clash.
bool stage_bits(MetaTxn& tx, Word* w, std::size_t b, std::size_t e, bool value) noexcept {
  if (b >= e) return true;
  const std::size_t w0 = b / kBits;
  const std::size_t w1 = (e - 1) / kBits;
  Word* view = tx.edit(w + w0, true, w1 - w0 + 1);
  if (view == nullptr) return false;
  if (value) {
    bitmap::set_range(view, b - w0 * kBits, e - w0 * kBits);
  } else {
    bitmap::clear_range(view, b - w0 * kBits, e - w0 * kBits);
  }
  return true;
}

bool stage_tail(MetaTxn& tx, Pack* p, std::size_t g, unsigned tail) noexcept {
  if (byte_tails(p->granule_shift)) {
    std::uint8_t* b = tx.edit(p->tails + g, true);
    if (b == nullptr) return false;
    *b = static_cast<std::uint8_t>(tail);
    return true;
  }
  std::uint8_t* b = tx.edit(p->tails + g / 2, true);
  if (b == nullptr) return false;
  const unsigned shift = (g & 1) * 4;
  *b = static_cast<std::uint8_t>((*b & ~(0xFu << shift)) | ((tail & 0xFu) << shift));
  return true;
}

std::byte* page_addr(const Pack* p, std::size_t page) noexcept { return p->data + page * os::page_size(); }

// Makes pages [first, first + count) usable for the pack's type, with the fill of free
// granules. Text: PROT_NONE -> RW, fill with int3, -> RX (never W+X, and nothing in these
// pages has been handed out yet). Data types: discard (so the pages read as zeros even if
// an earlier return to the OS half failed), then the type's access. 0 or an errno value;
// on failure the pages are left PROT_NONE (best effort).
int commit_pages(const Pack* p, std::size_t first, std::size_t count) noexcept {
  std::byte* a = page_addr(p, first);
  const std::size_t len = count * os::page_size();
  if (p->kind == Kind::text) {
    if (int e = os::set_access(a, len, os::Access::read_write)) return e;
    std::memset(a, kTrapByte, len);
    if (int e = os::set_access(a, len, os::Access::read_exec)) {
      (void)os::set_access(a, len, os::Access::none);
      return e;
    }
    return 0;
  }
  if (int e = os::discard(a, len)) return e;
  if (int e = os::set_access(a, len, page_access(p->kind))) {
    (void)os::set_access(a, len, os::Access::none);
    return e;
  }
  return 0;
}

// Returns pages to the OS: inaccessible first (a dangling pointer faults from now on),
// then discarded. Best effort: the pages are marked uncommitted either way, and
// commit_pages() re-establishes their contents before any reuse.
void release_pages(const Pack* p, std::size_t first, std::size_t count) noexcept {
  std::byte* a = page_addr(p, first);
  const std::size_t len = count * os::page_size();
  if (os::set_access(a, len, os::Access::none) == 0) (void)os::discard(a, len);
}

// True when no granule of `page` other than those in [s, e) is used.
bool page_free_except(const Pack* p, std::size_t page, std::size_t s, std::size_t e) noexcept {
  const std::size_t per = os::page_size() >> p->granule_shift;
  const std::size_t pb = page * per;
  const std::size_t pe = pb + per;
  const std::size_t lo_end = s < pe ? (s > pb ? s : pb) : pe;
  if (bitmap::find_set(p->used, pb, lo_end) != lo_end) return false;
  const std::size_t hi_begin = e > pb ? (e < pe ? e : pe) : pb;
  return bitmap::find_set(p->used, hi_begin, pe) == pe;
}

// Runs of pages as [first, first + count).
using Runs = std::vector<std::pair<std::size_t, std::size_t>>;

void add_page(Runs& runs, std::size_t page) {
  if (!runs.empty() && runs.back().first + runs.back().second == page) {
    ++runs.back().second;
  } else {
    runs.emplace_back(page, 1);
  }
}

// Marks block b free (live == false) or live again (the undo of a free), with the pages
// in `off_pages` uncommitted or committed accordingly, in one metadata transaction.
int stage_and_commit(Pack* p, const Block& b, const Runs& off_pages, bool live) noexcept {
  const std::size_t s = b.first;
  const std::size_t e = b.first + b.granules;
  std::size_t off_count = 0;
  for (auto& r : off_pages) off_count += r.second;
  MetaTxn tx;
  Pack* h = tx.edit(p, true);
  bool staged = h != nullptr && stage_bits(tx, p->used, s, e, live) && stage_bits(tx, p->start, s, s + 1, live);
  if (staged && off_count != 0) {
    const std::size_t lo = off_pages.front().first;
    const std::size_t hi = off_pages.back().first + off_pages.back().second;
    const std::size_t w0 = lo / kBits;
    Word* view = tx.edit(p->committed + w0, true, (hi - 1) / kBits - w0 + 1);
    staged = view != nullptr;
    for (std::size_t i = 0; staged && i < off_pages.size(); ++i) {
      const std::size_t b0 = off_pages[i].first - w0 * kBits;
      const std::size_t b1 = b0 + off_pages[i].second;
      if (live) {
        bitmap::set_range(view, b0, b1);
      } else {
        bitmap::clear_range(view, b0, b1);
      }
    }
  }
  if (!staged) return fail(ENOMEM, "execmem: out of memory staging a metadata update");
  if (live) {
    h->used_granules += b.granules;
    h->live_allocations += 1;
    h->live_bytes += b.size;
    h->committed_pages += off_count;
  } else {
    h->used_granules -= b.granules;
    h->live_allocations -= 1;
    h->live_bytes -= b.size;
    h->committed_pages -= off_count;
  }
  return tx.commit();
}

// Writes the type's fill byte over byte ranges (offset, length) of the data through the
// writer, all or nothing (write_many restores what it wrote when a chunk fails).
int refill(const Pack* p, const Runs& parts) noexcept {
  std::size_t longest = 0;
  for (auto& part : parts) longest = part.second > longest ? part.second : longest;
  std::vector<wr::Chunk> chunks;
  std::vector<unsigned char> fill;
  try {
    fill.assign(longest, fill_byte(p->kind));
    for (auto& part : parts) chunks.push_back(wr::Chunk{p->data + part.first, fill.data(), part.second});
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  return wr::write_many(chunks.data(), chunks.size(), page_access(p->kind));
}

}  // namespace

int pack_create(Kind kind, std::size_t data_bytes, bool dedicated, bool huge, Pack** out) noexcept {
  *out = nullptr;
  const std::size_t page = os::page_size();
  huge = huge && kind == Kind::text;
  const std::size_t align = (!dedicated || huge) ? kPackBytes : page;
  if (data_bytes > kMaxAllocation) return fail(ENOMEM, "execmem: %zu bytes is more than execmem hands out", data_bytes);
  data_bytes = dedicated ? align_up(data_bytes, align) : kPackBytes;
  const std::uint32_t shift = granule_shift(kind);
  const std::size_t granules = data_bytes >> shift;
  const std::size_t pages = data_bytes / page;
  const std::size_t gwords = bitmap::words_for(granules);
  const std::size_t pwords = bitmap::words_for(pages);

  const std::size_t used_off = align_up(sizeof(Pack), alignof(Word));
  const std::size_t start_off = used_off + gwords * sizeof(Word);
  const std::size_t committed_off = start_off + gwords * sizeof(Word);
  const std::size_t tails_off = committed_off + pwords * sizeof(Word);
  const std::size_t meta_bytes = os::round_up_to_page(tails_off + tail_bytes(shift, granules));
  // Guard, metadata, slack to align the data, data, guard; the slack is trimmed below.
  const std::size_t total = page + meta_bytes + (align - page) + data_bytes + page;

  void* base_v = nullptr;
  if (int e = os::reserve(total, &base_v)) {
    return fail(ENOMEM, "execmem: cannot reserve %zu bytes of address space for a %s pack (errno %d)", total,
                kind_name(kind), e);
  }
  auto* base = static_cast<std::byte*>(base_v);
  auto* data = reinterpret_cast<std::byte*>(
      align_up(reinterpret_cast<std::uintptr_t>(base + page + meta_bytes), align));
  std::byte* meta = data - meta_bytes;
  std::byte* front = meta - page;
  std::byte* back = data + data_bytes + page;
  std::byte* limit = base + total;
  if (front > base) {
    if (int e = os::release(base, static_cast<std::size_t>(front - base))) {
      (void)os::release(base, total);
      return fail(ENOMEM, "execmem: cannot trim a pack reservation (errno %d)", e);
    }
  }
  if (limit > back) {
    if (int e = os::release(back, static_cast<std::size_t>(limit - back))) {
      (void)os::release(front, static_cast<std::size_t>(limit - front));
      return fail(ENOMEM, "execmem: cannot trim a pack reservation (errno %d)", e);
    }
  }
  const std::size_t reservation_size = static_cast<std::size_t>(back - front);
  auto undo = [&](int e, const char* what) {
    (void)os::release(front, reservation_size);
    return fail(e == ENOMEM ? ENOMEM : e, "execmem: cannot %s for a %s pack (errno %d%s)", what, kind_name(kind), e,
                e == ENOMEM ? "; raising vm.max_map_count may help" : "");
  };

  // The metadata is written in place once, then read-only for the pack's life.
  if (int e = os::set_access(meta, meta_bytes, os::Access::read_write)) return undo(e, "commit metadata");
  auto* p = new (meta) Pack{};
  p->magic = kPackMagic;
  p->self = p;
  p->kind = kind;
  p->flags = (dedicated ? kDedicated : 0u) | (huge ? kHugeAsked : 0u);
  p->granule_shift = shift;
  p->reservation = front;
  p->reservation_size = reservation_size;
  p->meta = meta;
  p->meta_bytes = meta_bytes;
  p->data = data;
  p->data_bytes = data_bytes;
  p->granules = granules;
  p->pages = pages;
  p->used = reinterpret_cast<Word*>(meta + used_off);
  p->start = reinterpret_cast<Word*>(meta + start_off);
  p->committed = reinterpret_cast<Word*>(meta + committed_off);
  p->tails = reinterpret_cast<std::uint8_t*>(meta + tails_off);

  if (huge) {
    // Advice first, so that the first touch below already faults in huge pages. Without
    // THP support in the kernel the pack simply stays a page-by-page pack.
    if (os::advise_hugepages(data, data_bytes) == 0) {
      if (int e = commit_pages(p, 0, pages)) return undo(e, "commit a huge-page pack");
      p->flags |= kHuge;
      bitmap::set_range(p->committed, 0, pages);
      p->committed_pages = pages;
    }
  }
  if (int e = os::set_access(meta, meta_bytes, os::Access::read)) return undo(e, "write-protect metadata");
  const DirEntry entry{reinterpret_cast<std::uintptr_t>(front), reinterpret_cast<std::uintptr_t>(back), p, kind};
  if (int e = directory::add(entry)) {
    (void)os::release(front, reservation_size);
    return e;
  }
  *out = p;
  return 0;
}

bool pack_release(Pack* p) noexcept {
  if (p->has(kSealed)) return false;
  if (directory::remove(p) != 0) return false;
  (void)os::release(p->reservation, p->reservation_size);
  return true;
}

int pack_alloc(Pack* p, std::size_t size, void** out) noexcept {
  if (p->has(kClosed)) return ENOSPC;
  const std::uint32_t shift = p->granule_shift;
  const std::size_t need = (size + p->granule() - 1) >> shift;
  if (need > p->granules - p->used_granules) return ENOSPC;
  const std::size_t g = bitmap::find_clear_run(p->used, 0, p->granules, need, 1);
  if (g == p->granules) return ENOSPC;

  const std::size_t page = os::page_size();
  const std::size_t pb = (g << shift) / page;
  const std::size_t pe = (((g + need) << shift) + page - 1) / page;
  Runs fresh;
  try {
    if (!p->has(kHuge)) {
      for (std::size_t q = pb; q < pe; ++q) {
        if (!bitmap::test(p->committed, q)) add_page(fresh, q);
      }
    }
  } catch (const std::bad_alloc&) {
    return fail(ENOMEM, "execmem: out of memory");
  }
  std::size_t done = 0;
  for (; done < fresh.size(); ++done) {
    if (int e = commit_pages(p, fresh[done].first, fresh[done].second)) {
      for (std::size_t i = 0; i < done; ++i) release_pages(p, fresh[i].first, fresh[i].second);
      return fail(ENOMEM, "execmem: cannot commit %zu pages of %s (errno %d%s)", fresh[done].second,
                  kind_name(p->kind), e, e == ENOMEM ? "; raising vm.max_map_count may help" : "");
    }
  }
  std::size_t fresh_pages = 0;
  for (auto& r : fresh) fresh_pages += r.second;

  MetaTxn tx;
  Pack* h = tx.edit(p, true);
  bool staged = h != nullptr && stage_bits(tx, p->used, g, g + need, true) && stage_bits(tx, p->start, g, g + 1, true) &&
                stage_tail(tx, p, g, static_cast<unsigned>(size & (p->granule() - 1)));
  if (staged && fresh_pages != 0) staged = stage_bits(tx, p->committed, fresh.front().first,
                                                      fresh.back().first + fresh.back().second, true);
  int e = staged ? 0 : fail(ENOMEM, "execmem: out of memory staging a metadata update");
  if (e == 0) {
    h->used_granules += need;
    h->live_allocations += 1;
    h->live_bytes += size;
    h->committed_pages += fresh_pages;
    e = tx.commit();
  }
  if (e != 0) {
    for (auto& r : fresh) release_pages(p, r.first, r.second);
    return e;
  }
  *out = p->data + (g << shift);
  return 0;
}

bool pack_block_at(const Pack* p, const void* ptr, Block* out) noexcept {
  if (!p->contains_data(ptr)) return false;
  const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(ptr) - p->data);
  if ((off & (p->granule() - 1)) != 0) return false;
  const std::size_t g = off >> p->granule_shift;
  if (!bitmap::test(p->start, g) || !bitmap::test(p->used, g)) return false;
  const std::size_t next_start = bitmap::find_set(p->start, g + 1, p->granules);
  const std::size_t first_free = bitmap::find_clear(p->used, g + 1, p->granules);
  const std::size_t end = next_start < first_free ? next_start : first_free;
  out->first = g;
  out->granules = end - g;
  out->size = size_of(p, end - g, tail_of(p, g));
  out->begin = p->data + (g << p->granule_shift);
  return true;
}

bool pack_block_containing(const Pack* p, const void* ptr, std::size_t n, Block* out) noexcept {
  if (!p->contains_data(ptr) || n == 0) return false;
  const auto off = static_cast<std::size_t>(static_cast<const std::byte*>(ptr) - p->data);
  const std::size_t g = off >> p->granule_shift;
  if (!bitmap::test(p->used, g)) return false;
  // Used runs begin with a start bit, so the last start at or below g begins g's block.
  const std::size_t s = bitmap::find_last_set(p->start, 0, g + 1);
  if (s > g) return false;
  Block b;
  if (!pack_block_at(p, p->data + (s << p->granule_shift), &b)) return false;
  const auto rel = static_cast<std::size_t>(static_cast<const std::byte*>(ptr) - b.begin);
  if (rel >= b.size || n > b.size - rel) return false;
  *out = b;
  return true;
}

int pack_free(Pack* p, const Block& b) noexcept {
  const std::size_t s = b.first;
  const std::size_t e = b.first + b.granules;
  if (p->has(kClosed)) {
    // Protected ro_after_init: the bytes stay as they are, read-only; only accounting.
    MetaTxn tx;
    Pack* h = tx.edit(p, true);
    if (h == nullptr || !stage_bits(tx, p->used, s, e, false) || !stage_bits(tx, p->start, s, s + 1, false)) {
      return fail(ENOMEM, "execmem: out of memory staging a metadata update");
    }
    h->used_granules -= b.granules;
    h->live_allocations -= 1;
    h->live_bytes -= b.size;
    return tx.commit();
  }

  const std::size_t page = os::page_size();
  const std::size_t shift = p->granule_shift;
  const std::size_t pb = (s << shift) / page;
  const std::size_t pe = ((e << shift) + page - 1) / page;
  Runs gone;  // pages that hold nothing else: they go back to the OS
  try {
    if (!p->has(kHuge)) {
      for (std::size_t q = pb; q < pe; ++q) {
        if (page_free_except(p, q, s, e)) add_page(gone, q);
      }
    }
  } catch (const std::bad_alloc&) {
    return fail(ENOMEM, "execmem: out of memory");
  }

  // Make the pages that go back inaccessible right away; a page that refuses stays
  // committed and is refilled like the shared ones.
  Runs off_pages;
  Runs kept_parts;  // byte ranges (offset, length) of the block that must be refilled
  try {
    std::size_t cursor = s << shift;
    const std::size_t block_end = e << shift;
    for (auto& r : gone) {
      std::byte* a = page_addr(p, r.first);
      if (os::set_access(a, r.second * page, os::Access::none) != 0) continue;
      off_pages.push_back(r);
      const std::size_t r_begin = r.first * page;
      if (r_begin > cursor) kept_parts.emplace_back(cursor, r_begin - cursor);
      cursor = (r.first + r.second) * page;
    }
    if (block_end > cursor) kept_parts.emplace_back(cursor, block_end - cursor);
  } catch (const std::bad_alloc&) {
    for (auto& r : off_pages) (void)os::set_access(page_addr(p, r.first), r.second * page, page_access(p->kind));
    return fail(ENOMEM, "execmem: out of memory");
  }
  auto restore = [&]() noexcept {
    for (auto& r : off_pages) {
      if (os::set_access(page_addr(p, r.first), r.second * page, page_access(p->kind)) != 0) {
        fatal("execmem: cannot restore access to a live %s block after a failed free", kind_name(p->kind));
      }
    }
  };

  // Metadata first: the block is free from here on.
  if (int err = stage_and_commit(p, b, off_pages, false)) {
    restore();
    return err;
  }
  // Then refill what stays committed (traps for text, zeros for data), all or nothing.
  // If that fails the block is marked live again, so a failed free changes nothing.
  int err = 0;
  if (directly_writable(p->kind)) {
    for (auto& part : kept_parts) std::memset(p->data + part.first, 0, part.second);
  } else if (!kept_parts.empty()) {
    err = refill(p, kept_parts);
  }
  if (err != 0) {
    if (stage_and_commit(p, b, off_pages, true) != 0) {
      fatal("execmem: a failed free of a %s block could not be undone", kind_name(p->kind));
    }
    restore();
    return fail(err, "execmem: cannot refill freed %s through the '%s' writer (errno %d)", kind_name(p->kind),
                wr::backend_name(wr::backend()), err);
  }
  for (auto& r : off_pages) (void)os::discard(page_addr(p, r.first), r.second * page);
  return 0;
}

int pack_protect(Pack* p) noexcept {
  if (!pack_needs_protect(p)) return 0;
  auto set_flag = [p](std::uint32_t f) noexcept {
    MetaTxn tx;
    Pack* h = tx.edit(p, true);
    if (h == nullptr) return fail(ENOMEM, "execmem: out of memory staging a metadata update");
    h->flags |= f;
    return tx.commit();
  };
  // Closed first: from here on no allocation lands in this pack, whatever happens next.
  if (!p->has(kClosed)) {
    if (int e = set_flag(kClosed)) return e;
  }
  if (!p->has(kReadOnly)) {
    // Committed runs become read-only: one mprotect per run; uncommitted pages stay PROT_NONE.
    const std::size_t page = os::page_size();
    for (std::size_t q = 0; q < p->pages;) {
      q = bitmap::find_set(p->committed, q, p->pages);
      if (q == p->pages) break;
      const std::size_t end = bitmap::find_clear(p->committed, q, p->pages);
      if (int e = os::set_access(page_addr(p, q), (end - q) * page, os::Access::read)) {
        return fail(e, "execmem: cannot write-protect ro_after_init memory (errno %d%s)", e,
                    e == ENOMEM ? "; raising vm.max_map_count may help" : "");
      }
      q = end;
    }
    if (int e = set_flag(kReadOnly)) return e;
  }
  if (!p->has(kSealed) && os::seal_supported()) {
    if (int e = os::seal(p->data, p->data_bytes)) {
      return fail(e, "execmem: ro_after_init memory is read-only but mseal failed (errno %d)", e);
    }
    if (int e = set_flag(kSealed)) return e;
  }
  return 0;
}

bool pack_needs_protect(const Pack* p) noexcept {
  if (p->kind != Kind::ro_after_init) return false;
  if (!p->has(kClosed)) return p->live_allocations != 0;
  return !p->has(kReadOnly) || (!p->has(kSealed) && os::seal_supported());
}

bool pack_empty(const Pack* p) noexcept { return p->live_allocations == 0; }

void pack_add_stats(const Pack* p, execmem_stats* out) noexcept {
  out->allocations_live += p->live_allocations;
  out->bytes_live += p->live_bytes;
  out->bytes_committed += p->committed_pages * os::page_size();
  out->bytes_reserved += p->reservation_size;
  out->bytes_metadata += p->meta_bytes;
  out->packs += 1;
  out->hugepage_packs += p->has(kHuge) ? 1 : 0;
}

bool pack_check(const Pack* p) noexcept {
  auto bad = [&](const char* what) {
    (void)fail(EFAULT, "execmem: pack %p (%s) is inconsistent: %s", static_cast<const void*>(p),
               kind_name(p->kind), what);
    return false;
  };
  if (p->magic != kPackMagic || p->self != p) return bad("magic");
  if (p->granule_shift != granule_shift(p->kind)) return bad("granule");
  if (p->data_bytes != (p->granules << p->granule_shift) || p->data_bytes != p->pages * os::page_size()) {
    return bad("sizes");
  }
  const std::size_t used = bitmap::count(p->used, 0, p->granules);
  const std::size_t starts = bitmap::count(p->start, 0, p->granules);
  if (used != p->used_granules) return bad("used_granules != used bits");
  if (starts != p->live_allocations) return bad("live_allocations != start bits");
  if (bitmap::count(p->committed, 0, p->pages) != p->committed_pages) return bad("committed_pages != committed bits");
  if (p->has(kDedicated) && p->live_allocations > 1) return bad("dedicated pack with several blocks");
  std::size_t bytes = 0;
  for (std::size_t g = 0; g < p->granules;) {
    g = bitmap::find_set(p->used, g, p->granules);
    if (g == p->granules) break;
    if (!bitmap::test(p->start, g)) return bad("used run without a start bit");
    Block b;
    if (!pack_block_at(p, p->data + (g << p->granule_shift), &b)) return bad("unreadable block");
    bytes += b.size;
    if (b.size == 0 || b.size > (b.granules << p->granule_shift) ||
        b.size <= ((b.granules - 1) << p->granule_shift)) {
      return bad("block size does not match its granules");
    }
    g += b.granules;
  }
  if (bytes != p->live_bytes) return bad("live_bytes != sum of block sizes");
  for (std::size_t g = 0; g < p->granules;) {
    g = bitmap::find_set(p->start, g, p->granules);
    if (g == p->granules) break;
    if (!bitmap::test(p->used, g)) return bad("start bit on a free granule");
    ++g;
  }
  const std::size_t per = os::page_size() >> p->granule_shift;
  for (std::size_t q = 0; q < p->pages; ++q) {
    const bool in_use = bitmap::find_set(p->used, q * per, (q + 1) * per) != (q + 1) * per;
    const bool committed = bitmap::test(p->committed, q);
    if (p->has(kHuge) && !committed) return bad("uncommitted page in a huge pack");
    if (in_use && !committed) return bad("live block on an uncommitted page");
  }
  return true;
}

}  // namespace pmalloc::internal::execmem
