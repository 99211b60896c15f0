/* Child program for observability_test: a plain C11 user of the library whose stderr the
 * test inspects. It creates three pools, protects one, destroys one and exits normally
 * (so PMALLOC_STATS's exit report runs), leaving "obs-alpha" and "obs-beta" alive.
 * Usage: observability_child [print-table|print-json]  (prints the report to stdout). */
#include <pmalloc/pmalloc.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  pmalloc_pool *alpha = pmalloc_create_pool("obs-alpha", PMALLOC_RO);
  pmalloc_pool *beta = pmalloc_create_pool("obs-beta", PMALLOC_AUTO);
  pmalloc_pool *gamma = pmalloc_create_pool("obs-gamma", PMALLOC_RO);
  if (alpha == NULL || beta == NULL || gamma == NULL) return 2;
  if (pstrdup(alpha, "some protected text") == NULL || pmalloc(beta, 100) == NULL || pmalloc(gamma, 10) == NULL) {
    return 3;
  }
  if (pmalloc_protect_pool(alpha) != 0) return 4;
  pmalloc_destroy_pool(gamma);
  if (argc > 1 && strcmp(argv[1], "print-table") == 0) pmalloc_stats_print(stdout, "table");
  if (argc > 1 && strcmp(argv[1], "print-json") == 0) pmalloc_stats_print(stdout, "json");
  return 0; /* alpha and beta stay alive until exit */
}
