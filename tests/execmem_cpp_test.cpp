// The C++ execmem API (pmalloc/execmem.hpp): CodeArena hands out typed function pointers
// and frees its blocks when it goes away; JitFunction owns one function; ExecBlock owns
// one block of any type. Errors become exceptions.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "execmem_probe.hpp"
#include "pmalloc/execmem.hpp"

using namespace execmem_test;

namespace {

size_t live_text() { return pmalloc::exec_stats(pmalloc::ExecType::text).allocations_live; }

TEST(ExecmemCpp, ArenaReturnsTypedFunctions) {
  const size_t before = live_text();
  {
    pmalloc::CodeArena arena;
    int (*add)(int, int) = arena.add<int(int, int)>(kAdd);
    int (*sub)(int, int) = arena.add<int(int, int)>(kSub.data(), kSub.size());
    EXPECT_EQ(add(40, 2), 42);
    EXPECT_EQ(sub(40, 2), 38);
    EXPECT_EQ(arena.blocks(), 2u);
    EXPECT_EQ(arena.bytes(), kAdd.size() + kSub.size());
    EXPECT_TRUE(arena.owns(reinterpret_cast<const void*>(add)));
    EXPECT_EQ(live_text(), before + 2);
    arena.remove(sub);
    EXPECT_EQ(arena.blocks(), 1u);
    EXPECT_EQ(live_text(), before + 1);
    EXPECT_THROW(arena.remove(sub), pmalloc::error);
    EXPECT_EQ(perms_of(reinterpret_cast<const void*>(add)), "r-xp");
  }
  EXPECT_EQ(live_text(), before);  // the arena freed the rest
}

TEST(ExecmemCpp, ArenaEntryOffsetAndPatching) {
  pmalloc::CodeArena arena;
  // Two functions in one block: ret 1 at offset 0, ret 2 at offset 6.
  std::vector<std::uint8_t> code = ret_const(1);
  std::vector<std::uint8_t> second = ret_const(2);
  code.insert(code.end(), second.begin(), second.end());
  auto* one = arena.add<int()>(code, 0);
  auto* two = reinterpret_cast<int (*)()>(reinterpret_cast<std::uintptr_t>(one) + 6);
  EXPECT_EQ(one(), 1);
  EXPECT_EQ(two(), 2);
  const std::uint32_t v = 1000;
  arena.update(reinterpret_cast<std::uint8_t*>(reinterpret_cast<std::uintptr_t>(one)) + 1, &v, sizeof v);
  EXPECT_EQ(one(), 1000);
  EXPECT_THROW(arena.add<int()>(code, code.size()), pmalloc::error);
  EXPECT_THROW(arena.add<int()>(std::vector<std::uint8_t>{}), pmalloc::error);
  int outside = 0;
  EXPECT_THROW(arena.update(&outside, &v, sizeof v), pmalloc::error);
}

TEST(ExecmemCpp, ArenaDataBlocks) {
  pmalloc::CodeArena arena;
  const int table[4] = {10, 20, 30, 40};
  auto* ro = static_cast<const int*>(arena.add_bytes(pmalloc::ExecType::rodata, table, sizeof table));
  EXPECT_EQ(ro[2], 30);
  EXPECT_EQ(perms_of(ro), "r--p");
  auto* rw = static_cast<int*>(arena.add_bytes(pmalloc::ExecType::data, table, sizeof table));
  rw[0] = 5;
  EXPECT_EQ(rw[0] + rw[3], 45);
  auto* fresh = static_cast<unsigned char*>(arena.allocate(pmalloc::ExecType::text, 10));
  EXPECT_EQ(fresh[9], 0xCC);
  EXPECT_EQ(arena.blocks(), 3u);
  arena.clear();
  EXPECT_EQ(arena.blocks(), 0u);
}

TEST(ExecmemCpp, JitFunctionOwnsItsCode) {
  const size_t before = live_text();
  {
    pmalloc::JitFunction<int(int, int)> add(kAdd);
    EXPECT_TRUE(add);
    EXPECT_EQ(add(1, 2), 3);
    pmalloc::JitFunction<int(int, int)> moved = std::move(add);
    EXPECT_EQ(moved(5, 6), 11);
    EXPECT_EQ(live_text(), before + 1);
    auto* raw = moved.get();
    EXPECT_EQ(raw(7, 8), 15);
  }
  EXPECT_EQ(live_text(), before);
}

TEST(ExecmemCpp, ExecBlockErrorsThrow) {
  EXPECT_THROW(pmalloc::ExecBlock(pmalloc::ExecType::text, 0), pmalloc::error);
  EXPECT_THROW(pmalloc::ExecBlock(pmalloc::ExecType::text, SIZE_MAX), pmalloc::out_of_memory);
  EXPECT_THROW(pmalloc::ExecBlock(pmalloc::ExecType::text, SIZE_MAX), std::bad_alloc);
  pmalloc::ExecBlock b(pmalloc::ExecType::text, 16);
  const unsigned char c = 0xC3;
  EXPECT_THROW(b.write(16, &c, 1), pmalloc::error);
  EXPECT_THROW(b.write(10, &c, 7), pmalloc::error);
  EXPECT_THROW(b.entry<int()>(16), pmalloc::error);
  b.write(0, &c, 1);
  EXPECT_NO_THROW(b.entry<void()>()());  // a bare ret
  pmalloc::ExecBlock d(pmalloc::ExecType::data, 16);
  EXPECT_THROW(d.entry<int()>(), pmalloc::error);
  try {
    d.write(0, &c, 1);  // data is not written by update
    ADD_FAILURE() << "no exception";
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
  }
  void* raw = b.release();
  EXPECT_FALSE(b);
  EXPECT_EQ(execmem_free(raw), 0);
}

TEST(ExecmemCpp, RoAfterInitBlockAndProtect) {
  pmalloc::ExecBlock b(pmalloc::ExecType::ro_after_init, 64);
  static_cast<int*>(b.data())[0] = 17;
  b.write_object(4, 18);
  pmalloc::protect_ro_after_init();
  EXPECT_EQ(perms_of(b.data()), "r--p");
  EXPECT_EQ(static_cast<int*>(b.data())[1], 18);
  try {
    b.write_object(0, 1);
    ADD_FAILURE() << "no exception";
  } catch (const pmalloc::error& e) {
    EXPECT_EQ(e.code().value(), EPERM);
  }
}

}  // namespace
