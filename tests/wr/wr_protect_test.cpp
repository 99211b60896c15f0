// Write-rare protection proofs: plain writes fault after protect and change nothing; a
// second thread that keeps trying plain writes to the same page while thousands of
// updates run never succeeds (every writer but mprotect); no mapping is ever writable and
// executable; the writer leaves no extra mapping behind. Registered once per writer.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <setjmp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "os/os.hpp"
#include "wr_support.hpp"

namespace {

class WrProtect : public ::testing::Test {
 protected:
  void SetUp() override {
    WR_REQUIRE_BACKEND();
    pool_ = pmalloc_create_pool("wr-protect", PMALLOC_WR);
    ASSERT_NE(pool_, nullptr);
  }
  void TearDown() override { pmalloc_destroy_pool(pool_); }
  pmalloc_pool* pool_ = nullptr;
};

// A forked child tries plain writes at 1000 random bytes of a protected write-rare pool;
// every one must fault, and the parent's bytes must be unchanged.
TEST_F(WrProtect, PlainWritesFaultAndChangeNothing) {
  const std::size_t n = 8 * pmalloc::os::page_size();
  auto* data = static_cast<unsigned char*>(pmalloc(pool_, n));
  ASSERT_NE(data, nullptr);
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<unsigned char>(i * 13);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  ASSERT_TRUE(wr_memset(data + 5, 0x11, 3));  // the writer has run at least once

  std::mt19937 rng(42);
  std::vector<std::size_t> offsets(1000);
  for (auto& o : offsets) o = rng() % n;
  const pid_t child = fork();
  if (child == 0) {
    static sigjmp_buf jump;
    struct sigaction sa {};
    sa.sa_handler = [](int) { siglongjmp(jump, 1); };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, nullptr);
    volatile int survived = 0;
    for (std::size_t o : offsets) {
      if (sigsetjmp(jump, 1) == 0) {
        static_cast<volatile unsigned char*>(data)[o] = 0xFF;
        survived = survived + 1;
      }
    }
    _exit(survived == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a plain write to a protected write-rare page succeeded";
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char want = (i >= 5 && i < 8) ? 0x11 : static_cast<unsigned char>(i * 13);
    ASSERT_EQ(data[i], want) << "byte " << i << " changed";
  }
}

// --- the racing plain writer --------------------------------------------------------

thread_local sigjmp_buf* t_jump = nullptr;

void on_segv(int sig) {
  if (t_jump != nullptr) siglongjmp(*t_jump, 1);
  signal(sig, SIG_DFL);
  raise(sig);
}

// A store the sanitizers do not instrument: it is meant to fault, and must not be
// reported as a race with the writer.
inline void plain_store(long* p, long v) {
#if defined(__x86_64__)
  asm volatile("movq %1, %0" : "=m"(*p) : "r"(v) : "memory");
#else
  *reinterpret_cast<volatile long*>(p) = v;
#endif
}

TEST_F(WrProtect, RacingPlainWriterNeverSucceeds) {
  if (wr_test::is("mprotect")) {
    GTEST_SKIP() << "the mprotect writer makes the page writable for every thread during each "
                    "update (documented); this property holds for the other writers only";
  }
  auto* fields = static_cast<long*>(pzalloc(pool_, 64 * sizeof(long)));
  ASSERT_NE(fields, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);

  struct sigaction sa {}, old {};
  sa.sa_handler = on_segv;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_NODEFER;
  ASSERT_EQ(sigaction(SIGSEGV, &sa, &old), 0);

  std::atomic<bool> stop{false};
  std::atomic<long> attempts{0}, successes{0};
  std::thread racer([&] {
    sigjmp_buf jump;
    while (!stop.load(std::memory_order_relaxed)) {
      t_jump = &jump;
      if (sigsetjmp(jump, 1) == 0) {
        plain_store(&fields[7], -666);  // same page, same and neighbouring fields
        successes.fetch_add(1);
      }
      t_jump = nullptr;
      attempts.fetch_add(1);
    }
  });
  const long kUpdates = wr_test::rounds(4000);
  for (long i = 0; i < kUpdates; ++i) {
    ASSERT_TRUE(wr_assign(fields[7], i)) << pmalloc_last_error();
    ASSERT_TRUE(wr_assign(fields[8], -i));
  }
  // Let the racer keep trying for a little while after the last update too.
  while (attempts.load() < 2000) std::this_thread::yield();
  stop = true;
  racer.join();
  sigaction(SIGSEGV, &old, nullptr);
  EXPECT_EQ(successes.load(), 0) << "a plain write succeeded during " << kUpdates << " updates";
  EXPECT_GT(attempts.load(), 0);
  EXPECT_EQ(fields[7], kUpdates - 1);
  EXPECT_EQ(fields[8], -(kUpdates - 1));
}

TEST_F(WrProtect, NoMappingIsEverWritableAndExecutable) {
  auto* fields = static_cast<long*>(pzalloc(pool_, 512 * sizeof(long)));
  ASSERT_NE(fields, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  std::atomic<bool> stop{false};
  std::vector<std::string> seen;
  std::thread sampler([&] {
    while (!stop.load()) {
      for (auto& line : wr_test::writable_executable_mappings()) seen.push_back(line);
    }
  });
  const long n = wr_test::rounds(1600);
  for (long i = 0; i < n; ++i) {
    ASSERT_TRUE(wr_assign(fields[i % 512], i));
    if (i % 50 == 0) {
      std::vector<wr_batch_op> ops;
      for (int k = 0; k < 16; ++k) ops.push_back(wr_batch_op{&fields[k * 31], &i, sizeof i});
      ASSERT_TRUE(wr_memcpy_batch(ops.data(), ops.size()));
    }
  }
  stop = true;
  sampler.join();
  for (auto& line : wr_test::writable_executable_mappings()) seen.push_back(line);
  EXPECT_TRUE(seen.empty()) << "rwx mapping: " << seen.front();
}

TEST_F(WrProtect, UpdatesLeaveNoMappingBehindAndPagesStayReadOnly) {
  auto* fields = static_cast<long*>(pzalloc(pool_, 64 * sizeof(long)));
  ASSERT_NE(fields, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool_), 0);
  ASSERT_TRUE(wr_assign(fields[0], 1L));  // any one-time set-up is done now
  // A view the writer forgot would be one more mapping of a pool's memfd (alias) or one
  // more split of a pool's mapping (mprotect); the process-wide count is checked only
  // where no sanitizer maps memory of its own meanwhile.
  const std::size_t before = wr_test::count_mappings();
  const std::size_t memfd_before = wr_test::count_mappings("memfd:pmalloc");
  for (long i = 0; i < 500; ++i) ASSERT_TRUE(wr_assign(fields[i % 64], i));
  EXPECT_EQ(wr_test::count_mappings("memfd:pmalloc"), memfd_before) << "the writer leaked an alias view";
  if (!wr_test::kSanitized) {
    EXPECT_EQ(wr_test::count_mappings(), before) << "the writer leaked mappings";
  }
  const std::string perms = wr_test::mapping_perms(fields);
  if (wr_test::is("pkey")) {
    EXPECT_EQ(perms.substr(0, 3), "rw-");  // write-disabled by the key, not the PTE
  } else {
    EXPECT_EQ(perms.substr(0, 3), "r--") << perms;
  }
  if (wr_test::is("alias")) {
    EXPECT_EQ(perms[3], 's') << "alias pools are memfd-backed";
  }
}

}  // namespace
