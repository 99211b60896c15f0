// pmalloc_stats_print (include/pmalloc/stats.h): the C shell over src/stats/report.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.hpp"
#include "pmalloc/pmalloc.h"
#include "stats/report.hpp"

using namespace pmalloc::internal;

extern "C" void pmalloc_stats_print(FILE* out, const char* format) {
  const int saved_errno = errno;  // on success errno is left as the caller had it
  if (out == nullptr) out = stderr;
  stats::Format f = stats::Format::table;
  if (format == nullptr || std::strcmp(format, "table") == 0) {
    f = stats::Format::table;
  } else if (std::strcmp(format, "json") == 0) {
    f = stats::Format::json;
  } else {
    errno = fail(EINVAL, "pmalloc_stats_print: unknown format \"%.32s\" (use \"table\" or \"json\")", format);
    std::fprintf(stderr, "pmalloc: %s\n", last_error());
    return;
  }
  stats::Report report;
  if (int e = stats::collect(&report)) {
    errno = fail(e, "pmalloc_stats_print: out of memory collecting the statistics");
    return;
  }
  int e = stats::write(out, report, f);
  if (std::fflush(out) != 0 && e == 0) e = EIO;  // the report is complete when the call returns
  if (e != 0) {
    errno = fail(e, "pmalloc_stats_print: writing the report failed");
    return;
  }
  errno = saved_errno;
}
