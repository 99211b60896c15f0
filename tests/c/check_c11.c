/* The object checks from C11: check.h compiles as C (bool from <stdbool.h>) and the calls
 * classify and pass ranges as documented. Exit 0 on success. */
#include <pmalloc/pmalloc.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                               \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                   \
    }                                                             \
  } while (0)

int main(void) {
  pmalloc_pool *pool = pmalloc_create_pool("c11-check", PMALLOC_RO);
  char local[8];
  char *p;
  bool to_object = true;
  CHECK(pool != NULL);
  p = pmalloc(pool, 24);
  CHECK(p != NULL);
  CHECK(is_pmalloc_object(p, 24) == PMALLOC_OBJECT_OK);
  CHECK(is_pmalloc_object(p, 25) == PMALLOC_OBJECT_BAD);
  CHECK(is_pmalloc_object(local, sizeof local) == PMALLOC_OBJECT_NONE);
  CHECK(PMALLOC_OBJECT_BAD == -1 && PMALLOC_OBJECT_NONE == 0 && PMALLOC_OBJECT_OK == 1);
  pmalloc_usercopy_check(p, 24, to_object);
  pmalloc_usercopy_check(local, sizeof local, true);
  CHECK(pmalloc_protect_pool(pool) == 0);
  pmalloc_usercopy_check(p, 24, false);
  pmalloc_destroy_pool(pool);
  CHECK(is_pmalloc_object(p, 24) == PMALLOC_OBJECT_NONE);
  return 0;
}
