// The table of report sections, in report order. A section is a function in its own file
// (section_<id>.cpp); adding one is that file plus one line here.
#include "report.hpp"

namespace bench {

void section_targets(Context&);
void section_footprint(Context&);
void section_throughput(Context&);
void section_protect(Context&);
void section_psl(Context&);
void section_check(Context&);
void section_execmem(Context&);
void section_cache(Context&);
void section_wr(Context&);

const std::vector<Section>& sections() {
  static const std::vector<Section> table{
      {"targets", "Issue 2 targets", section_targets},
      {"footprint", "Footprint: resident bytes per allocation", section_footprint},
      {"throughput", "Allocation throughput", section_throughput},
      {"protect", "Protect cost vs amount of data", section_protect},
      {"psl", "Real workload: the Public Suffix List", section_psl},
      {"wr", "Write-rare latency per writer back end", section_wr},
      {"check", "is_pmalloc_object latency", section_check},
      {"execmem", "execmem: packing and code updates", section_execmem},
      {"cache", "Sealed object caches: cost per object", section_cache},
  };
  return table;
}

}  // namespace bench
