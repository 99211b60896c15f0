/* pmalloc/check.h: (to be filled in by its issue). Included by pmalloc/pmalloc.h. */
#ifndef PMALLOC_CHECK_H
#define PMALLOC_CHECK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_CHECK_H */
