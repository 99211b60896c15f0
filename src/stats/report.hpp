// The statistics report of every live pool: one snapshot, printed as a table or as JSON.
//
// Following STYLE.md 8 (one stats struct from one field list), the numeric columns of both
// formats come from one list of pmalloc_stats fields (report.cpp, kFields), so the table
// and the JSON document can never disagree about what is reported or how it is named: the
// JSON keys are the pmalloc_stats member names.
//
// The snapshot is taken under the lifecycle lock (pools cannot appear or vanish half way)
// and printed after the lock is released, so a slow output stream never blocks pool
// creation or destruction in other threads.
#pragma once

#include <cstdio>
#include <vector>

#include "pmalloc/pmalloc.h"
#include "pool/layout.hpp"

namespace pmalloc::internal::stats {

struct PoolReport {
  const void* handle;
  char name[kNameMax + 1];
  pmalloc_stats stats;
};

struct Report {
  std::vector<PoolReport> pools;  // in address order
  const char* wr_backend;         // the writer of every pool's protected metadata and wr_* calls
  bool seal_supported;
};

// 0 or ENOMEM.
[[nodiscard]] int collect(Report* out) noexcept;

enum class Format { table, json };

// Writes the report; 0, or EIO when the stream reports a write error.
[[nodiscard]] int write(std::FILE* out, const Report& report, Format format) noexcept;

}  // namespace pmalloc::internal::stats
