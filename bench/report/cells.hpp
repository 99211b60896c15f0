// Measurement cells shared by several sections. Each runs in a forked child (harness.hpp).
#pragma once

#include <cstddef>
#include <string>

#include "harness.hpp"
#include "schemes.hpp"

namespace bench {

// Footprint of `count` objects of `size` bytes, each initialised (memset) and then
// protected by the scheme's own means.
struct Footprint {
  std::size_t requested = 0;
  std::size_t made = 0;       // objects allocated (< requested when the scheme failed)
  std::size_t protected_n = 0;
  int error = 0;              // errno of the failure, 0 when none
  bool failed_in_protect = false;
  double rss_per_object = 0;  // resident bytes per object (RSS delta / made)
  double pte_per_object = 0;  // page-table bytes per object (VmPTE delta / made)
  long mappings = 0;          // kernel mappings added
  double alloc_seconds = 0;   // allocating + initialising
  double protect_seconds = 0;
};
ChildResult<Footprint> footprint(SchemeKind kind, std::size_t size, std::size_t count, unsigned pool_flags = 0);

// The resident bytes `count` objects of `size` would need under `kind` if it did not
// fail (to keep cells inside the memory budget).
double predicted_resident(SchemeKind kind, std::size_t size, std::size_t count);

// How long a footprint cell would take here, from the measured cost of a page fault
// (page faults dominate on virtual machines, where they cost tens of microseconds).
double predicted_seconds(SchemeKind kind, std::size_t size, std::size_t count, double fault_seconds);

// "fails at 16,374 objects: sodium_malloc -> ENOMEM" style text for a failed cell.
std::string failure_text(SchemeKind kind, const Footprint& f);

// Seconds to allocate `count` objects of `size` bytes (pool creation excluded), with
// `init`: also memset each object; with `protect`: and protect at the end.
struct AllocTime {
  double seconds = 0;
  std::size_t made = 0;
};
ChildResult<AllocTime> alloc_time(SchemeKind kind, std::size_t size, std::size_t count, bool init, bool protect);

// Warm allocation: `count` objects are allocated, rolled back (pfree / free in reverse,
// malloc trimming off) and allocated again; only the second pass is timed, so no page
// faults, only the allocator's own work.
ChildResult<double> warm_alloc(bool use_pmalloc, std::size_t size, std::size_t count);

std::string with_commas(std::size_t n);

}  // namespace bench
