/* README example (C): a configuration that nothing can change after start-up. */
#include <pmalloc/pmalloc.h>
#include <stdio.h>

struct config { const char *admin; int max_users; };

int main(void) {
  pmalloc_pool *pool = pmalloc_create_pool("config", PMALLOC_RO);
  struct config *cfg = pool ? pzalloc(pool, sizeof *cfg) : NULL;
  if (cfg == NULL) { fprintf(stderr, "pmalloc: %s\n", pmalloc_last_error()); return 1; }
  cfg->admin = pstrdup(pool, "alice");
  cfg->max_users = 100;
  if (pmalloc_protect_pool(pool) != 0) { fprintf(stderr, "protect: %s\n", pmalloc_last_error()); return 1; }

  const struct config *ro = cfg;  /* read-only from here on */
  printf("admin=%s max_users=%d\n", ro->admin, ro->max_users);
  /* cfg->max_users = 1000000;       would now be killed by SIGSEGV */
  pmalloc_stats_print(stdout, "table");
  pmalloc_destroy_pool(pool);
  return 0;
}
