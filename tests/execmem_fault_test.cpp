// execmem under failing OS calls: every primitive call an operation makes (mmap, mprotect,
// madvise, munmap, and the writer's /proc/self/mem writes) is made to fail in turn. Each
// failed operation must report an error, leave every pack consistent (check_all), leave
// live blocks intact and never leave a page writable and executable; the same operation
// must work once the fault is gone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <vector>

#include "execmem/execmem.hpp"
#include "execmem_probe.hpp"
#include "os/fault.hpp"
#include "pmalloc/pmalloc.h"

using namespace execmem_test;
namespace fault = pmalloc::os::fault;
namespace em = pmalloc::internal::execmem;

namespace {

constexpr int kMaxSteps = 60;

class ExecmemFault : public ::testing::Test {
 protected:
  void TearDown() override { fault::disarm(); }
  static void expect_consistent() {
    EXPECT_TRUE(em::check_all()) << pmalloc_last_error();
    EXPECT_TRUE(wx_mappings().empty());
  }
};

TEST_F(ExecmemFault, AllocSweep) {
  for (size_t size : {size_t{100}, size_t{5000}, size_t{600000}}) {
    for (int type = 0; type < 4; ++type) {
      bool finished = false;
      for (int n = 1; n <= kMaxSteps && !finished; ++n) {
        fault::arm(static_cast<unsigned long>(n), ENOMEM);
        void* p = execmem_alloc(static_cast<execmem_type>(type), size);
        const bool fired = fault::fired();
        fault::disarm();
        if (p == nullptr) {
          EXPECT_TRUE(fired);
          EXPECT_EQ(errno, ENOMEM);
        } else {
          if (type == EXECMEM_TEXT) {
            auto* b = static_cast<unsigned char*>(p);
            EXPECT_TRUE(std::all_of(b, b + size, [](unsigned char c) { return c == 0xCC; }));
          }
          EXPECT_EQ(execmem_free(p), 0);
          finished = !fired;
        }
        expect_consistent();
      }
      EXPECT_TRUE(finished) << "alloc of " << size << " needs more than " << kMaxSteps << " OS calls";
    }
  }
}

TEST_F(ExecmemFault, FreeSweep) {
  for (size_t size : {size_t{100}, size_t{8192}, size_t{600000}}) {
    for (int type = 0; type < 4; ++type) {
      bool finished = false;
      for (int n = 1; n <= kMaxSteps && !finished; ++n) {
        // A neighbour keeps part of the first page, the block's other pages go back.
        void* keep = execmem_alloc(static_cast<execmem_type>(type), 64);
        void* p = execmem_alloc(static_cast<execmem_type>(type), size);
        ASSERT_NE(keep, nullptr);
        ASSERT_NE(p, nullptr);
        if (type == EXECMEM_TEXT || type == EXECMEM_RODATA) {
          std::vector<unsigned char> bytes(size, 0x90);
          bytes.back() = 0xC3;
          ASSERT_EQ(execmem_update_copy(p, bytes.data(), size), 0);
        }
        fault::arm(static_cast<unsigned long>(n), EIO);
        const int e = execmem_free(p);
        const bool fired = fault::fired();
        fault::disarm();
        if (e != 0) {
          EXPECT_TRUE(fired);
          // Still live: usable and freeable.
          const unsigned char last = static_cast<unsigned char*>(p)[size - 1];
          if (type == EXECMEM_TEXT || type == EXECMEM_RODATA) {
            EXPECT_EQ(last, 0xC3);
          }
          EXPECT_EQ(execmem_free(p), 0);
        } else {
          EXPECT_EQ(execmem_free(p), EINVAL);
          finished = !fired;
        }
        EXPECT_EQ(execmem_free(keep), 0);
        expect_consistent();
      }
      EXPECT_TRUE(finished);
    }
  }
}

TEST_F(ExecmemFault, UpdateSweep) {
  auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, 64));
  ASSERT_NE(p, nullptr);
  std::vector<std::uint8_t> code = ret_const(11);
  fault::arm(1, EIO);
  EXPECT_EQ(execmem_update_copy(p, code.data(), code.size()), EIO);
  fault::disarm();
  EXPECT_EQ(p[0], 0xCC);  // nothing written
  EXPECT_EQ(execmem_update_copy(p, code.data(), code.size()), 0);
  EXPECT_EQ(as_function<int (*)()>(p)(), 11);
  EXPECT_EQ(execmem_free(p), 0);
  expect_consistent();
}

TEST_F(ExecmemFault, ProtectRoAfterInitSweep) {
  bool finished = false;
  for (int n = 1; n <= kMaxSteps && !finished; ++n) {
    auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_RO_AFTER_INIT, 5000));
    ASSERT_NE(p, nullptr);
    p[4999] = 9;
    fault::arm(static_cast<unsigned long>(n), ENOMEM);
    const int e = execmem_protect_ro_after_init();
    const bool fired = fault::fired();
    fault::disarm();
    if (e != 0) {
      EXPECT_TRUE(fired);
      // Retrying finishes the job.
      EXPECT_EQ(execmem_protect_ro_after_init(), 0);
    } else {
      finished = !fired;
    }
    EXPECT_EQ(perms_of(p), "r--p");
    EXPECT_EQ(perms_of(p + 4999), "r--p");
    EXPECT_EQ(p[4999], 9);
    EXPECT_EQ(execmem_update_copy(p, p, 1), EPERM);
    EXPECT_EQ(execmem_free(p), 0);
    expect_consistent();
  }
  EXPECT_TRUE(finished);
}

}  // namespace
