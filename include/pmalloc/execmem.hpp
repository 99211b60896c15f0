// pmalloc C++ API for executable memory: RAII code blocks and typed function pointers
// over pmalloc/execmem.h.
//
//   pmalloc::CodeArena arena;                       // owns every block it hands out
//   auto* add = arena.add<int(int, int)>(bytes);    // copy code into fresh text, get a typed pointer
//   int r = add(2, 3);
//   arena.remove(add);                              // or let the arena go out of scope
//
//   pmalloc::JitFunction<int(int)> f(bytes);        // one function that owns its code
//   pmalloc::ExecBlock table(pmalloc::ExecType::rodata, 256);  // any type, one block
//
// Code and read-only data are only ever written through execmem_update_copy (write(),
// add()); the pages are never writable and executable. Errors throw pmalloc::error
// (std::system_error, code() = errno) or pmalloc::out_of_memory (std::bad_alloc), as in
// pmalloc.hpp. Arenas and blocks are not synchronised: share one between threads only
// with your own lock (the C functions underneath are thread-safe).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "pmalloc/pmalloc.hpp"

namespace pmalloc {

enum class ExecType : int {
  text = EXECMEM_TEXT,
  rodata = EXECMEM_RODATA,
  data = EXECMEM_DATA,
  ro_after_init = EXECMEM_RO_AFTER_INIT,
};

using ExecStats = execmem_stats;

inline ExecStats exec_stats(ExecType type) {
  ExecStats s{};
  throw_if_error(execmem_get_stats(static_cast<execmem_type>(type), &s));
  return s;
}

// Makes every RO_AFTER_INIT allocation made so far read-only for good.
inline void protect_ro_after_init() { throw_if_error(execmem_protect_ro_after_init()); }

// A move-only owner of one execmem allocation; destroying it frees the memory.
class ExecBlock {
 public:
  ExecBlock() noexcept = default;
  // Text comes back filled with traps, the other types zero-filled (see execmem.h).
  ExecBlock(ExecType type, std::size_t size)
      : p_(execmem_alloc(static_cast<execmem_type>(type), size)), size_(size), type_(type) {
    if (p_ == nullptr) {
      size_ = 0;
      throw_if_error(errno);
    }
  }
  // Takes ownership of memory execmem_alloc returned (size: the size asked for).
  static ExecBlock adopt(void* p, ExecType type, std::size_t size) noexcept { return ExecBlock(p, type, size); }

  ExecBlock(ExecBlock&& other) noexcept
      : p_(std::exchange(other.p_, nullptr)), size_(std::exchange(other.size_, 0)), type_(other.type_) {}
  ExecBlock& operator=(ExecBlock&& other) noexcept {
    if (this != &other) {
      reset();
      p_ = std::exchange(other.p_, nullptr);
      size_ = std::exchange(other.size_, 0);
      type_ = other.type_;
    }
    return *this;
  }
  ExecBlock(const ExecBlock&) = delete;
  ExecBlock& operator=(const ExecBlock&) = delete;
  ~ExecBlock() { reset(); }

  void* data() const noexcept { return p_; }
  std::size_t size() const noexcept { return size_; }
  ExecType type() const noexcept { return type_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  bool contains(const void* p) const noexcept {
    auto* b = static_cast<const std::byte*>(p_);
    auto* q = static_cast<const std::byte*>(p);
    return p_ != nullptr && q >= b && q < b + size_;
  }

  // Copies n bytes to data() + offset through execmem_update_copy (text, rodata, and
  // ro_after_init until protected; data blocks are plain memory: write them directly).
  void write(std::size_t offset, const void* src, std::size_t n) {
    if (p_ == nullptr) throw error(EINVAL, "pmalloc::ExecBlock::write: empty block");
    if (offset > size_ || n > size_ - offset) throw error(EINVAL, "pmalloc::ExecBlock::write: range past the block's end");
    throw_if_error(execmem_update_copy(static_cast<std::byte*>(p_) + offset, src, n));
  }
  void write(std::size_t offset, std::span<const std::uint8_t> bytes) { write(offset, bytes.data(), bytes.size()); }
  template <class T>
  void write_object(std::size_t offset, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>, "write_object copies bytes: T must be trivially copyable");
    write(offset, &value, sizeof(T));
  }

  // data() + offset as a pointer to a function of type Sig (text blocks only).
  template <class Sig>
  Sig* entry(std::size_t offset = 0) const {
    static_assert(std::is_function_v<Sig>, "entry<Sig>: Sig is a function type such as int(int)");
    if (p_ == nullptr || type_ != ExecType::text) throw error(EINVAL, "pmalloc::ExecBlock::entry: not a text block");
    if (offset >= size_) throw error(EINVAL, "pmalloc::ExecBlock::entry: offset past the block's end");
    return reinterpret_cast<Sig*>(static_cast<std::byte*>(p_) + offset);
  }

  // Frees the memory now (no-op for an empty block).
  void reset() noexcept {
    if (p_ != nullptr) (void)execmem_free(p_);
    p_ = nullptr;
    size_ = 0;
  }
  // Gives up ownership; the caller must execmem_free() the pointer.
  void* release() noexcept {
    size_ = 0;
    return std::exchange(p_, nullptr);
  }

 private:
  ExecBlock(void* p, ExecType type, std::size_t size) noexcept : p_(p), size_(size), type_(type) {}
  void* p_ = nullptr;
  std::size_t size_ = 0;
  ExecType type_ = ExecType::text;
};

// One function that owns its code: JitFunction<int(int, int)> f(bytes); f(2, 3);
template <class Sig>
class JitFunction;

template <class R, class... A>
class JitFunction<R(A...)> {
 public:
  using pointer = R (*)(A...);

  JitFunction() noexcept = default;
  // Copies `code` into fresh text; the function starts `entry` bytes in.
  explicit JitFunction(std::span<const std::uint8_t> code, std::size_t entry = 0)
      : block_(ExecType::text, code.size()) {
    block_.write(0, code);
    fn_ = block_.entry<R(A...)>(entry);
  }

  R operator()(A... args) const { return fn_(args...); }
  pointer get() const noexcept { return fn_; }
  const ExecBlock& block() const noexcept { return block_; }
  explicit operator bool() const noexcept { return fn_ != nullptr; }

 private:
  ExecBlock block_;
  pointer fn_ = nullptr;
};

// A set of code and data blocks with one owner: destroying (or clearing) the arena frees
// them all; remove() frees one early.
class CodeArena {
 public:
  CodeArena() = default;
  CodeArena(CodeArena&&) noexcept = default;
  CodeArena& operator=(CodeArena&&) noexcept = default;
  CodeArena(const CodeArena&) = delete;
  CodeArena& operator=(const CodeArena&) = delete;
  ~CodeArena() = default;

  // Copies machine code into fresh text and returns the function that starts `entry`
  // bytes in. The pointer is valid until the block is removed or the arena destroyed.
  template <class Sig>
  Sig* add(std::span<const std::uint8_t> code, std::size_t entry = 0) {
    static_assert(std::is_function_v<Sig>, "add<Sig>: Sig is a function type such as int(int)");
    if (code.empty()) throw error(EINVAL, "pmalloc::CodeArena::add: no code");
    if (entry >= code.size()) throw error(EINVAL, "pmalloc::CodeArena::add: entry past the end of the code");
    ExecBlock& b = keep(ExecBlock(ExecType::text, code.size()));
    try {
      b.write(0, code);
    } catch (...) {
      blocks_.pop_back();
      throw;
    }
    return b.entry<Sig>(entry);
  }
  template <class Sig>
  Sig* add(const void* code, std::size_t n, std::size_t entry = 0) {
    return add<Sig>(std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(code), n), entry);
  }

  // A block of any type holding a copy of `bytes` (rodata: constant pools, jump tables).
  void* add_bytes(ExecType type, const void* bytes, std::size_t n) {
    ExecBlock& b = keep(ExecBlock(type, n));
    try {
      if (type == ExecType::data) {
        std::memcpy(b.data(), bytes, n);
      } else {
        b.write(0, bytes, n);
      }
    } catch (...) {
      blocks_.pop_back();
      throw;
    }
    return b.data();
  }

  // A fresh block (traps for text, zeros otherwise) that the arena owns.
  void* allocate(ExecType type, std::size_t n) { return keep(ExecBlock(type, n)).data(); }

  // Rewrites bytes inside a block of this arena (execmem_update_copy).
  void update(void* dst, const void* src, std::size_t n) {
    if (find(dst) == nullptr) throw error(EINVAL, "pmalloc::CodeArena::update: not memory of this arena");
    throw_if_error(execmem_update_copy(dst, src, n));
  }

  // Frees the block that contains p (a pointer add/allocate returned, or any address in it).
  void remove(const void* p) {
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i].contains(p)) {
        blocks_[i] = std::move(blocks_.back());
        blocks_.pop_back();
        return;
      }
    }
    throw error(EINVAL, "pmalloc::CodeArena::remove: not memory of this arena");
  }
  template <class R, class... A>
  void remove(R (*fn)(A...)) {
    remove(reinterpret_cast<const void*>(fn));
  }

  // The block holding p, or nullptr.
  const ExecBlock* find(const void* p) const noexcept {
    for (const ExecBlock& b : blocks_) {
      if (b.contains(p)) return &b;
    }
    return nullptr;
  }
  bool owns(const void* p) const noexcept { return find(p) != nullptr; }
  std::size_t blocks() const noexcept { return blocks_.size(); }
  std::size_t bytes() const noexcept {
    std::size_t n = 0;
    for (const ExecBlock& b : blocks_) n += b.size();
    return n;
  }
  void clear() noexcept { blocks_.clear(); }

 private:
  ExecBlock& keep(ExecBlock&& b) {
    blocks_.push_back(std::move(b));  // if this throws, b (still owned by the caller's temporary) frees itself
    return blocks_.back();
  }
  std::vector<ExecBlock> blocks_;
};

}  // namespace pmalloc
