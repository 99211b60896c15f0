/* Sealed object caches from C11: cache.h compiles as C and the calls behave as documented
 * (create, init with a self pointer, init failure, batch with sibling pointers, frees,
 * statistics, destroy). Exit 0 on success. */
#include <errno.h>
#include <pmalloc/pmalloc.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
              pmalloc_last_error());                                       \
      return 1;                                                            \
    }                                                                      \
  } while (0)

struct rule {
  const struct rule *self;
  const struct rule *next;
  int id;
  char name[20];
};

static int init_rule(void *staging, const void *final_address, void *ctx) {
  struct rule *r = staging;
  const int *id = ctx;
  if (*id < 0) return -1;
  r->self = final_address;
  r->id = *id;
  snprintf(r->name, sizeof r->name, "rule-%d", *id);
  return 0;
}

static int init_ring(void *staging, const void *final_address, size_t index, void *ctx) {
  const void **all = ctx;
  struct rule *r = staging;
  r->self = final_address;
  r->next = all[(index + 1) % 8];
  r->id = (int)index;
  return 0;
}

int main(void) {
  pmalloc_cache *c = pmalloc_cache_create("c11-rules", sizeof(struct rule), 0, PMALLOC_SEAL);
  const struct rule *r;
  const void *ring[8];
  struct pmalloc_stats s;
  int id = 7;
  int bad = -1;
  size_t i;
  CHECK(c != NULL);
  CHECK(strcmp(pmalloc_cache_name(c), "c11-rules") == 0);
  CHECK(pmalloc_cache_object_size(c) == sizeof(struct rule));

  r = pmalloc_cache_alloc_init(c, init_rule, &id);
  CHECK(r != NULL && r->self == r && r->id == 7 && strcmp(r->name, "rule-7") == 0);

  errno = 0;
  CHECK(pmalloc_cache_alloc_init(c, init_rule, &bad) == NULL && errno == ECANCELED);

  CHECK(pmalloc_cache_alloc_init_many(c, 8, ring, init_ring, ring) == 0);
  for (i = 0; i < 8; ++i) {
    const struct rule *n = ring[i];
    CHECK(n->self == n && n->next == ring[(i + 1) % 8] && n->id == (int)i);
  }

  CHECK(pmalloc_cache_stats(c, &s) == 0);
  CHECK(s.allocations_live == 9 && s.bytes_live == 9 * sizeof(struct rule) && s.is_protected == 1);

  CHECK(pmalloc_cache_free(c, r) == 0);
  CHECK(pmalloc_cache_free(c, r) == EINVAL && errno == EINVAL);
  CHECK(pmalloc_cache_free_many(c, ring, 8) == 0);
  CHECK(pmalloc_cache_stats(c, &s) == 0 && s.allocations_live == 0);

  CHECK(pmalloc_cache_create("bad", 16, 0, PMALLOC_WR) == NULL && errno == EINVAL);
  pmalloc_cache_destroy(c);
  pmalloc_cache_destroy(NULL);
  puts("cache_api: ok");
  return 0;
}
