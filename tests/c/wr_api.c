/* The write-rare API from C11: the wr_assign / wr_rcu_assign_pointer macros, wr_memcpy,
 * wr_memset, the batch form and the refusals. Exit status 0 on success. */
#include <errno.h>
#include <pmalloc/pmalloc.h>
#include <stdio.h>
#include <string.h>

struct policy {
  int level;
  const char *name;
  struct policy *next;
  char note[16];
};

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #cond, pmalloc_last_error()); \
      return 1;                                                       \
    }                                                                 \
  } while (0)

int main(void) {
  pmalloc_pool *pool = pmalloc_create_pool("c-wr", PMALLOC_WR);
  CHECK(pool != NULL);
  struct policy *p = pzalloc(pool, sizeof *p);
  struct policy *q = pzalloc(pool, sizeof *q);
  CHECK(p != NULL && q != NULL);
  p->level = 1;
  CHECK(pmalloc_protect_pool(pool) == 0);

  CHECK(wr_assign(p->level, 5));
  CHECK(p->level == 5);
  CHECK(wr_assign(p->name, "strict"));
  CHECK(strcmp(p->name, "strict") == 0);
  CHECK(wr_rcu_assign_pointer(p->next, q));
  CHECK(wr_rcu_dereference(p->next) == q);
  CHECK(wr_memcpy(p->note, "hello", 6));
  CHECK(strcmp(p->note, "hello") == 0);
  CHECK(wr_memset(q->note, 'a', 3));
  CHECK(q->note[2] == 'a' && q->note[3] == 0);

  int a = 7, b = 8;
  struct wr_batch_op ops[2] = {{&p->level, &a, sizeof a}, {&q->level, &b, sizeof b}};
  CHECK(wr_memcpy_batch(ops, 2));
  CHECK(p->level == 7 && q->level == 8);

  int local = 0;
  errno = 0;
  CHECK(!wr_assign(local, 3));
  CHECK(errno == EINVAL && local == 0);
  CHECK(pmalloc_make_pool_ro(pool) == 0);
  errno = 0;
  CHECK(!wr_assign(p->level, 9));
  CHECK(errno == EPERM && p->level == 7);

  const char *backend = pmalloc_wr_backend();
  CHECK(backend != NULL);
  CHECK(strcmp(backend, "pkey") == 0 || strcmp(backend, "procmem") == 0 || strcmp(backend, "alias") == 0 ||
        strcmp(backend, "mprotect") == 0);
  pmalloc_destroy_pool(pool);
  return 0;
}
