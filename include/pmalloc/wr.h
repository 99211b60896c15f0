/* pmalloc/wr.h: (to be filled in by its issue). Included by pmalloc/pmalloc.h. */
#ifndef PMALLOC_WR_H
#define PMALLOC_WR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_WR_H */
