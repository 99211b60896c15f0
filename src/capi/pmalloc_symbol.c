/* Defines the C symbol `pmalloc`. It lives in a C file because in C++ the name is taken
 * by the library's namespace (see the note in pmalloc.h); C++ callers reach the same
 * function as pmalloc_alloc through the pmalloc(pool, size) macro. */
#include "pmalloc/pmalloc.h"

void *pmalloc(pmalloc_pool *pool, size_t size) { return pmalloc_alloc(pool, size); }
