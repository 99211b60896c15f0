// libFuzzer harness: random sequences of pool operations against a reference model.
//
// The input is read as a program: each step picks an operation (create, alloc, aligned
// alloc, free — valid or deliberately bad —, plain write, protect, wr_memcpy, wr_memset,
// make read-only, prealloc, object checks, destroy) and its arguments. A simple model keeps,
// per pool, its flags, whether it has been protected, and every live allocation with its
// expected contents. After every step the harness checks that
//   * the call succeeded or failed exactly when the model says it must (a failure must
//     come with errno and a reason), and nothing changed on failure;
//   * every live allocation of every pool still holds its expected bytes;
//   * every pool passes the invariant checker (internal::pool_check);
//   * is_pmalloc_object agrees with the model on live allocations and their bounds.
// Every pool is destroyed at the end of an input, so inputs are independent.
//
// Build: cmake -DPMALLOC_BUILD_FUZZ=ON with clang (scripts/test.sh, tier "fuzz"), run:
//   build-fuzz/fuzz/pool_fuzz -max_total_time=60 <new-corpus-dir> fuzz/corpus/pool
// The same function also replays the seed corpus in every ordinary test run
// (tests/fuzz_corpus_test.cpp), so the seeds stay meaningful.
#include <pmalloc/pmalloc.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "pool/lock.hpp"
#include "pool/pool.hpp"

namespace pmalloc_fuzz {
namespace {

[[noreturn]] void die(const char* what, unsigned step) {
  std::fprintf(stderr, "pool_fuzz: step %u: %s (last error: %s)\n", step, what, pmalloc_last_error());
  std::abort();
}
#define FUZZ_CHECK(cond, what) \
  do {                         \
    if (!(cond)) die(what, step_); \
  } while (0)

// Reads the input as a stream of small integers; zeros once it runs out.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : u16() % n; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

struct Live {
  unsigned char* p;
  std::size_t n;
  std::vector<unsigned char> bytes;
  bool writable;  // plain writes allowed (allocated since the last protect)
};

struct ModelPool {
  pmalloc_pool* pool = nullptr;
  unsigned flags = 0;
  bool made_ro = false;
  std::vector<Live> live;
  std::vector<unsigned char*> freed;  // for double frees
};

constexpr unsigned kMaxPools = 4;
constexpr unsigned kMaxSealedPools = 64;
unsigned g_sealed_pools = 0;
constexpr unsigned kMaxSteps = 96;
constexpr std::size_t kMaxLiveBytes = std::size_t{8} << 20;

class Session {
 public:
  explicit Session(Reader& in) : in_(in) {}
  ~Session() {
    for (ModelPool& m : pools_) {
      if (m.pool != nullptr) pmalloc_destroy_pool(m.pool);
    }
  }

  void run() {
    while (!in_.done() && step_ < kMaxSteps) {
      ++step_;
      touched_ = nullptr;
      step();
      verify(false);
    }
    verify(true);
  }

 private:
  Reader& in_;
  unsigned step_ = 0;
  ModelPool pools_[kMaxPools];
  ModelPool* touched_ = nullptr;  // the pool the current step worked on
  std::size_t live_bytes_ = 0;     // over all pools
  std::vector<unsigned char> scratch_;

  ModelPool* pick_pool() {
    ModelPool& m = pools_[in_.below(kMaxPools)];
    touched_ = &m;
    return m.pool != nullptr ? &m : nullptr;
  }
  Live* pick_live(ModelPool& m) { return m.live.empty() ? nullptr : &m.live[in_.below(m.live.size())]; }

  std::size_t pick_size() {
    switch (in_.byte() % 16) {
      case 0: return 0;
      case 1: return SIZE_MAX - in_.byte();
      case 2: return std::size_t{1} << 41;
      case 3: return 4096 * (1 + in_.below(64));  // page multiples, up to 256 KiB
      case 4: return in_.byte() % 4 == 0 ? std::size_t{3} << 19 : 1 + in_.below(4096);  // 1.5 MiB: a region
      default: return 1 + in_.below(600);
    }
  }

  void expect_failure(bool failed, const char* what) {
    FUZZ_CHECK(failed, what);
    FUZZ_CHECK(errno != 0, "failure without errno");
    FUZZ_CHECK(pmalloc_last_error()[0] != '\0', "failure without a reason");
  }

  // A fill byte plus distinct first and last bytes: cheap for large allocations (the
  // harness's own loops are instrumented) and still tells neighbours apart.
  void fill(Live& l) {
    const unsigned char seed = in_.byte();
    std::memset(l.bytes.data(), seed, l.n);
    l.bytes[0] = static_cast<unsigned char>(seed ^ 0xA5);
    l.bytes[l.n - 1] = static_cast<unsigned char>(seed + 1);
    std::memcpy(l.p, l.bytes.data(), l.n);
  }

  void create() {
    for (ModelPool& m : pools_) {
      if (m.pool != nullptr) continue;
      unsigned flags = in_.byte() & 0x1F;  // 0x10 is unknown: must be refused
      if ((flags & PMALLOC_SEAL) != 0 && in_.byte() % 4 != 0) flags &= ~PMALLOC_SEAL;  // keep seals rare
      // Sealed pages outlive their pool (the kernel will not unmap them): in a long run
      // they would pile up until the process runs out of memory or mappings. Only the first
      // kMaxSealedPools sealed pools of a process are sealed.
      if ((flags & PMALLOC_SEAL) != 0 && g_sealed_pools++ >= kMaxSealedPools) flags &= ~PMALLOC_SEAL;
      errno = 0;
      m.pool = pmalloc_create_pool("fuzz", flags);
      if ((flags & ~0xFu) != 0) {
        expect_failure(m.pool == nullptr, "unknown flags accepted");
        FUZZ_CHECK(errno == EINVAL, "unknown flags: not EINVAL");
        return;
      }
      FUZZ_CHECK(m.pool != nullptr, "pool creation failed");
      m.flags = flags;
      m.made_ro = false;
      return;
    }
  }

  void alloc(bool aligned) {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    const std::size_t size = pick_size();
    std::size_t align = 16;
    if (aligned) {
      const unsigned k = in_.byte() % 16;
      align = k < 13 ? std::size_t{1} << k : (k == 13 ? 0 : (k == 14 ? 24 : 8192));
    }
    errno = 0;
    auto* p = static_cast<unsigned char*>(aligned ? pmalloc_aligned(m->pool, size, align) : pmalloc(m->pool, size));
    const bool bad_align = align == 0 || (align & (align - 1)) != 0 || align > 4096;
    if (size == 0 || bad_align) {
      expect_failure(p == nullptr, "bad size/alignment accepted");
      FUZZ_CHECK(errno == EINVAL, "bad size/alignment: not EINVAL");
      return;
    }
    if (size > (std::size_t{1} << 40)) {
      expect_failure(p == nullptr, "absurd size accepted");
      FUZZ_CHECK(errno == ENOMEM, "absurd size: not ENOMEM");
      return;
    }
    FUZZ_CHECK(p != nullptr, "allocation failed");
    // With PMALLOC_AUTO the pages below the newest allocation get protected as allocation
    // moves on; only the newest one is sure to be writable. That holds also when the new
    // allocation is freed again at once (below): a rollback does not unprotect.
    if ((m->flags & PMALLOC_AUTO) != 0) {
      for (Live& l : m->live) l.writable = false;
    }
    // Every step compares every live byte with the model: keep that bounded.
    if (live_bytes_ + size > kMaxLiveBytes) {
      FUZZ_CHECK(pfree(m->pool, p) == 0, "pfree of a fresh allocation failed");
      return;
    }
    live_bytes_ += size;
    FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(p) % (align < 16 ? 16 : align) == 0, "misaligned allocation");
    for (const Live& l : m->live) FUZZ_CHECK(p + size <= l.p || l.p + l.n <= p, "allocation overlaps a live one");
    Live l{p, size, std::vector<unsigned char>(size), true};
    fill(l);
    m->live.push_back(std::move(l));
  }

  void free_one() {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    const unsigned kind = in_.byte() % 8;
    errno = 0;
    if (kind < 4 && !m->live.empty()) {
      const std::size_t i = in_.below(m->live.size());
      unsigned char* p = m->live[i].p;
      FUZZ_CHECK(pfree(m->pool, p) == 0, "pfree of a live allocation failed");
      live_bytes_ -= m->live[i].n;
      m->live.erase(m->live.begin() + static_cast<std::ptrdiff_t>(i));
      m->freed.push_back(p);
      return;
    }
    const void* bad = nullptr;
    if (kind == 4 && !m->freed.empty()) {
      bad = m->freed[in_.below(m->freed.size())];
      for (const Live& l : m->live) {
        if (l.p == bad) return;  // the address was handed out again: not a double free
      }
    } else if (kind == 5 && !m->live.empty()) {
      const Live& l = m->live[in_.below(m->live.size())];
      bad = l.p + 1 + in_.below(l.n);  // interior or one past the end
      for (const Live& o : m->live) {
        if (o.p == bad) return;
      }
    } else if (kind == 6) {
      bad = &scratch_;
    } else {
      // Another pool's allocation.
      for (ModelPool& o : pools_) {
        if (&o != m && o.pool != nullptr && !o.live.empty()) bad = o.live[0].p;
      }
    }
    if (bad == nullptr) return;
    const int e = pfree(m->pool, bad);
    expect_failure(e != 0, "bad pfree accepted");
    FUZZ_CHECK(e == EINVAL && errno == EINVAL, "bad pfree: not EINVAL");
  }

  void write_plain() {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    Live* l = pick_live(*m);
    if (l == nullptr || !l->writable) return;
    fill(*l);
  }

  void protect() {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    FUZZ_CHECK(pmalloc_protect_pool(m->pool) == 0, "protect failed");
    for (Live& l : m->live) l.writable = false;
  }

  void prealloc() {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    const std::size_t size = pick_size();
    errno = 0;
    const int e = pmalloc_prealloc(m->pool, size);
    if (size == 0) {
      expect_failure(e == EINVAL, "prealloc(0) accepted");
    } else if (size > (std::size_t{1} << 40)) {
      expect_failure(e == ENOMEM, "absurd prealloc accepted");
    } else {
      FUZZ_CHECK(e == 0, "prealloc failed");
    }
  }

  // The live allocation (of any pool) that holds all of [t, t + span), with its pool.
  std::pair<ModelPool*, Live*> holder_of(const unsigned char* t, std::size_t span) {
    const auto b = reinterpret_cast<std::uintptr_t>(t);
    for (ModelPool& o : pools_) {
      for (Live& x : o.live) {
        const auto lo = reinterpret_cast<std::uintptr_t>(x.p);
        if (lo <= b && b - lo <= x.n && span <= x.n - (b - lo)) return {&o, &x};
      }
    }
    return {nullptr, nullptr};
  }

  void wr(bool memset_form) {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    Live* l = pick_live(*m);
    if (l == nullptr) return;
    const std::size_t off = in_.below(l->n + 1);
    std::size_t n = in_.below(l->n + 1);
    const bool over = in_.byte() % 8 == 0;  // deliberately past the end of l
    if (over) n = l->n - off + 1 + in_.below(64);
    // The target is [t, t + n), or the byte at t when n is 0. It starts inside l or one
    // past its end, where it may fall inside a neighbour: a valid target of its own pool.
    unsigned char* const t = l->p + off;
    const auto [owner, target] = holder_of(t, n == 0 ? 1 : n);
    const unsigned char c = in_.byte();
    std::vector<unsigned char> src(n, c);  // what the target holds afterwards
    if (n != 0 && !memset_form) src[n - 1] = static_cast<unsigned char>(c ^ 0x3C);
    errno = 0;
    const bool ok = memset_form ? wr_memset(t, c, n) : wr_memcpy(t, src.data(), n);
    if (target == nullptr) {
      expect_failure(!ok, "wr_* past the end of an allocation accepted");
      FUZZ_CHECK(errno == EINVAL, "wr_* past the end: not EINVAL");
    } else if ((owner->flags & PMALLOC_WR) == 0 || owner->made_ro) {
      expect_failure(!ok, "wr_* into a write-once pool accepted");
      FUZZ_CHECK(errno == EPERM, "wr_* into a write-once pool: not EPERM");
    } else if ((owner->flags & PMALLOC_SEAL) != 0 && !ok) {
      FUZZ_CHECK(errno == EPERM, "wr_* into sealed pages: not EPERM");  // writer cannot reach them
    } else {
      FUZZ_CHECK(ok, "wr_* into a live write-rare allocation failed");
      if (n != 0) std::memcpy(target->bytes.data() + (t - target->p), src.data(), n);
    }
  }

  void make_ro() {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    FUZZ_CHECK(pmalloc_make_pool_ro(m->pool) == 0, "pmalloc_make_pool_ro failed");
    if ((m->flags & PMALLOC_WR) != 0) m->made_ro = true;
  }

  void check_objects() {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    Live* l = pick_live(*m);
    if (l == nullptr) return;
    const std::size_t off = in_.below(l->n);
    const std::size_t n = in_.below(l->n - off + 1);
    FUZZ_CHECK(is_pmalloc_object(l->p + off, n) == PMALLOC_OBJECT_OK, "a range inside an allocation is not OK");
    FUZZ_CHECK(is_pmalloc_object(l->p + off, l->n - off + 1) == PMALLOC_OBJECT_BAD, "a range past the end is not BAD");
    pmalloc_usercopy_check(l->p + off, n, false);  // must return
  }

  void destroy() {
    ModelPool* m = pick_pool();
    if (m == nullptr) return;
    std::vector<unsigned char*> gone;
    for (const Live& l : m->live) {
      gone.push_back(l.p);
      live_bytes_ -= l.n;
    }
    pmalloc_destroy_pool(m->pool);
    *m = ModelPool{};
    for (unsigned char* p : gone) FUZZ_CHECK(is_pmalloc_object(p, 1) != PMALLOC_OBJECT_OK, "destroyed memory still OK");
  }

  void step() {
    switch (in_.byte() % 16) {
      case 0: create(); break;
      case 1:
      case 2:
      case 3: alloc(false); break;
      case 4: alloc(true); break;
      case 5:
      case 6: free_one(); break;
      case 7: write_plain(); break;
      case 8: protect(); break;
      case 9: wr(false); break;
      case 10: wr(true); break;
      case 11: make_ro(); break;
      case 12: prealloc(); break;
      case 13: check_objects(); break;
      case 14: destroy(); break;
      default: create(); break;
    }
  }

  // Contents of every pool after every step; the invariant checker and the accounting
  // (O(pool) each) for the pool the step worked on, and for all of them at the end.
  void verify(bool all) {
    for (ModelPool& m : pools_) {
      if (m.pool == nullptr) continue;
      for (const Live& l : m.live) FUZZ_CHECK(std::memcmp(l.p, l.bytes.data(), l.n) == 0, "allocation contents differ from the model");
      if (!all && &m != touched_) continue;
      {
        pmalloc::internal::PoolGuard guard(pmalloc::internal::from_handle(m.pool));
        FUZZ_CHECK(pmalloc::internal::pool_check(pmalloc::internal::from_handle(m.pool)), "invariant check failed");
      }
      struct pmalloc_stats s {};
      FUZZ_CHECK(pmalloc_pool_stats(m.pool, &s) == 0, "stats failed");
      FUZZ_CHECK(s.allocations_live == m.live.size(), "live allocation count differs from the model");
      for (const Live& l : m.live) FUZZ_CHECK(is_pmalloc_object(l.p, l.n) == PMALLOC_OBJECT_OK, "live allocation not OK");
    }
  }
};

}  // namespace

int run_one(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  Session session(in);
  session.run();
  return 0;
}

}  // namespace pmalloc_fuzz

#ifndef PMALLOC_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return pmalloc_fuzz::run_one(data, size);
}
#endif
