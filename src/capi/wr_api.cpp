// The write-rare C API (include/pmalloc/wr.h): check every target, then write.
//
// Order of every call: (1) argument checks; (2) find each target's region in the address
// registry and take the pool locks (in address order, so batches over several pools
// cannot deadlock; no other path holds two); (3) with the locks held, locate each target
// in the pool's allocation bitmaps (protected metadata once the pool is protected) and
// refuse anything that is not inside one live allocation of a write-rare pool; (4) split
// each target at the region's protection boundary: bytes on protected pages go to the
// writer (src/wr), bytes on still-writable pages are copied in place; (5) the writer
// applies all protected parts or none, then the in-place copies (which cannot fail) follow.
// Holding the pool locks from (2) to (5) means that the allocation cannot be freed, the
// pool protected or made read-only between the check and the write.
//
// Sources are read as they were before the call: when a source overlaps a target, the
// sources are staged in a private buffer first (memmove semantics for wr_memcpy).
//
// Under the procmem writer every chunk costs one system call, so a batch merges targets
// that are close together in one region's protected prefix into one span: the span's
// current bytes are read, the updates applied to that copy, and the span written back
// with one kernel write. The bytes in between are rewritten with the values they have;
// that is safe because only wr_* can change them and we hold their pool's lock.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "core/error.hpp"
#include "pmalloc/pmalloc.h"
#include "pool/lock.hpp"
#include "pool/pool.hpp"
#include "registry/registry.hpp"
#include "wr/writer.hpp"

using namespace pmalloc::internal;

namespace {

// Nearby chunks closer than this are merged under procmem (one page: the kernel copies
// a page in far less time than one more system call takes).
constexpr std::size_t kMergeGap = 4096;

struct Op {
  std::byte* dst;
  const std::byte* src;
  std::size_t n;
};

// A checked target: where its protected part ends.
struct Checked {
  Region* region;
  std::byte* boundary;  // data + protected_bytes: bytes below are on read-only pages
};

bool refuse(int e) noexcept {
  errno = e;
  return false;
}

// The pool locks of one call, held in address order.
class LockSet {
 public:
  int add(const Pool* pool) noexcept {
    try {
      locks_.push_back(&pool_lock(pool));
    } catch (const std::bad_alloc&) {
      return ENOMEM;
    }
    return 0;
  }
  void lock() noexcept {
    std::sort(locks_.begin(), locks_.end());
    locks_.erase(std::unique(locks_.begin(), locks_.end()), locks_.end());
    for (SpinLock* l : locks_) l->lock();
    held_ = true;
  }
  ~LockSet() {
    if (!held_) return;
    for (auto it = locks_.rbegin(); it != locks_.rend(); ++it) (*it)->unlock();
  }

 private:
  std::vector<SpinLock*> locks_;
  bool held_ = false;
};

// Step (3) for one target, with its pool's lock held.
int check_locked(const char* fn, Region* r, const Op& op, Checked* out) noexcept {
  Allocation a;
  if (locate_locked(r, op.dst, op.n, &a) != Placement::ok) {
    return fail(EINVAL, "%s: [%p, +%zu) is not inside one live allocation of pool '%s'", fn,
                static_cast<void*>(op.dst), op.n, a.pool != nullptr ? a.pool->name : "?");
  }
  if ((a.pool->flags & PMALLOC_WR) == 0) {
    return fail(EPERM, "%s: pool '%s' is %s, not write-rare", fn, a.pool->name,
                (a.pool->user_flags & PMALLOC_WR) != 0 ? "made read-only (pmalloc_make_pool_ro)" : "write-once");
  }
  out->region = r;
  out->boundary = r->data + r->protected_bytes;
  return 0;
}

bool overlaps(const std::byte* a, std::size_t an, const std::byte* b, std::size_t bn) noexcept {
  return an != 0 && bn != 0 && a < b + bn && b < a + an;
}

// True when some op's source overlaps some op's target.
bool sources_overlap_targets(const std::vector<Op>& ops) {
  std::vector<std::pair<const std::byte*, const std::byte*>> targets;
  targets.reserve(ops.size());
  for (const Op& op : ops) {
    if (op.n != 0) targets.emplace_back(op.dst, op.dst + op.n);
  }
  std::sort(targets.begin(), targets.end());
  // Merge into disjoint intervals.
  std::size_t k = 0;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (k > 0 && targets[i].first <= targets[k - 1].second) {
      targets[k - 1].second = std::max(targets[k - 1].second, targets[i].second);
    } else {
      targets[k++] = targets[i];
    }
  }
  targets.resize(k);
  for (const Op& op : ops) {
    if (op.n == 0) continue;
    auto it = std::upper_bound(targets.begin(), targets.end(), std::make_pair(op.src, op.src));
    if (it != targets.end() && overlaps(op.src, op.n, it->first, static_cast<std::size_t>(it->second - it->first))) {
      return true;
    }
    if (it != targets.begin()) {
      --it;
      if (overlaps(op.src, op.n, it->first, static_cast<std::size_t>(it->second - it->first))) return true;
    }
  }
  return false;
}

// A protected part, remembering the call order and region for merging.
struct Part {
  wr::Chunk chunk;
  const Region* region;
  std::size_t order;
};

// Merges parts of one region that lie within kMergeGap of each other into single spans
// (procmem only; see the file comment). `storage` keeps the merged spans' buffers.
std::vector<wr::Chunk> merge_parts(std::vector<Part>& parts, std::vector<std::unique_ptr<std::byte[]>>& storage) {
  std::vector<wr::Chunk> out;
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) {
    if (a.region != b.region) return a.region < b.region;
    return a.chunk.dst < b.chunk.dst;
  });
  std::size_t i = 0;
  while (i < parts.size()) {
    auto* lo = static_cast<std::byte*>(parts[i].chunk.dst);
    std::byte* hi = lo + parts[i].chunk.n;
    std::size_t j = i + 1;
    while (j < parts.size() && parts[j].region == parts[i].region &&
           static_cast<std::byte*>(parts[j].chunk.dst) <= hi + kMergeGap) {
      hi = std::max(hi, static_cast<std::byte*>(parts[j].chunk.dst) + parts[j].chunk.n);
      ++j;
    }
    if (j == i + 1) {
      out.push_back(parts[i].chunk);
    } else {
      const auto span = static_cast<std::size_t>(hi - lo);
      auto buffer = std::make_unique<std::byte[]>(span);
      std::memcpy(buffer.get(), lo, span);
      // Later calls win where targets overlap: apply in call order.
      std::sort(parts.begin() + static_cast<std::ptrdiff_t>(i), parts.begin() + static_cast<std::ptrdiff_t>(j),
                [](const Part& a, const Part& b) { return a.order < b.order; });
      for (std::size_t k = i; k < j; ++k) {
        std::memcpy(buffer.get() + (static_cast<std::byte*>(parts[k].chunk.dst) - lo), parts[k].chunk.src,
                    parts[k].chunk.n);
      }
      out.push_back(wr::Chunk{lo, buffer.get(), span});
      storage.push_back(std::move(buffer));
    }
    i = j;
  }
  return out;
}

// Steps (2) to (5) for a list of ops (arguments already checked).
bool apply_ops(const char* fn, std::vector<Op>& ops) {
  std::vector<Region*> regions(ops.size());
  LockSet locks;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    regions[i] = registry::find(ops[i].dst);
    if (regions[i] == nullptr) {
      return refuse(fail(EINVAL, "%s: %p is not pmalloc memory", fn, static_cast<void*>(ops[i].dst)));
    }
    if (int e = locks.add(regions[i]->pool)) return refuse(fail(e, "%s: out of memory", fn));
  }
  locks.lock();
  std::vector<Checked> checked(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (int e = check_locked(fn, regions[i], ops[i], &checked[i])) return refuse(e);
  }

  // Sources as they were before the call.
  std::unique_ptr<std::byte[]> staged;
  if (sources_overlap_targets(ops)) {
    std::size_t total = 0;
    for (const Op& op : ops) total += op.n;
    staged = std::make_unique<std::byte[]>(total);
    std::size_t at = 0;
    for (Op& op : ops) {
      std::memcpy(staged.get() + at, op.src, op.n);
      op.src = staged.get() + at;
      at += op.n;
    }
  }

  std::vector<Part> parts;
  std::vector<Op> in_place;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (op.n == 0) continue;
    std::byte* end = op.dst + op.n;
    std::byte* cut = std::clamp(checked[i].boundary, op.dst, end);
    if (cut > op.dst) parts.push_back(Part{wr::Chunk{op.dst, op.src, static_cast<std::size_t>(cut - op.dst)},
                                           checked[i].region, i});
    if (end > cut) in_place.push_back(Op{cut, op.src + (cut - op.dst), static_cast<std::size_t>(end - cut)});
  }

  if (!parts.empty()) {
    std::vector<std::unique_ptr<std::byte[]>> storage;
    std::vector<wr::Chunk> chunks;
    if (parts.size() > 1 && wr::merging_pays()) {
      chunks = merge_parts(parts, storage);
    } else {
      chunks.reserve(parts.size());
      for (const Part& p : parts) chunks.push_back(p.chunk);
    }
    const int e = chunks.size() == 1 ? wr::write(chunks[0].dst, chunks[0].src, chunks[0].n, pmalloc::os::Access::read)
                                     : wr::write_many(chunks.data(), chunks.size(), pmalloc::os::Access::read);
    if (e != 0) {
      if (e == EPERM) {
        return refuse(fail(EPERM, "%s: the pages are sealed and the '%s' writer cannot update sealed pages", fn,
                           wr::backend_name(wr::backend())));
      }
      return refuse(fail(e, "%s: the '%s' writer failed (errno %d)", fn, wr::backend_name(wr::backend()), e));
    }
  }
  for (const Op& op : in_place) std::memmove(op.dst, op.src, op.n);
  return true;
}

bool run(const char* fn, std::vector<Op>& ops) noexcept {
  try {
    return apply_ops(fn, ops);
  } catch (const std::bad_alloc&) {
    return refuse(fail(ENOMEM, "%s: out of memory", fn));
  }
}

bool single(const char* fn, void* dst, const void* src, std::size_t n) noexcept {
  if (dst == nullptr) return refuse(fail(EINVAL, "%s: destination is NULL", fn));
  if (src == nullptr && n != 0) return refuse(fail(EINVAL, "%s: source is NULL", fn));
  try {
    std::vector<Op> ops{Op{static_cast<std::byte*>(dst), static_cast<const std::byte*>(src), n}};
    return run(fn, ops);
  } catch (const std::bad_alloc&) {
    return refuse(fail(ENOMEM, "%s: out of memory", fn));
  }
}

}  // namespace

extern "C" {

bool wr_memcpy(void* dst, const void* src, size_t n) { return single("wr_memcpy", dst, src, n); }

bool wr_memset(void* dst, int c, size_t n) {
  unsigned char small[256];
  std::unique_ptr<unsigned char[]> large;
  unsigned char* buffer = small;
  if (n > sizeof small) {
    large.reset(new (std::nothrow) unsigned char[n]);
    if (large == nullptr) return refuse(fail(ENOMEM, "wr_memset: out of memory for %zu bytes", n));
    buffer = large.get();
  }
  std::memset(buffer, c, n);
  return single("wr_memset", dst, buffer, n);
}

bool wr_memcpy_batch(const struct wr_batch_op* ops, size_t count) {
  if (count == 0) return true;
  if (ops == nullptr) return refuse(fail(EINVAL, "wr_memcpy_batch: ops is NULL"));
  for (size_t i = 0; i < count; ++i) {
    if (ops[i].dst == nullptr) return refuse(fail(EINVAL, "wr_memcpy_batch: ops[%zu].dst is NULL", i));
    if (ops[i].src == nullptr && ops[i].n != 0) {
      return refuse(fail(EINVAL, "wr_memcpy_batch: ops[%zu].src is NULL", i));
    }
  }
  try {
    std::vector<Op> list;
    list.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      list.push_back(Op{static_cast<std::byte*>(ops[i].dst), static_cast<const std::byte*>(ops[i].src), ops[i].n});
    }
    return run("wr_memcpy_batch", list);
  } catch (const std::bad_alloc&) {
    return refuse(fail(ENOMEM, "wr_memcpy_batch: out of memory"));
  }
}

bool wr_publish_pointer(void* slot, const void* value) {
  constexpr const char* fn = "wr_rcu_assign_pointer";
  if (slot == nullptr) return refuse(fail(EINVAL, "%s: slot is NULL", fn));
  if ((reinterpret_cast<std::uintptr_t>(slot) & (alignof(void*) - 1)) != 0) {
    return refuse(fail(EINVAL, "%s: slot %p is not pointer-aligned (a misaligned store could tear)", fn, slot));
  }
  Region* r = registry::find(slot);
  if (r == nullptr) return refuse(fail(EINVAL, "%s: %p is not pmalloc memory", fn, slot));
  PoolGuard guard(r->pool);
  Checked c;
  const Op op{static_cast<std::byte*>(slot), nullptr, sizeof(void*)};
  if (int e = check_locked(fn, r, op, &c)) return refuse(e);
  const auto v = reinterpret_cast<std::uintptr_t>(value);
  if (op.dst < c.boundary) {
    if (int e = wr::publish(slot, v, pmalloc::os::Access::read)) {
      return refuse(fail(e, "%s: the '%s' writer failed (errno %d)", fn, wr::backend_name(wr::backend()), e));
    }
  } else {
    __atomic_store_n(static_cast<std::uintptr_t*>(slot), v, __ATOMIC_RELEASE);
  }
  return true;
}

int pmalloc_make_pool_ro(pmalloc_pool* pool) {
  const int e = pool_make_ro(from_handle(pool));
  if (e != 0) errno = e;
  return e;
}

const char* pmalloc_wr_backend(void) { return wr::backend_name(wr::backend()); }

}  // extern "C"
