// Smoke test: the basic life cycle works end to end.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

TEST(Smoke, CreateAllocProtectDestroy) {
  pmalloc_pool* pool = pmalloc_create_pool("smoke", PMALLOC_RO);
  ASSERT_NE(pool, nullptr);
  char* s = pstrdup(pool, "hello");
  ASSERT_NE(s, nullptr);
  EXPECT_STREQ(s, "hello");
  EXPECT_EQ(pmalloc_protect_pool(pool), 0);
  EXPECT_STREQ(s, "hello");
  pmalloc_destroy_pool(pool);
}
