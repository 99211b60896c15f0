// The OS primitive layer: the only code in pmalloc that calls mmap, mprotect, mseal,
// madvise, munmap and friends.
//
// Contract, obeyed by every function declared here:
//   * addresses and sizes are multiples of page_size() (checked; EINVAL otherwise);
//   * the result is an int: 0 on success, otherwise a positive errno value; errno itself
//     is left as the kernel set it, callers must use the return value;
//   * nothing here allocates from the C++ heap, takes locks, or logs, so it can be used
//     from any layer, including while a pool lock is held.
// Everything above this layer speaks in os::Access, never in PROT_* bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pmalloc::os {

// Page permissions as a type. There is deliberately no read_write_exec.
enum class Access : std::uint8_t { none, read, read_write, read_exec };

const char* access_name(Access a) noexcept;

// The MMU page size (4 KiB on x86-64), read once.
std::size_t page_size() noexcept;

inline std::size_t round_up_to_page(std::size_t n) noexcept {
  const std::size_t p = page_size();
  return (n + p - 1) & ~(p - 1);
}
inline bool is_page_aligned(const void* p) noexcept {
  return (reinterpret_cast<std::uintptr_t>(p) & (page_size() - 1)) == 0;
}

// Reserves `size` bytes of address space with no access and no commit charge.
[[nodiscard]] int reserve(std::size_t size, void** out) noexcept;
// Changes the access of [addr, addr+size). Splits mappings; keep calls coarse.
[[nodiscard]] int set_access(void* addr, std::size_t size, Access a) noexcept;
// mseal(2): afterwards mprotect/munmap/mremap of the range fail with EPERM.
// ENOSYS when the kernel lacks mseal (or PMALLOC_NO_MSEAL=1 is set).
[[nodiscard]] int seal(void* addr, std::size_t size) noexcept;
// Returns the pages' memory to the kernel; the range stays reserved.
[[nodiscard]] int discard(void* addr, std::size_t size) noexcept;
// Asks for transparent huge pages on the range (advice only).
[[nodiscard]] int advise_hugepages(void* addr, std::size_t size) noexcept;
// Unmaps the range.
[[nodiscard]] int release(void* addr, std::size_t size) noexcept;
// Moves the mapping [from, from + size) (one mapping of this process) onto `to`, replacing
// what was mapped there in one step (mremap MREMAP_FIXED): a thread touching `to` meanwhile
// finds the old pages or the new ones, never a hole. EPERM when `to` is sealed.
[[nodiscard]] int move_onto(void* from, std::size_t size, void* to) noexcept;

// getpid(2): tells a forked child from the process that created shared mappings.
int process_id() noexcept;

// True when mseal(2) works here; probed once without side effects.
bool seal_supported() noexcept;

// Writes n bytes at dst through /proc/self/mem: the kernel performs the write on our
// behalf whatever the page's permission (even on sealed pages), so no mapping ever
// becomes writable. Opened lazily once; ENOSYS-like errors when unavailable.
// dst and n need no alignment.
[[nodiscard]] int procmem_write(void* dst, const void* src, std::size_t n) noexcept;
// Whether /proc/self/mem can be opened for writing here.
bool procmem_available() noexcept;

// --- Shared reservations and aliases (os/memfd.cpp), for the 'alias' writer.
// Like reserve(), but backed by a memfd (MAP_SHARED), so its pages can be aliased.
[[nodiscard]] int reserve_shared(std::size_t size, void** out) noexcept;
// Maps the pages [addr, addr+size) of a shared mapping a second time, read-write, at
// `hint` (page-aligned; EEXIST when taken) or anywhere for nullptr. EINVAL for private
// mappings, EPERM for sealed ones. Unmap the view with release().
[[nodiscard]] int map_alias(void* addr, std::size_t size, void* hint, void** out) noexcept;
// The same onto `at`, which the caller has reserved (reserve_at): the view replaces that
// part of the reservation; unmap_view(..., true) puts the reservation back.
[[nodiscard]] int map_alias_into(void* addr, std::size_t size, void* at, void** out) noexcept;
// Reserves [hint, hint+size) exactly (no access, no commit charge); EEXIST when taken.
[[nodiscard]] int reserve_at(void* hint, std::size_t size, void** out) noexcept;
// Removes a view; with `keep_reservation` an inaccessible reservation takes its place.
[[nodiscard]] int unmap_view(void* view, std::size_t size, bool keep_reservation) noexcept;

// --- Memory protection keys (os/pkey.cpp; PKRU arithmetic in os/pkru.hpp).
// CPU and kernel support (CPUID PKU and OSPKE); no system call.
bool cpu_has_pkeys() noexcept;
// pkey_alloc(2) with writes disabled for the calling thread (threads created afterwards
// inherit its PKRU). ENOSPC/EINVAL where keys are unsupported or exhausted.
[[nodiscard]] int pkey_alloc_write_disabled(int* out) noexcept;
// pkey_mprotect(2): set_access() that also tags the pages with `pkey`.
[[nodiscard]] int set_access_pkey(void* addr, std::size_t size, Access a, int pkey) noexcept;

}  // namespace pmalloc::os
