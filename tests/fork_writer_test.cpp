// Fork safety of the writer: /proc/self/mem opened before fork() still names the parent's
// memory, so a child that wrote through the inherited descriptor would change the parent's
// protected data (and its address registry). The OS layer reopens it in the child.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "os/os.hpp"
#include "wr/writer.hpp"

namespace {

using pmalloc::internal::wr::write;
using pmalloc::os::Access;

TEST(ForkWriter, ChildWritesLandInTheChildOnly) {
  if (!pmalloc::os::procmem_available()) GTEST_SKIP() << "no /proc/self/mem here";
  pmalloc_pool* pool = pmalloc_create_pool("fork", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  auto* v = static_cast<char*>(pmalloc(pool, 16));
  ASSERT_NE(v, nullptr);
  std::strcpy(v, "parent");
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  // The parent has used the writer (metadata updates on protect), so its descriptor is open.
  const char one = '1';
  ASSERT_EQ(write(v + 7, &one, 1, Access::read), 0);

  const pid_t child = fork();
  if (child == 0) {
    const char text[] = "child";
    const int e = write(v, text, sizeof text, Access::read);
    _exit(e == 0 && std::strcmp(v, "child") == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's write did not land in the child";
  EXPECT_STREQ(v, "parent") << "the child's write landed in the parent";
  // The parent's writer still works after the fork.
  const char text[] = "again";
  EXPECT_EQ(write(v, text, sizeof text, Access::read), 0);
  EXPECT_STREQ(v, "again");
  pmalloc_destroy_pool(pool);
}

// Pools created and destroyed in a child leave the parent's pools and registry alone.
TEST(ForkWriter, ChildPoolLifeCycleLeavesParentIntact) {
  pmalloc_pool* pool = pmalloc_create_pool("parent", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  auto* v = static_cast<int*>(pmalloc(pool, sizeof(int)));
  ASSERT_NE(v, nullptr);
  *v = 7;
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  const pid_t child = fork();
  if (child == 0) {
    pmalloc_destroy_pool(pool);
    for (int i = 0; i < 4; ++i) {
      pmalloc_pool* p = pmalloc_create_pool("child", PMALLOC_RO);
      if (p == nullptr || pmalloc(p, 64) == nullptr || pmalloc_protect_pool(p) != 0) _exit(1);
      pmalloc_destroy_pool(p);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(is_pmalloc_object(v, sizeof(int)), PMALLOC_OBJECT_OK);
  struct pmalloc_stats s {};
  EXPECT_EQ(pmalloc_pool_stats(pool, &s), 0);
  EXPECT_EQ(s.allocations_live, 1u);
  EXPECT_EQ(*v, 7);
  pmalloc_destroy_pool(pool);
}

}  // namespace
