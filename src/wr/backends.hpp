// The writer's back ends, one file each (procmem_writer.cpp, mprotect_writer.cpp,
// alias_writer.cpp, pkey_writer.cpp), and how a chunk's target is classified. Internal to
// src/wr; the interface everybody else uses is writer.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "wr/writer.hpp"

namespace pmalloc::internal {
struct Region;
}

namespace pmalloc::internal::wr::detail {

// What the writer knows about a chunk's target pages, from the address registry and the
// region header (protected metadata, so an attacker cannot widen it).
struct Target {
  const Region* region = nullptr;  // nullptr: not in a pool region (execmem's own, say)
  bool tagged = false;             // pkey: inside the key-tagged data prefix
  bool sealed = false;             // touches the region's mseal()ed span
  bool uniform_read = false;       // inside the region's read-only prefix [meta, data+protected)
  bool inherited = false;          // memfd-backed region of the process this one was forked from
};
Target classify(const Chunk& c) noexcept;

// Copies n bytes; an aligned 8-byte copy is one release store (never torn). Longer copies
// store only the runs of bytes that change: metadata is rewritten as whole structs
// (MetaTxn), and fields that keep their value, like a region's pool pointer that lookups
// read without the pool lock, must not be stored to at all.
inline void copy_bytes(void* to, const void* from, std::size_t n) noexcept {
  if (n == sizeof(std::uint64_t) && (reinterpret_cast<std::uintptr_t>(to) & 7u) == 0) {
    std::uint64_t v;
    std::memcpy(&v, from, sizeof v);
    __atomic_store_n(static_cast<std::uint64_t*>(to), v, __ATOMIC_RELEASE);
    return;
  }
  auto* d = static_cast<unsigned char*>(to);
  const auto* s = static_cast<const unsigned char*>(from);
  std::size_t i = 0;
  while (i < n) {
    if (d[i] == s[i]) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < n && d[j] != s[j]) ++j;
    std::memcpy(d + i, s + i, j - i);
    i = j;
  }
}

bool procmem_probe() noexcept;
int procmem_write(const Chunk* chunks, std::size_t count) noexcept;

int mprotect_write(const Chunk* chunks, std::size_t count, os::Access restore) noexcept;

bool alias_probe() noexcept;
// EINVAL/EPERM before anything is written when the pages cannot be aliased (not shared,
// sealed): the caller then uses the fallback writer.
int alias_write(const Chunk* chunks, std::size_t count) noexcept;

bool pkey_probe() noexcept;  // allocates the key on success
int pkey_key() noexcept;     // -1 until pkey_probe() succeeded
int pkey_write(const Chunk* chunks, std::size_t count) noexcept;

}  // namespace pmalloc::internal::wr::detail
