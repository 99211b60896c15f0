/**
 * @file pmalloc/execmem.hpp
 * @brief C++ API for executable memory: RAII code blocks and typed function pointers over
 *        pmalloc/execmem.h.
 *
 * @code
 * pmalloc::CodeArena arena;                       // owns every block it hands out
 * auto* add = arena.add<int(int, int)>(bytes);    // copy code into fresh text, get a typed pointer
 * int r = add(2, 3);
 * arena.remove(add);                              // or let the arena go out of scope
 *
 * pmalloc::JitFunction<int(int)> f(bytes);        // one function that owns its code
 * pmalloc::ExecBlock table(pmalloc::ExecType::rodata, 256);  // any type, one block
 * @endcode
 *
 * Code and read-only data are only ever written through execmem_update_copy() (write(),
 * add()); the pages are never writable and executable. Errors throw pmalloc::error
 * (std::system_error, code() = errno) or pmalloc::out_of_memory (std::bad_alloc), as in
 * pmalloc/pmalloc.hpp. Arenas and blocks are not synchronised: share one between threads
 * only with your own lock (the C functions underneath are thread-safe).
 */
#pragma once

#include "pmalloc/cxx20.hpp"

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

/// The execmem types (::execmem_type) as a scoped enumeration.
enum class ExecType : int {
  text = EXECMEM_TEXT,                    ///< code: r-x, trap-filled, written by update only
  rodata = EXECMEM_RODATA,                ///< read-only data: zero-filled, written by update only
  data = EXECMEM_DATA,                    ///< plain read-write data, never executable
  ro_after_init = EXECMEM_RO_AFTER_INIT,  ///< read-write until protect_ro_after_init(), then read-only
};

/// Figures of one execmem type (struct execmem_stats).
using ExecStats = execmem_stats;

/// The figures of one type (execmem_get_stats()).
/// @throws error (EINVAL for a value outside ExecType), out_of_memory
inline ExecStats exec_stats(ExecType type) {
  ExecStats s{};
  throw_if_error(execmem_get_stats(static_cast<execmem_type>(type), &s));
  return s;
}

/// Makes every ro_after_init allocation made so far read-only for good
/// (execmem_protect_ro_after_init()).
/// @throws error, out_of_memory: the errno of the first failed OS call (retrying is safe).
inline void protect_ro_after_init() { throw_if_error(execmem_protect_ro_after_init()); }

/**
 * @brief A move-only owner of one execmem allocation; destroying it frees the memory
 *        (execmem_free()).
 */
class ExecBlock {
 public:
  /// An empty block (owns nothing).
  ExecBlock() noexcept = default;
  /// Allocates @p size bytes of @p type (execmem_alloc()). Text comes back filled with
  /// traps, the other types zero-filled (see pmalloc/execmem.h).
  /// @throws error (EINVAL: size 0 or an unknown type), out_of_memory
  ExecBlock(ExecType type, std::size_t size)
      : p_(execmem_alloc(static_cast<execmem_type>(type), size)), size_(size), type_(type) {
    if (p_ == nullptr) {
      size_ = 0;
      throw_if_error(errno);
    }
  }
  /// Takes ownership of @p p, which execmem_alloc() returned for @p type and @p size (the
  /// size asked for).
  static ExecBlock adopt(void* p, ExecType type, std::size_t size) noexcept { return ExecBlock(p, type, size); }

  /// Takes over @p other's memory; @p other becomes empty.
  ExecBlock(ExecBlock&& other) noexcept
      : p_(std::exchange(other.p_, nullptr)), size_(std::exchange(other.size_, 0)), type_(other.type_) {}
  /// Frees this block's memory and takes over @p other's.
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
  /// Frees the memory (reset()).
  ~ExecBlock() { reset(); }

  /// The memory, or nullptr for an empty block.
  void* data() const noexcept { return p_; }
  /// The size asked for (0 for an empty block).
  std::size_t size() const noexcept { return size_; }
  /// The block's type.
  ExecType type() const noexcept { return type_; }
  /// True unless empty (default-constructed, moved from, reset or released).
  explicit operator bool() const noexcept { return p_ != nullptr; }
  /// True when @p p lies in [data(), data() + size()).
  bool contains(const void* p) const noexcept {
    auto* b = static_cast<const std::byte*>(p_);
    auto* q = static_cast<const std::byte*>(p);
    return p_ != nullptr && q >= b && q < b + size_;
  }

  /// Copies @p n bytes from @p src to data() + offset through execmem_update_copy() (text,
  /// rodata, and ro_after_init until protected; data blocks are plain memory: write them
  /// directly).
  /// @throws error (EINVAL: empty block, range past the block's end, a data block; EPERM:
  ///         ro_after_init memory already protected), out_of_memory; nothing is written then.
  void write(std::size_t offset, const void* src, std::size_t n) {
    if (p_ == nullptr) throw error(EINVAL, "pmalloc::ExecBlock::write: empty block");
    if (offset > size_ || n > size_ - offset) throw error(EINVAL, "pmalloc::ExecBlock::write: range past the block's end");
    throw_if_error(execmem_update_copy(static_cast<std::byte*>(p_) + offset, src, n));
  }
  /// Copies @p bytes to data() + offset; see write(std::size_t, const void*, std::size_t).
  void write(std::size_t offset, std::span<const std::uint8_t> bytes) { write(offset, bytes.data(), bytes.size()); }
  /// Copies the bytes of @p value (a trivially copyable T) to data() + offset; see
  /// write(std::size_t, const void*, std::size_t).
  template <class T>
  void write_object(std::size_t offset, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>, "write_object copies bytes: T must be trivially copyable");
    write(offset, &value, sizeof(T));
  }

  /// data() + offset as a pointer to a function of type Sig (a function type such as
  /// `int(int)`); text blocks only. Valid while the block owns the memory.
  /// @throws error (EINVAL: not a text block, or @p offset >= size())
  template <class Sig>
  Sig* entry(std::size_t offset = 0) const {
    static_assert(std::is_function_v<Sig>, "entry<Sig>: Sig is a function type such as int(int)");
    if (p_ == nullptr || type_ != ExecType::text) throw error(EINVAL, "pmalloc::ExecBlock::entry: not a text block");
    if (offset >= size_) throw error(EINVAL, "pmalloc::ExecBlock::entry: offset past the block's end");
    return reinterpret_cast<Sig*>(static_cast<std::byte*>(p_) + offset);
  }

  /// Frees the memory now (no-op for an empty block); the block becomes empty.
  void reset() noexcept {
    if (p_ != nullptr) (void)execmem_free(p_);
    p_ = nullptr;
    size_ = 0;
  }
  /// Gives up ownership and returns the memory; the caller must execmem_free() it.
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

/// One function that owns its code: `JitFunction<int(int, int)> f(bytes); f(2, 3);`
/// (defined for function types only, see JitFunction<R(A...)>).
template <class Sig>
class JitFunction;

/**
 * @brief One function that owns its code: a text block and a typed pointer into it.
 *
 * Move-only (through its ExecBlock); destroying it frees the code.
 */
template <class R, class... A>
class JitFunction<R(A...)> {
 public:
  using pointer = R (*)(A...);  ///< the function pointer type

  /// An empty function (calling it is undefined).
  JitFunction() noexcept = default;
  /// Copies @p code into fresh text; the function starts @p entry bytes in.
  /// @throws error (EINVAL: empty code, @p entry past its end), out_of_memory
  explicit JitFunction(std::span<const std::uint8_t> code, std::size_t entry = 0)
      : block_(ExecType::text, code.size()) {
    block_.write(0, code);
    fn_ = block_.entry<R(A...)>(entry);
  }

  /// Calls the code.
  R operator()(A... args) const { return fn_(args...); }
  /// The function pointer (nullptr when empty).
  pointer get() const noexcept { return fn_; }
  /// The text block that holds the code.
  const ExecBlock& block() const noexcept { return block_; }
  /// True unless empty.
  explicit operator bool() const noexcept { return fn_ != nullptr; }

 private:
  ExecBlock block_;
  pointer fn_ = nullptr;
};

/**
 * @brief A set of code and data blocks with one owner: destroying (or clearing) the arena
 *        frees them all; remove() frees one early.
 *
 * Every block is a separate execmem allocation (small text blocks still share packs with
 * other text). Not synchronised: share an arena between threads only with your own lock.
 */
class CodeArena {
 public:
  /// An empty arena.
  CodeArena() = default;
  /// Takes over @p other's blocks (pointers into them stay valid).
  CodeArena(CodeArena&&) noexcept = default;
  /// Frees this arena's blocks and takes over @p other's.
  CodeArena& operator=(CodeArena&&) noexcept = default;
  CodeArena(const CodeArena&) = delete;
  CodeArena& operator=(const CodeArena&) = delete;
  /// Frees every block.
  ~CodeArena() = default;

  /// Copies machine code into a fresh text block and returns the function (of type Sig,
  /// e.g. `int(int, int)`) that starts @p entry bytes in. The pointer is valid until the
  /// block is removed or the arena cleared or destroyed.
  /// @throws error (EINVAL: no code, @p entry past its end; or the writer's errno),
  ///         out_of_memory, std::bad_alloc; nothing is kept then.
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
  /// Copies @p n bytes of machine code at @p code; see add(std::span<const std::uint8_t>, std::size_t).
  template <class Sig>
  Sig* add(const void* code, std::size_t n, std::size_t entry = 0) {
    return add<Sig>(std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(code), n), entry);
  }

  /// A new block of @p type holding a copy of the @p n bytes at @p bytes (rodata: constant
  /// pools, jump tables); data blocks are filled with a plain copy, the others through
  /// execmem_update_copy().
  /// @throws error (EINVAL for n == 0), out_of_memory, std::bad_alloc; nothing is kept then.
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

  /// A fresh block of @p n bytes (traps for text, zeros otherwise) that the arena owns.
  /// @throws error (EINVAL for n == 0), out_of_memory, std::bad_alloc
  void* allocate(ExecType type, std::size_t n) { return keep(ExecBlock(type, n)).data(); }

  /// Rewrites @p n bytes at @p dst, inside a block of this arena, through
  /// execmem_update_copy() (the whole range must lie inside that block).
  /// @throws error (EINVAL: @p dst is not in this arena, or as execmem_update_copy()),
  ///         out_of_memory; nothing is written then.
  void update(void* dst, const void* src, std::size_t n) {
    if (find(dst) == nullptr) throw error(EINVAL, "pmalloc::CodeArena::update: not memory of this arena");
    throw_if_error(execmem_update_copy(dst, src, n));
  }

  /// Frees the block that contains @p p (a pointer add(), add_bytes() or allocate()
  /// returned, or any address in it). Other blocks, and pointers into them, are unaffected.
  /// @throws error (EINVAL: @p p is not in this arena)
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
  /// Frees the block that holds the function @p fn (a pointer add() returned).
  /// @throws error (EINVAL: not in this arena)
  template <class R, class... A>
  void remove(R (*fn)(A...)) {
    remove(reinterpret_cast<const void*>(fn));
  }

  /// The block holding @p p, or nullptr. The pointer is valid until the arena next
  /// changes (add, remove, clear).
  const ExecBlock* find(const void* p) const noexcept {
    for (const ExecBlock& b : blocks_) {
      if (b.contains(p)) return &b;
    }
    return nullptr;
  }
  /// True when @p p lies in one of the arena's blocks.
  bool owns(const void* p) const noexcept { return find(p) != nullptr; }
  /// The number of blocks.
  std::size_t blocks() const noexcept { return blocks_.size(); }
  /// The sum of the blocks' sizes (as asked for).
  std::size_t bytes() const noexcept {
    std::size_t n = 0;
    for (const ExecBlock& b : blocks_) n += b.size();
    return n;
  }
  /// Frees every block.
  void clear() noexcept { blocks_.clear(); }

 private:
  ExecBlock& keep(ExecBlock&& b) {
    blocks_.push_back(std::move(b));  // if this throws, b (still owned by the caller's temporary) frees itself
    return blocks_.back();
  }
  std::vector<ExecBlock> blocks_;
};

}  // namespace pmalloc
