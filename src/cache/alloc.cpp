// Creating and freeing cache objects: alloc_init (single and batch), free (single and
// batch). The order of each operation is described in cache.hpp; the protected writes are
// in slab_write.cpp, the reservations in reserve.cpp.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

#include "cache/cache.hpp"
#include "cache/engine.hpp"
#include "cache/slab_write.hpp"
#include "core/error.hpp"

namespace pmalloc::internal {
namespace {

// The private copies `init` fills: zero-filled, aligned like the objects. Small single
// objects use a buffer on the stack; larger requests reuse a per-thread buffer (grown on
// demand up to kKeptStagingBytes and kept, so that creating large objects does not fault
// in fresh heap pages every time), unless that buffer is in use further up the stack
// (an init creating objects itself) or the request is larger: then a temporary one.
constexpr std::size_t kKeptStagingBytes = std::size_t{256} << 10;
constexpr std::size_t kStagingAlign = 4096;  // >= every cache alignment

struct ThreadStaging {
  std::byte* data = nullptr;
  std::size_t capacity = 0;
  bool busy = false;
  ~ThreadStaging() {
    if (data != nullptr) ::operator delete(data, std::align_val_t{kStagingAlign});
  }
};
thread_local ThreadStaging t_staging;

class Staging {
 public:
  Staging() = default;
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging() {
    if (heap_ != nullptr) ::operator delete(heap_, std::align_val_t{kStagingAlign});
    if (thread_) t_staging.busy = false;
  }
  int init(std::size_t bytes, std::size_t align) noexcept {
    if (bytes <= sizeof local_ && align <= alignof(decltype(local_))) {
      data_ = local_;
    } else if (bytes <= kKeptStagingBytes && !t_staging.busy) {
      if (t_staging.capacity < bytes) {
        auto* grown = static_cast<std::byte*>(::operator new(bytes, std::align_val_t{kStagingAlign}, std::nothrow));
        if (grown == nullptr) return fail(ENOMEM, "pmalloc_cache: out of memory for %zu bytes of staging", bytes);
        if (t_staging.data != nullptr) ::operator delete(t_staging.data, std::align_val_t{kStagingAlign});
        t_staging.data = grown;
        t_staging.capacity = bytes;
      }
      t_staging.busy = true;
      thread_ = true;
      data_ = t_staging.data;
    } else {
      heap_ = static_cast<std::byte*>(::operator new(bytes, std::align_val_t{kStagingAlign}, std::nothrow));
      if (heap_ == nullptr) return fail(ENOMEM, "pmalloc_cache: out of memory for %zu bytes of staging", bytes);
      data_ = heap_;
    }
    std::memset(data_, 0, bytes);
    return 0;
  }
  std::byte* data() const noexcept { return data_; }

 private:
  alignas(64) std::byte local_[512];
  std::byte* heap_ = nullptr;
  std::byte* data_ = nullptr;
  bool thread_ = false;
};

// A slot to write: where (resolved under the cache lock) and what.
struct Target {
  SlotRef ref;
  std::byte* slab;
  const std::byte* src;  // nullptr: wipe
};

// Writes (make_live) or wipes the targets (distinct slots, in any order: they are sorted
// by slab and slot here, so that each slab gets exactly one update), all or nothing.
// Returns 0, EEXIST / ENOENT when some slot's protected live bit is not what it must be
// (nothing written), ENOMEM, or the writer's error (nothing left written).
int write_targets(const CacheDesc* c, Target* t, std::size_t n, bool make_live) noexcept {
  if (n > 1) {
    std::sort(t, t + n, [](const Target& a, const Target& b) {
      return a.slab != b.slab ? a.slab < b.slab : a.ref.slot < b.ref.slot;
    });
  }
  std::size_t groups = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 0 || t[i].slab != t[i - 1].slab) ++groups;
  }
  // A single slab (every single-object call) plans on the stack.
  SlabUpdate one;
  std::unique_ptr<SlabUpdate[]> many(groups > 1 ? new (std::nothrow) SlabUpdate[groups] : nullptr);
  SlabUpdate* updates = groups > 1 ? many.get() : &one;
  SmallArray<std::size_t, 8> slots;
  SmallArray<const std::byte*, 8> srcs;
  if (updates == nullptr || !slots.reserve(n) || !srcs.reserve(n)) {
    return fail(ENOMEM, "pmalloc_cache: out of memory planning the write of %zu objects", n);
  }
  SlabLocks locks;
  for (std::size_t i = 0; i < n; ++i) locks.add(t[i].slab);
  locks.lock();
  std::size_t g = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && t[j].slab == t[i].slab) {
      slots[j] = t[j].ref.slot;
      srcs[j] = t[j].src;
      ++j;
    }
    if (int e = updates[g].plan(c->geo, t[i].slab, slots.get() + i, make_live ? srcs.get() + i : nullptr, j - i,
                                make_live, groups > 1)) {
      return e;
    }
    ++g;
    i = j;
  }
  for (std::size_t k = 0; k < groups; ++k) {
    if (int e = updates[k].apply()) {
      for (std::size_t u = k; u-- > 0;) {
        if (int ue = updates[u].undo()) {
          fatal("pmalloc_cache '%s': a batch write failed (errno %d) and could not be undone (errno %d)", c->name, e,
                ue);
        }
      }
      return e;
    }
  }
  return 0;
}

// Finds the slot `obj` starts (cache lock held). 0 or EINVAL.
int resolve_object(const CacheDesc* c, const void* obj, const char* who, Target* out) noexcept {
  const auto* p = static_cast<const std::byte*>(obj);
  const Geometry& g = c->geo;
  for (std::size_t i = 0; i < c->segment_count; ++i) {
    const Segment* s = c->segments[i];
    if (p < s->slabs || p >= s->slabs + s->slabs_committed * g.slab_bytes) continue;
    const auto off = static_cast<std::size_t>(p - s->slabs);
    const std::size_t slab = off / g.slab_bytes;
    const std::size_t in_slab = off % g.slab_bytes;
    const std::size_t rel = in_slab - g.first_slot_offset;
    if (in_slab < g.first_slot_offset || rel % g.slot_size != 0 || rel / g.slot_size >= g.slots_per_slab) {
      return fail(EINVAL, "%s: %p is not the start of an object of cache '%s' (interior pointer, slab header or "
                  "padding)", who, obj, c->name);
    }
    out->ref = SlotRef{static_cast<std::uint32_t>(i), slab, rel / g.slot_size};
    out->slab = s->slab(slab);
    out->src = nullptr;
    // A slab that was never written (or was returned to the OS) holds no live object;
    // answering without reading its header also keeps the kernel from backing it.
    if (!c->state->segments[i].slabs[slab].resident) {
      return fail(EINVAL, "%s: %p is not a live object of cache '%s' (double free, or never allocated)", who, obj,
                  c->name);
    }
    return 0;
  }
  return fail(EINVAL, "%s: %p is not an object of cache '%s'", who, obj, c->name);
}

void reset(const void** out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = nullptr;
}

}  // namespace

int cache_alloc_init(CacheDesc* c, pmalloc_cache_init_fn* init, void* ctx, const void** out) noexcept {
  *out = nullptr;
  if (int e = cache_validate(c)) return e;
  if (init == nullptr) return fail(EINVAL, "pmalloc_cache_alloc_init: init is NULL");
  Staging staging;
  if (int e = staging.init(c->geo.object_size, c->geo.align)) return e;
  Target t{};
  {
    std::lock_guard<std::mutex> guard(c->state->lock);
    if (int e = reserve_slots(c, 1, &t.ref)) return e;
    t.slab = checked_slab(c, t.ref);
  }
  const void* final_address = slot_address(c, t.slab, t.ref.slot);
  if (const int rc = init(staging.data(), final_address, ctx); rc != 0) {
    std::lock_guard<std::mutex> guard(c->state->lock);
    release_slots(c, &t.ref, 1);
    return fail(ECANCELED, "pmalloc_cache_alloc_init: init returned %d; nothing was allocated", rc);
  }
  t.src = staging.data();
  const int e = write_targets(c, &t, 1, true);
  std::lock_guard<std::mutex> guard(c->state->lock);
  if (e == EEXIST) fatal("pmalloc_cache '%s': bookkeeping handed out a live slot", c->name);
  if (e != 0) {
    release_slots(c, &t.ref, 1);
    return e;
  }
  commit_slots(c, &t.ref, 1);
  *out = final_address;
  return 0;
}

int cache_alloc_init_many(CacheDesc* c, std::size_t count, const void** out, pmalloc_cache_init_many_fn* init,
                          void* ctx) noexcept {
  if (count == 0) return 0;
  if (out == nullptr) return fail(EINVAL, "pmalloc_cache_alloc_init_many: out is NULL");
  reset(out, count);
  if (int e = cache_validate(c)) return e;
  if (init == nullptr) return fail(EINVAL, "pmalloc_cache_alloc_init_many: init is NULL");
  const Geometry& g = c->geo;
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, g.slot_size, &bytes)) {
    return fail(ENOMEM, "pmalloc_cache_alloc_init_many: %zu objects of %zu bytes overflow", count, g.slot_size);
  }
  Staging staging;
  if (int e = staging.init(bytes, g.align)) return e;
  std::unique_ptr<Target[]> t(new (std::nothrow) Target[count]);
  std::unique_ptr<SlotRef[]> refs(new (std::nothrow) SlotRef[count]);
  if (t == nullptr || refs == nullptr) {
    return fail(ENOMEM, "pmalloc_cache_alloc_init_many: out of memory for %zu objects", count);
  }
  {
    std::lock_guard<std::mutex> guard(c->state->lock);
    if (int e = reserve_slots(c, count, refs.get())) return e;
    for (std::size_t i = 0; i < count; ++i) {
      t[i] = Target{refs[i], checked_slab(c, refs[i]), staging.data() + i * g.slot_size};
    }
  }
  for (std::size_t i = 0; i < count; ++i) out[i] = slot_address(c, t[i].slab, t[i].ref.slot);
  for (std::size_t i = 0; i < count; ++i) {
    if (const int rc = init(staging.data() + i * g.slot_size, out[i], i, ctx); rc != 0) {
      reset(out, count);
      std::lock_guard<std::mutex> guard(c->state->lock);
      release_slots(c, refs.get(), count);
      return fail(ECANCELED, "pmalloc_cache_alloc_init_many: init returned %d for object %zu; nothing was allocated",
                  rc, i);
    }
  }
  const int e = write_targets(c, t.get(), count, true);
  std::lock_guard<std::mutex> guard(c->state->lock);
  if (e == EEXIST) fatal("pmalloc_cache '%s': bookkeeping handed out a live slot", c->name);
  if (e != 0) {
    reset(out, count);
    release_slots(c, refs.get(), count);
    return e;
  }
  commit_slots(c, refs.get(), count);
  return 0;
}

int cache_free(CacheDesc* c, const void* obj) noexcept {
  if (int e = cache_validate(c)) return e;
  if (obj == nullptr) return fail(EINVAL, "pmalloc_cache_free: object is NULL");
  Target t{};
  {
    std::lock_guard<std::mutex> guard(c->state->lock);
    if (int e = resolve_object(c, obj, "pmalloc_cache_free", &t)) return e;
  }
  if (int e = write_targets(c, &t, 1, false)) {
    if (e == ENOENT) {
      return fail(EINVAL, "pmalloc_cache_free: %p is not a live object of cache '%s' (double free, or never "
                  "allocated)", obj, c->name);
    }
    return e;
  }
  std::lock_guard<std::mutex> guard(c->state->lock);
  c->state->live_objects -= 1;
  release_slots(c, &t.ref, 1);
  return 0;
}

int cache_free_many(CacheDesc* c, const void* const* objs, std::size_t count) noexcept {
  if (count == 0) return 0;
  if (int e = cache_validate(c)) return e;
  if (objs == nullptr) return fail(EINVAL, "pmalloc_cache_free_many: objects array is NULL");
  std::unique_ptr<Target[]> t(new (std::nothrow) Target[count]);
  std::unique_ptr<SlotRef[]> refs(new (std::nothrow) SlotRef[count]);
  if (t == nullptr || refs == nullptr) {
    return fail(ENOMEM, "pmalloc_cache_free_many: out of memory for %zu objects", count);
  }
  {
    std::lock_guard<std::mutex> guard(c->state->lock);
    for (std::size_t i = 0; i < count; ++i) {
      if (objs[i] == nullptr) return fail(EINVAL, "pmalloc_cache_free_many: object %zu is NULL", i);
      if (int e = resolve_object(c, objs[i], "pmalloc_cache_free_many", &t[i])) return e;
    }
  }
  std::sort(t.get(), t.get() + count, [](const Target& a, const Target& b) {
    return a.slab != b.slab ? a.slab < b.slab : a.ref.slot < b.ref.slot;
  });
  for (std::size_t i = 1; i < count; ++i) {
    if (t[i].slab == t[i - 1].slab && t[i].ref.slot == t[i - 1].ref.slot) {
      return fail(EINVAL, "pmalloc_cache_free_many: %p appears twice",
                  static_cast<const void*>(slot_address(c, t[i].slab, t[i].ref.slot)));
    }
  }
  if (int e = write_targets(c, t.get(), count, false)) {
    if (e == ENOENT) {
      return fail(EINVAL, "pmalloc_cache_free_many: some object is not a live object of cache '%s' (double free, "
                  "or never allocated); nothing was freed", c->name);
    }
    return e;
  }
  for (std::size_t i = 0; i < count; ++i) refs[i] = t[i].ref;
  std::lock_guard<std::mutex> guard(c->state->lock);
  c->state->live_objects -= count;
  release_slots(c, refs.get(), count);
  return 0;
}

}  // namespace pmalloc::internal
