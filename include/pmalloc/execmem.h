/* pmalloc/execmem.h: (to be filled in by its issue). Included by pmalloc/pmalloc.h. */
#ifndef PMALLOC_EXECMEM_H
#define PMALLOC_EXECMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_EXECMEM_H */
