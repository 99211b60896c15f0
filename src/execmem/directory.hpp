// The pack directory: which execmem pack, if any, holds an address.
//
// execmem_update_copy() and execmem_free() take bare pointers, so they must find the pack
// (and through it the allocation) an address belongs to, and must not be fooled: if a
// stray write could add a forged pack, update_copy would become a way to write anywhere.
// The directory is therefore a sorted array of {reservation begin, end, pack, type} in
// pages that are read-only from the start and changed only through the writer (MetaTxn),
// like the packs' own metadata. Lookups are a binary search under a shared lock (ordinary
// memory: corrupting the lock can only make threads wait or race, never grant writes).
//
// The pool engine has its own registry (src/registry) mapping addresses to pool Regions;
// execmem keeps a separate one because its entries are not Regions and its lookups need
// the type before any pack memory is touched (to take that type's lock first).
// Lock order: a type lock, then the directory lock; never the other way round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "execmem/kind.hpp"

namespace pmalloc::internal::execmem {

struct Pack;

struct DirEntry {
  std::uintptr_t begin;  // the pack's reservation, guards included
  std::uintptr_t end;
  Pack* pack;
  Kind kind;
};

namespace directory {

// 0, or ENOMEM (directory full or unavailable) / a writer error (reason recorded).
[[nodiscard]] int add(const DirEntry& entry) noexcept;
// 0 or a writer error (reason recorded).
[[nodiscard]] int remove(const Pack* pack) noexcept;
// The entry whose reservation contains p.
bool find(const void* p, DirEntry* out) noexcept;
// The packs of one type, in address order. ENOMEM when the vector cannot grow.
[[nodiscard]] int packs_of(Kind kind, std::vector<Pack*>* out) noexcept;
// Number of packs of all types.
std::size_t size() noexcept;

}  // namespace directory
}  // namespace pmalloc::internal::execmem
