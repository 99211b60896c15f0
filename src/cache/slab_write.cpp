// Slab updates through the writer, and the slab lock stripes (see slab_write.hpp).
#include "cache/slab_write.hpp"

#include <cerrno>
#include <cstring>
#include <new>

#include "core/error.hpp"

namespace pmalloc::internal {
namespace {

// A batch may hold every stripe at once (plus the writer's own lock): ThreadSanitizer
// tracks at most 64 locks held by one thread, and 32 stripes are plenty for parallelism.
constexpr std::size_t kStripes = 32;
static_assert(kStripes <= 64, "SlabLocks keeps stripes in one 64-bit mask");
constexpr std::size_t kProcmemMaxGap = 4096;
// A merged chunk is copied twice in user space (image, writer's undo copy); beyond this
// size the copies cost more than a further writer call saves.
constexpr std::size_t kMaxMergedBytes = std::size_t{64} << 10;
// Wipes of lone slots are written from here, in pieces of this size.
alignas(64) const std::byte kZeros[std::size_t{64} << 10] = {};

std::mutex g_stripes[kStripes];

std::uint64_t load_word(const std::byte* slab, std::size_t w) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, slab + w * 8, sizeof v);
  return v;
}

// One piece of the plan: bytes [off, off + n) of the slab get new contents.
struct Piece {
  std::size_t off;
  std::size_t n;
  std::size_t slot;        // kHeader for the header words
  const std::byte* src;    // nullptr: zeros
};
constexpr std::size_t kHeader = ~std::size_t{0};

}  // namespace

bool slab_writes_by_syscall() noexcept {
  static const bool by_syscall = [] {
    switch (wr::backend()) {
      case wr::Backend::procmem: return true;
      case wr::Backend::pkey:
      case wr::Backend::alias: return wr::backend_available(wr::Backend::procmem);
      case wr::Backend::mprotect:
      case wr::Backend::none: return false;
    }
    return false;
  }();
  return by_syscall;
}

bool slab_slot_live(const Geometry& g, const std::byte* slab, std::size_t slot) noexcept {
  (void)g;
  return ((load_word(slab, slot / 64) >> (slot % 64)) & 1u) != 0;
}

std::size_t slab_live_count(const Geometry& g, const std::byte* slab) noexcept {
  std::size_t n = 0;
  for (std::size_t w = 0; w < g.header_words; ++w) n += static_cast<std::size_t>(__builtin_popcountll(load_word(slab, w)));
  return n;
}

int SlabUpdate::plan(const Geometry& g, std::byte* slab, const std::size_t* slots, const std::byte* const* srcs,
                     std::size_t n, bool make_live, bool keep_old) noexcept {
  count_ = 0;
  if (n == 0) return 0;
  // New header words [w0, w1].
  const std::size_t w0 = slots[0] / 64;
  const std::size_t w1 = slots[n - 1] / 64;
  const std::size_t words = w1 - w0 + 1;
  SmallArray<Piece, 8> pieces;
  if (!header_.reserve(words) || !pieces.reserve(n + 1)) {
    return fail(ENOMEM, "pmalloc_cache: out of memory planning a write");
  }
  has_old_ = false;
  for (std::size_t w = 0; w < words; ++w) header_[w] = load_word(slab, w0 + w);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t bit = std::uint64_t{1} << (slots[i] % 64);
    std::uint64_t& word = header_[slots[i] / 64 - w0];
    if (((word & bit) != 0) == make_live) return make_live ? EEXIST : ENOENT;
    word ^= bit;
  }

  // Pieces in address order: the header first, then the slots (ascending).
  pieces[0] = Piece{w0 * 8, words * 8, kHeader, reinterpret_cast<const std::byte*>(header_.get())};
  for (std::size_t i = 0; i < n; ++i) {
    pieces[i + 1] = Piece{g.first_slot_offset + slots[i] * g.slot_size, g.object_size, slots[i],
                          srcs == nullptr ? nullptr : srcs[i]};
  }
  const bool by_syscall = slab_writes_by_syscall();
  auto joins = [&](std::size_t first, std::size_t next) {
    const Piece& a = pieces[next - 1];
    const Piece& b = pieces[next];
    if (b.off + b.n - pieces[first].off > kMaxMergedBytes) return false;
    if (by_syscall) return b.off - (a.off + a.n) <= kProcmemMaxGap;
    if (a.slot == kHeader) return b.slot == 0;
    return b.slot == a.slot + 1;
  };
  auto chunks_for = [&](std::size_t i, std::size_t j) -> std::size_t {
    // A lone wipe is written from the zero block, in pieces of its size.
    if (i == j && pieces[i].src == nullptr) return (pieces[i].n + sizeof kZeros - 1) / sizeof kZeros;
    return 1;
  };

  // First pass: sizes. Groups of several pieces need an image (current bytes + pieces);
  // a lone piece is written straight from its source.
  std::size_t chunks = 0;
  std::size_t image_bytes = 0;
  std::size_t span_bytes = 0;
  for (std::size_t i = 0; i <= n;) {
    std::size_t j = i;
    while (j < n && joins(i, j + 1)) ++j;
    const std::size_t span = pieces[j].off + pieces[j].n - pieces[i].off;
    if (j > i) image_bytes += span;
    span_bytes += span;
    chunks += chunks_for(i, j);
    i = j + 1;
  }
  const std::size_t old_bytes = keep_old ? span_bytes : 0;
  if (!buffer_.reserve(image_bytes + old_bytes) || !new_chunks_.reserve(chunks) ||
      !old_chunks_.reserve(keep_old ? chunks : 0)) {
    return fail(ENOMEM, "pmalloc_cache: out of memory planning a write of %zu bytes", span_bytes);
  }
  std::byte* image = buffer_.get();
  std::byte* old = buffer_.get() + image_bytes;
  std::size_t k = 0;
  auto add = [&](std::size_t off, const std::byte* src, std::size_t len) {
    new_chunks_[k] = wr::Chunk{slab + off, src, len};
    if (keep_old) {
      std::memcpy(old, slab + off, len);
      old_chunks_[k] = wr::Chunk{slab + off, old, len};
      old += len;
    }
    ++k;
  };
  for (std::size_t i = 0; i <= n;) {
    std::size_t j = i;
    while (j < n && joins(i, j + 1)) ++j;
    const Piece& first = pieces[i];
    if (i == j && first.src != nullptr) {
      add(first.off, first.src, first.n);
    } else if (i == j) {
      for (std::size_t done = 0; done < first.n; done += sizeof kZeros) {
        const std::size_t len = first.n - done < sizeof kZeros ? first.n - done : sizeof kZeros;
        add(first.off + done, kZeros, len);
      }
    } else {
      const std::size_t len = pieces[j].off + pieces[j].n - first.off;
      std::memcpy(image, slab + first.off, len);
      for (std::size_t p = i; p <= j; ++p) {
        std::byte* dst = image + (pieces[p].off - first.off);
        if (pieces[p].src != nullptr) {
          std::memcpy(dst, pieces[p].src, pieces[p].n);
        } else {
          std::memset(dst, 0, pieces[p].n);
        }
      }
      add(first.off, image, len);
      image += len;
    }
    i = j + 1;
  }
  count_ = k;
  has_old_ = keep_old;
  return 0;
}

int SlabUpdate::apply() noexcept {
  if (count_ == 0) return 0;
  // The writer is all or nothing: on failure nothing it was given has changed.
  if (int e = wr::write_many(new_chunks_.get(), count_, os::Access::read)) {
    return fail(e, "pmalloc_cache: the writer failed (errno %d); nothing was changed", e);
  }
  return 0;
}

int SlabUpdate::undo() noexcept {
  if (count_ == 0) return 0;
  if (!has_old_) return EINVAL;  // planned without keep_old
  return wr::write_many(old_chunks_.get(), count_, os::Access::read);
}

std::size_t slab_lock_index(const std::byte* slab) noexcept {
  return (reinterpret_cast<std::uintptr_t>(slab) >> 12) % kStripes;
}

std::mutex& slab_lock(const std::byte* slab) noexcept { return g_stripes[slab_lock_index(slab)]; }

void SlabLocks::add(const std::byte* slab) noexcept { wanted_ |= std::uint64_t{1} << slab_lock_index(slab); }

void SlabLocks::lock() noexcept {
  for (std::size_t i = 0; i < kStripes; ++i) {
    const std::uint64_t bit = std::uint64_t{1} << i;
    if ((wanted_ & bit) != 0 && (held_ & bit) == 0) {
      g_stripes[i].lock();
      held_ |= bit;
    }
  }
}

void SlabLocks::unlock() noexcept {
  for (std::size_t i = kStripes; i-- > 0;) {
    const std::uint64_t bit = std::uint64_t{1} << i;
    if ((held_ & bit) != 0) g_stripes[i].unlock();
  }
  held_ = 0;
}

}  // namespace pmalloc::internal
