/* A C11 program using the pool API exactly as a C user would (compiled as C, not C++). */
#include <errno.h>
#include <pmalloc/pmalloc.h>
#include <stdio.h>
#include <string.h>

struct entry {
  const char *key;
  int value;
};

#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                      \
    }                                                                \
  } while (0)

int main(void) {
  pmalloc_pool *pool = pmalloc_create_pool("c11", PMALLOC_RO);
  CHECK(pool != NULL);
  struct entry *table = pcalloc(pool, 4, sizeof *table);
  CHECK(table != NULL);
  const char *keys[4] = {"one", "two", "three", "four"};
  for (int i = 0; i < 4; ++i) {
    table[i].key = pstrdup(pool, keys[i]);
    table[i].value = i + 1;
  }
  void *scratch = pmalloc(pool, 128);
  CHECK(scratch != NULL);
  CHECK(pfree(pool, scratch) == 0);
  CHECK(pfree(pool, scratch) == EINVAL);
  errno = 0;
  CHECK(pmalloc(pool, 0) == NULL && errno == EINVAL);
  CHECK(pmalloc_aligned(pool, 8, 3) == NULL && errno == EINVAL);
  CHECK(pzalloc(pool, 8) != NULL);
  CHECK(pmalloc_prealloc(pool, 4096) == 0);
  CHECK(pmalloc_protect_pool(pool) == 0);
  struct pmalloc_stats st;
  CHECK(pmalloc_pool_stats(pool, &st) == 0);
  CHECK(st.allocations_live == 6); /* table, 4 strings, the zeroed block */
  CHECK(st.bytes_protected == st.bytes_committed);
  for (int i = 0; i < 4; ++i) CHECK(strcmp(table[i].key, keys[i]) == 0 && table[i].value == i + 1);
  pmalloc_destroy_pool(pool);
  CHECK(pmalloc_create_pool("bad", 0x80u) == NULL && errno == EINVAL);
  puts("c11 program: ok");
  return 0;
}
