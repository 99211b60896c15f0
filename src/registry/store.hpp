// Protected storage of the address registry, and the one way to change it.
//
// The registry decides what the object checks and the wr_* validation accept, so it must
// not be writable by an attacker who can write memory (seeds/000: "Shouldn't also the set
// of pages used for keeping track of the others be sealed?"). Its storage is therefore:
//
//   * one reservation (the Arena below), read-only from the moment it exists, sealed with
//     mseal() where the kernel can (a single kernel mapping however many regions exist);
//   * reached through a pointer kept in a page of its own (the root page) that is made
//     read-only once the arena is published, so the pointer cannot be redirected to a
//     forged registry either;
//   * changed only by Update, which writes through /proc/self/mem (the kernel writes on
//     our behalf; no page ever becomes writable, so other threads never see a window).
//     Where /proc/self/mem is unavailable it falls back to a short mprotect window over
//     the arena (weaker: other threads could write during it) and the arena is not sealed.
//
// This is deliberately independent of the write-rare writer (src/wr): the registry must
// work whatever back end PMALLOC_WR_BACKEND picks (even an unavailable one), a future
// back end may itself consult the registry, and its writes must be visible to
// ThreadSanitizer as atomic (the mprotect fallback stores words atomically).
//
// Concurrency: writers are serialised by the registry's update lock (registry.cpp).
// Readers never lock: Header::seq is a sequence counter, odd while an update is under
// way; a reader reads seq, then the entries (atomic loads), then seq again, and retries
// when it changed. Update::begin/finish move seq; it only ever increases.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pmalloc::internal {
struct Region;
}

namespace pmalloc::internal::registry {

// Address lookup goes through a two-level table of 1 MiB chunks: dir[addr >> 32] names a
// leaf, leaf[(addr >> 20) & 4095] names the first registration that intersects the chunk.
inline constexpr unsigned kAddressBits = 48;
inline constexpr unsigned kChunkShift = 20;
inline constexpr unsigned kLeafShift = 32;
inline constexpr std::size_t kLeafCells = std::size_t{1} << (kLeafShift - kChunkShift);
inline constexpr std::size_t kDirEntries = std::size_t{1} << (kAddressBits - kLeafShift);
// Registrations (slot 0 is "none"): well above vm.max_map_count, since every region
// needs at least one kernel mapping. Leaves: each covers 4 GiB of address space.
inline constexpr std::uint32_t kMaxSlots = 1u << 17;
inline constexpr std::uint32_t kMaxLeaves = 512;

// One registration: [begin, end) belongs to `owner`, a Region or cache Segment header
// (page-aligned) whose low bits hold the registry::Kind. Slots form a doubly linked list
// in address order; free slots are chained through `next`.
struct Slot {
  std::uint64_t begin;
  std::uint64_t end;
  std::uint64_t owner;
  std::uint32_t next;
  std::uint32_t prev;
};
inline constexpr std::uint64_t kKindMask = 0xFF;

struct Counts {
  std::uint32_t count;        // live registrations
  std::uint32_t head;         // lowest registration
  std::uint32_t tail;         // highest registration
  std::uint32_t free_head;    // freed slots
  std::uint32_t slots_used;   // slots ever used, slot 0 included
  std::uint32_t leaves_used;  // leaves handed out (leaf ids are 1-based)
};

struct Header {
  std::uint64_t seq;  // odd while an update is under way
  unsigned char pad[56];
  Counts counts;
};

// The arena, placed at the start of its reservation; never constructed (fresh pages are
// zero, which is the empty registry).
struct Arena {
  Header header;
  unsigned char header_pad[4096 - sizeof(Header)];
  Slot slots[kMaxSlots];
  std::uint32_t dir[kDirEntries];
  std::uint32_t leaves[kMaxLeaves][kLeafCells];
};

// Atomic load of a field in the arena (readers race with updates by design). Acquire, so
// that a seqlock reader's closing read of the counter cannot move before any of them
// (registry.cpp, recheck_seq); on x86-64 that is a plain load.
template <class T>
inline T ld(const T& field) noexcept {
  return __atomic_load_n(&field, __ATOMIC_ACQUIRE);
}

// The root: the arena pointer, in the RELRO part of the image (.data.rel.ro), which the
// dynamic loader makes read-only before main() runs. Nothing ever makes it writable: it is
// written once, through the kernel (/proc/self/mem), so protecting it costs no mprotect
// and no extra kernel mapping (without /proc/self/mem the page is opened for that one
// write; store.cpp). Read with atomic loads.
struct Root {
  Arena* arena;
  bool kernel_writes;
};
// Hidden: reached PC-relative from inside the library, never through the GOT, so no other
// module's symbol can stand in for it.
[[gnu::visibility("hidden")]] extern Root g_root;

// The arena, or nullptr before it exists (it is created when the library loads).
inline const Arena* arena() noexcept { return __atomic_load_n(&g_root.arena, __ATOMIC_ACQUIRE); }
// Creates the arena on first use. Caller holds the update lock. 0 or an errno value.
[[nodiscard]] int ensure_arena(Arena** out) noexcept;
// Bytes of the arena's reservation.
std::size_t arena_bytes() noexcept;
// Whether updates go through /proc/self/mem (true) or an mprotect window (false, when
// /proc/self/mem is unavailable or PMALLOC_REGISTRY_WRITER=window forces it).
bool kernel_writes() noexcept;
// The root page (for tests: it must be read-only once the arena exists).
const void* root_address() noexcept;

// One change of the registry. begin() marks it in progress (seq odd), put() applies a
// write at once and remembers the old bytes, finish(true) ends it, finish(false) undoes
// every applied write in reverse order first. finish never fails: when even the undo or
// the closing seq write keeps failing, the registry cannot be trusted and the process
// stops (fatal), the hardened choice. Caller holds the update lock.
class Update {
 public:
  explicit Update(Arena* a) noexcept : a_(a) {}
  ~Update() {
    if (begun_ && !finished_) finish(false);
  }
  Update(const Update&) = delete;
  Update& operator=(const Update&) = delete;

  [[nodiscard]] int begin() noexcept;
  // dst must lie in the arena; dst and n are multiples of 4. After a failure every later
  // put returns the first error without writing.
  int put(void* dst, const void* src, std::size_t n) noexcept;
  template <class T>
  int put(T& dst, const T& value) noexcept {
    return put(&dst, &value, sizeof(T));
  }
  void finish(bool commit) noexcept;
  int error() const noexcept { return error_; }
  // Marks the update failed (finish will undo it) unless it failed already.
  void set_error(int e) noexcept {
    if (error_ == 0) error_ = e;
  }

 private:
  struct Undo {
    void* dst;
    std::size_t n;
    std::size_t offset;  // of the old bytes in log_
  };
  Arena* a_;
  std::uint64_t seq_ = 0;
  bool begun_ = false;
  bool finished_ = false;
  int error_ = 0;
  std::vector<Undo> undo_;
  std::vector<unsigned char> log_;
};

}  // namespace pmalloc::internal::registry
