/**
 * @file pmalloc/stats.h
 * @brief Statistics of every live pool, as a table or as JSON (included by pmalloc/pmalloc.h).
 *
 * For one pool, pmalloc_pool_stats() fills a struct pmalloc_stats. pmalloc_stats_print()
 * reports all pools of the process at once, in the spirit of mimalloc's
 * `mi_stats_print` and jemalloc's `malloc_stats_print`.
 *
 * Environment variables read by the library:
 * - `PMALLOC_STATS=1` (or `table`) prints the table to stderr when the process exits
 *   normally (through exit() or a return from main()); `PMALLOC_STATS=json` prints the
 *   JSON document instead. Unset, empty or `0`: nothing is printed.
 * - `PMALLOC_VERBOSE=1` logs each pool's creation, protection and destruction to stderr,
 *   one line per event, each starting with `pmalloc: `.
 *
 * Both are read when they act (at exit, at each event), so setenv() while the program
 * runs works as well as setting them at start.
 */
#ifndef PMALLOC_STATS_H
#define PMALLOC_STATS_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Prints the statistics of every live pool.
 *
 * One row (table) or one object (JSON) per live pool, in address order, with: name,
 * flags, live bytes and allocations, committed, protected, free, metadata and reserved
 * bytes, regions, protect calls, whether the pool is protected (`yes`/`partly`/`no`) and
 * sealed, and the write-rare back end (the writer that performs wr_* updates and the
 * metadata updates of protected pools; chosen once per process). A totals row follows.
 *
 * The JSON document is one object with the keys `wr_backend` (string),
 * `seal_supported` (bool), `pools` (an array with one object per pool) and `totals`
 * (`pools`, the number of pools, and the sums of the numeric fields). A pool object has
 * `name`, `address` (the handle, as a string), `flags` (e.g. `"RO|SEAL"`), `flag_bits`,
 * `bytes_live`, `allocations_live`, `bytes_committed`, `bytes_protected`, `bytes_free`,
 * `bytes_metadata`, `bytes_reserved`, `regions`, `protect_calls`, `protected` (bool),
 * `sealed` (bool), `write_rare` (bool) and `wr_backend`. Numeric keys are the member
 * names of struct pmalloc_stats. Pool names are escaped; bytes that are not UTF-8 become
 * U+FFFD.
 *
 * The snapshot is consistent per pool; pools created or destroyed by other threads while
 * the call runs are either fully in it or not at all. Safe to call from any thread.
 *
 * @param out    the stream to print to (flushed before the call returns); NULL means stderr.
 * @param format `"table"` (also for NULL) or `"json"`.
 *
 * Errors (the function returns nothing; errno is left unchanged on success, so clear it
 * first to check): an unknown @p format prints nothing to @p out, sets errno to EINVAL,
 * records the reason for pmalloc_last_error() and prints that reason to stderr; ENOMEM
 * when the snapshot cannot be allocated; EIO when the stream reports a write error.
 */
void pmalloc_stats_print(FILE *out, const char *format);

#ifdef __cplusplus
}
#endif

#endif /* PMALLOC_STATS_H */
