// Object checks (include/pmalloc/check.h, check.hpp): is_pmalloc_object classifies every
// kind of range, pmalloc_usercopy_check returns or aborts with one line naming the pool and
// the range, and the C++ checked copy and spans are built on it.
#include <gtest/gtest.h>
#include <pmalloc/check.hpp>
#include <pmalloc/pmalloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "registry/registry.hpp"

namespace {

namespace registry = pmalloc::internal::registry;

struct PoolDeleter {
  void operator()(pmalloc_pool* p) const { pmalloc_destroy_pool(p); }
};
using PoolPtr = std::unique_ptr<pmalloc_pool, PoolDeleter>;

PoolPtr make_pool(const char* name, unsigned flags = PMALLOC_RO) {
  PoolPtr p(pmalloc_create_pool(name, flags));
  EXPECT_NE(p, nullptr);
  return p;
}

char g_global[64];

TEST(IsPmallocObject, NonPmallocMemoryIsNone) {
  auto pool = make_pool("none");  // at least one pool exists
  char stack[32];
  std::vector<char> heap(100);
  EXPECT_EQ(is_pmalloc_object(stack, sizeof stack), PMALLOC_OBJECT_NONE);
  EXPECT_EQ(is_pmalloc_object(heap.data(), heap.size()), PMALLOC_OBJECT_NONE);
  EXPECT_EQ(is_pmalloc_object(g_global, sizeof g_global), PMALLOC_OBJECT_NONE);
  EXPECT_EQ(is_pmalloc_object(nullptr, 16), PMALLOC_OBJECT_NONE);
  EXPECT_EQ(is_pmalloc_object(nullptr, 0), PMALLOC_OBJECT_NONE);
  EXPECT_EQ(is_pmalloc_object(stack, 0), PMALLOC_OBJECT_NONE);
  EXPECT_EQ(is_pmalloc_object(reinterpret_cast<void*>(~std::uintptr_t{0} - 8), 4), PMALLOC_OBJECT_NONE);
}

TEST(IsPmallocObject, InsideOneLiveAllocationIsOk) {
  auto pool = make_pool("ok");
  auto* p = static_cast<char*>(pmalloc(pool.get(), 100));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(is_pmalloc_object(p, 100), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(p, 1), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(p + 40, 60), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(p + 99, 1), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(p, 0), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(p + 99, 0), PMALLOC_OBJECT_OK);
  ASSERT_EQ(pmalloc_protect_pool(pool.get()), 0);
  EXPECT_EQ(is_pmalloc_object(p, 100), PMALLOC_OBJECT_OK) << "protection does not change placement";
  // An allocation made after protection, in a fresh page.
  auto* q = static_cast<char*>(pmalloc(pool.get(), 24));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(is_pmalloc_object(q, 24), PMALLOC_OBJECT_OK);
}

TEST(IsPmallocObject, BadRangesAreBad) {
  auto pool = make_pool("bad");
  auto* a = static_cast<char*>(pmalloc(pool.get(), 10));  // one granule, 10 bytes requested
  auto* b = static_cast<char*>(pmalloc(pool.get(), 32));
  auto* c = static_cast<char*>(pmalloc(pool.get(), 48));
  ASSERT_TRUE(a && b && c);
  ASSERT_EQ(b, a + 16);
  EXPECT_EQ(is_pmalloc_object(a, 11), PMALLOC_OBJECT_BAD) << "past the requested size, inside the granule";
  EXPECT_EQ(is_pmalloc_object(a + 10, 0), PMALLOC_OBJECT_BAD) << "one past the end, in the granule's slack";
  EXPECT_EQ(is_pmalloc_object(a + 12, 1), PMALLOC_OBJECT_BAD);
  EXPECT_EQ(is_pmalloc_object(b + 16, 32), PMALLOC_OBJECT_BAD) << "crosses into the next allocation";
  EXPECT_EQ(is_pmalloc_object(a, 64), PMALLOC_OBJECT_BAD) << "spans several allocations";
  EXPECT_EQ(is_pmalloc_object(b + 31, SIZE_MAX), PMALLOC_OBJECT_BAD) << "wraps around";
  EXPECT_EQ(is_pmalloc_object(c + 48, 16), PMALLOC_OBJECT_BAD) << "free space after the cursor";
  ASSERT_EQ(pfree(pool.get(), b), 0);
  EXPECT_EQ(is_pmalloc_object(b, 1), PMALLOC_OBJECT_BAD) << "freed memory";
  EXPECT_EQ(is_pmalloc_object(b, 0), PMALLOC_OBJECT_BAD);
  // Metadata: the pool descriptor itself is pmalloc memory but never an object.
  EXPECT_EQ(is_pmalloc_object(pool.get(), 8), PMALLOC_OBJECT_BAD);
  // Guard page: the first page of the region's reservation.
  registry::Entry e;
  ASSERT_TRUE(registry::lookup(a, &e));
  EXPECT_EQ(is_pmalloc_object(reinterpret_cast<void*>(e.begin), 1), PMALLOC_OBJECT_BAD);
  EXPECT_EQ(is_pmalloc_object(reinterpret_cast<void*>(e.end - 1), 1), PMALLOC_OBJECT_BAD);
}

// A range that starts outside pmalloc memory but runs into a pool is BAD (a heap
// overflow heading for protected data).
TEST(IsPmallocObject, RangeRunningIntoAPoolIsBad) {
  auto pool = make_pool("into");
  ASSERT_NE(pmalloc(pool.get(), 16), nullptr);
  registry::Entry e;
  ASSERT_TRUE(registry::lookup(pool.get(), &e));
  auto* before = reinterpret_cast<char*>(e.begin) - 256;
  if (registry::find(before) != nullptr) GTEST_SKIP() << "another pool sits right below this one";
  EXPECT_EQ(is_pmalloc_object(before, 256), PMALLOC_OBJECT_NONE) << "ends right at the reservation";
  EXPECT_EQ(is_pmalloc_object(before, 257), PMALLOC_OBJECT_BAD);
  EXPECT_EQ(is_pmalloc_object(before, std::size_t{64} << 20), PMALLOC_OBJECT_BAD) << "spans the whole pool";
}

TEST(IsPmallocObject, DestroyedPoolIsNoLongerPmallocMemory) {
  pmalloc_pool* pool = pmalloc_create_pool("gone", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  void* p = pmalloc(pool, 64);
  ASSERT_NE(p, nullptr);
  pmalloc_destroy_pool(pool);
  EXPECT_EQ(is_pmalloc_object(p, 64), PMALLOC_OBJECT_NONE);
}

TEST(IsPmallocObject, SealedRemnantsOfADestroyedPoolAreNone) {
  if (!pmalloc_seal_supported()) GTEST_SKIP() << "no mseal on this kernel";
  pmalloc_pool* pool = pmalloc_create_pool("sealed-gone", PMALLOC_SEAL);
  ASSERT_NE(pool, nullptr);
  void* p = pmalloc(pool, 64);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  pmalloc_destroy_pool(pool);  // the sealed pages stay mapped, unregistered
  EXPECT_EQ(is_pmalloc_object(p, 64), PMALLOC_OBJECT_NONE);
}

TEST(IsPmallocObject, ManyPoolsEachAnswerForTheirOwn) {
  std::vector<PoolPtr> pools;
  std::vector<char*> objects;
  for (int i = 0; i < 64; ++i) {
    pools.push_back(make_pool("many"));
    objects.push_back(static_cast<char*>(pmalloc(pools.back().get(), 40)));
    ASSERT_NE(objects.back(), nullptr);
  }
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(is_pmalloc_object(objects[i], 40), PMALLOC_OBJECT_OK);
    EXPECT_EQ(is_pmalloc_object(objects[i], 41), PMALLOC_OBJECT_BAD);
  }
  for (int i = 0; i < 64; i += 2) pools[i].reset();
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(is_pmalloc_object(objects[i], 40), i % 2 == 0 ? PMALLOC_OBJECT_NONE : PMALLOC_OBJECT_OK);
  }
}

// --- pmalloc_usercopy_check

struct ChildResult {
  int signal = 0;     // terminating signal, 0 when it exited
  int exit_code = -1;
  std::string err;    // everything it wrote to stderr
};

ChildResult run_child(const std::function<void()>& body) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    body();
    _exit(0);
  }
  close(fds[1]);
  ChildResult r;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) r.err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#lx", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(p)));
  return buf;
}

TEST(UsercopyCheck, ValidAndForeignCopiesReturn) {
  char stack[16];
  // The pool is the child's own: under the alias writer an inherited one shares its pages
  // with the parent, and the child could not protect it (EPERM, docs/write-rare.md).
  const ChildResult r = run_child([&] {
    auto pool = make_pool("uc-ok");
    auto* p = static_cast<char*>(pmalloc(pool.get(), 64));
    if (p == nullptr) _exit(4);
    pmalloc_usercopy_check(p, 64, false);
    pmalloc_usercopy_check(p, 64, true);  // not protected yet
    pmalloc_usercopy_check(p + 8, 8, true);
    pmalloc_usercopy_check(stack, sizeof stack, true);
    pmalloc_usercopy_check(nullptr, 0, true);
    pmalloc_usercopy_check(pool.get(), 0, true);  // zero-length: touches nothing
    if (pmalloc_protect_pool(pool.get()) != 0) _exit(3);
    pmalloc_usercopy_check(p, 64, false);  // reading protected data is fine
  });
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "");
}

TEST(UsercopyCheck, BadRangeAbortsWithOneLineNamingPoolAndRange) {
  auto pool = make_pool("uc-bad-pool");
  auto* p = static_cast<char*>(pmalloc(pool.get(), 20));
  ASSERT_NE(p, nullptr);
  const ChildResult r = run_child([&] { pmalloc_usercopy_check(p + 4, 20, false); });
  EXPECT_EQ(r.signal, SIGABRT);
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "exactly one line: " << r.err;
  EXPECT_NE(r.err.find("'uc-bad-pool'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(hex(p + 4)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(hex(p + 24)), std::string::npos) << r.err;
}

TEST(UsercopyCheck, WriteToProtectedMemoryAborts) {
  auto pool = make_pool("uc-ro");
  auto* p = static_cast<char*>(pmalloc(pool.get(), 32));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool.get()), 0);
  const ChildResult r = run_child([&] { pmalloc_usercopy_check(p, 32, true); });
  EXPECT_EQ(r.signal, SIGABRT);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find("'uc-ro'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("write-protected"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(hex(p)), std::string::npos) << r.err;
}

TEST(UsercopyCheck, WriteRareDataIsWriteProtectedToo) {
  auto pool = make_pool("uc-wr", PMALLOC_WR);
  auto* p = static_cast<char*>(pmalloc(pool.get(), 32));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(pmalloc_protect_pool(pool.get()), 0);
  EXPECT_EQ(run_child([&] { pmalloc_usercopy_check(p, 8, true); }).signal, SIGABRT);
  EXPECT_EQ(run_child([&] { pmalloc_usercopy_check(p, 8, false); }).signal, 0);
}

TEST(UsercopyCheck, EveryBadKindAborts) {
  auto pool = make_pool("uc-kinds");
  auto* a = static_cast<char*>(pmalloc(pool.get(), 16));
  auto* b = static_cast<char*>(pmalloc(pool.get(), 16));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(pfree(pool.get(), b), 0);
  registry::Entry e;
  ASSERT_TRUE(registry::lookup(a, &e));
  const std::vector<std::pair<const void*, std::size_t>> bad = {
      {a, 17}, {a + 8, 16}, {b, 4}, {pool.get(), 8}, {reinterpret_cast<void*>(e.begin), 1}, {a, SIZE_MAX}};
  for (const auto& [p, n] : bad) {
    for (bool to_object : {false, true}) {
      const ChildResult r = run_child([&] { pmalloc_usercopy_check(p, n, to_object); });
      EXPECT_EQ(r.signal, SIGABRT) << p << " + " << n;
      EXPECT_NE(r.err.find("'uc-kinds'"), std::string::npos) << r.err;
    }
  }
}

// Sealed-cache objects and execmem allocations are pmalloc memory too.
TEST(IsPmallocObject, CacheObjectsAndExecmemAreKnown) {
  pmalloc_cache* cache = pmalloc_cache_create("check-cache", 40, 0, 0);
  ASSERT_NE(cache, nullptr);
  const void* obj = pmalloc_cache_alloc_init(
      cache, [](void* staging, const void*, void*) { return std::memset(staging, 7, 40), 0; }, nullptr);
  ASSERT_NE(obj, nullptr);
  EXPECT_EQ(is_pmalloc_object(obj, 40), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(static_cast<const char*>(obj) + 8, 32), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(obj, 41), PMALLOC_OBJECT_BAD);
  EXPECT_EQ(run_child([&] { pmalloc_usercopy_check(obj, 40, false); }).signal, 0);
  const ChildResult w = run_child([&] { pmalloc_usercopy_check(obj, 40, true); });
  EXPECT_EQ(w.signal, SIGABRT) << "cache objects are never writable";
  EXPECT_NE(w.err.find("sealed cache 'check-cache'"), std::string::npos) << w.err;

  auto* text = static_cast<char*>(execmem_alloc(EXECMEM_TEXT, 100));
  auto* data = static_cast<char*>(execmem_alloc(EXECMEM_DATA, 100));
  ASSERT_TRUE(text && data);
  EXPECT_EQ(is_pmalloc_object(text, 100), PMALLOC_OBJECT_OK);
  EXPECT_EQ(is_pmalloc_object(text + 50, 51), PMALLOC_OBJECT_BAD);
  EXPECT_EQ(is_pmalloc_object(data, 100), PMALLOC_OBJECT_OK);
  EXPECT_EQ(run_child([&] { pmalloc_usercopy_check(data, 100, true); }).signal, 0) << "plain data is writable";
  const ChildResult t = run_child([&] { pmalloc_usercopy_check(text, 16, true); });
  EXPECT_EQ(t.signal, SIGABRT) << "text is written only through execmem_update_copy";
  EXPECT_NE(t.err.find("execmem"), std::string::npos) << t.err;
  EXPECT_EQ(run_child([&] { pmalloc_usercopy_check(data + 90, 20, false); }).signal, SIGABRT);
  EXPECT_EQ(execmem_free(text), 0);
  EXPECT_EQ(execmem_free(data), 0);
  pmalloc_cache_destroy(cache);
  EXPECT_EQ(is_pmalloc_object(obj, 40), PMALLOC_OBJECT_NONE);
}

// --- C++: checked copies and spans

TEST(CheckedCopy, CopiesWhenBothSidesAreGood) {
  auto pool = make_pool("cpp-copy");
  auto* obj = static_cast<int*>(pmalloc(pool.get(), 4 * sizeof(int)));
  ASSERT_NE(obj, nullptr);
  const std::array<int, 4> in{1, 2, 3, 4};
  pmalloc::copy_from(obj, in.data(), in.size());  // into the object
  std::array<int, 4> out{};
  pmalloc::copy_from(out.data(), obj, out.size());  // out of it
  EXPECT_EQ(out, in);
  EXPECT_EQ(pmalloc::check_object(obj, 16), pmalloc::object_status::ok);
  EXPECT_EQ(pmalloc::check_object(obj, 17), pmalloc::object_status::bad);
  EXPECT_EQ(pmalloc::check_object(out.data(), 16), pmalloc::object_status::none);
  ASSERT_EQ(pmalloc_protect_pool(pool.get()), 0);
  std::array<int, 4> again{};
  pmalloc::copy_from(again.data(), obj, again.size());
  EXPECT_EQ(again, in);
  const std::span<const int> view = pmalloc::object_span(static_cast<const int*>(obj), 4);
  EXPECT_EQ(view.size(), 4u);
  EXPECT_EQ(view[3], 4);
}

TEST(CheckedCopy, RefusesOverreadsOverwritesAndProtectedTargets) {
  auto pool = make_pool("cpp-refuse");
  auto* obj = static_cast<int*>(pmalloc(pool.get(), 4 * sizeof(int)));
  ASSERT_NE(obj, nullptr);
  std::array<int, 8> buf{};
  EXPECT_EQ(run_child([&] { pmalloc::copy_from(buf.data(), obj, 5); }).signal, SIGABRT) << "over-read";
  EXPECT_EQ(run_child([&] { pmalloc::copy_from(obj, buf.data(), 5); }).signal, SIGABRT) << "overflow";
  EXPECT_EQ(run_child([&] { (void)pmalloc::object_span(static_cast<const int*>(obj), 5); }).signal, SIGABRT);
  EXPECT_EQ(run_child([&] { (void)pmalloc::writable_span(obj, 4); }).signal, 0);
  EXPECT_EQ(run_child([&] { (void)pmalloc::object_span(obj, SIZE_MAX / 2); }).signal, SIGABRT) << "size overflow";
  ASSERT_EQ(pmalloc_protect_pool(pool.get()), 0);
  const ChildResult r = run_child([&] { pmalloc::copy_from(obj, buf.data(), 1); });
  EXPECT_EQ(r.signal, SIGABRT) << "write into protected memory";
  EXPECT_NE(r.err.find("'cpp-refuse'"), std::string::npos) << r.err;
  EXPECT_EQ(run_child([&] { (void)pmalloc::writable_span(obj, 1); }).signal, SIGABRT);
}

}  // namespace
