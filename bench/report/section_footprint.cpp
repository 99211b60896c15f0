// Section "footprint": resident bytes per allocation for object sizes 16..1024 and counts
// 1k..1M, for every scheme up to where it fails (each cell a forked child), plus the
// kernel mappings each scheme needs. Cells whose predicted memory exceeds the budget are
// not run and say so.
#include <map>

#include "cells.hpp"
#include "report.hpp"

namespace bench {

void section_footprint(Context& ctx) {
  const std::vector<std::size_t> sizes =
      ctx.quick ? std::vector<std::size_t>{16, 64, 256, 1024} : std::vector<std::size_t>{16, 32, 64, 128, 256, 512, 1024};
  const std::vector<std::size_t> counts =
      ctx.quick ? std::vector<std::size_t>{1000, 10000, 100000} : std::vector<std::size_t>{1000, 10000, 100000, 1000000};
  const double budget = ctx.quick ? 1.0 * (1u << 30) : 4.5 * (1u << 30);
  const double time_budget = ctx.quick ? 1.0 : 3.0;  // seconds per cell

  ctx.md << "Resident bytes per object (delta of resident anonymous memory, `RssAnon`, ÷ objects; page tables not included; they are listed "
            "separately below) after allocating, initialising and protecting `count` objects of `size` "
            "bytes; one forked child per cell. malloc is shown for reference: it protects nothing. A "
            "scheme that fails shows how far it got. Cells predicted to need more than "
         << human_bytes(budget) << " or more than " << fmt(time_budget, 1)
         << " s here (page faults × the fault cost measured at start, plus system calls) are not run; the "
            "figure of a scheme that works does not change with the count beyond a few thousand objects.\n\n";

  std::map<std::pair<SchemeKind, std::size_t>, Series> by_count;  // (scheme, size) -> bytes/object over count
  std::map<SchemeKind, Series> at_100k;                              // bytes/object over size
  std::map<SchemeKind, std::string> failures;
  std::map<SchemeKind, std::pair<double, long>> pte_and_maps;        // at 64 B x 10k

  for (SchemeKind k : all_schemes()) {
    std::vector<std::string> header{"size \\ count"};
    for (std::size_t c : counts) header.push_back(human_count(double(c)));
    Table t(header);
    bool failed_before = false;
    for (std::size_t size : sizes) {
      std::vector<std::string> row{std::to_string(size) + " B"};
      failed_before = false;
      for (std::size_t count : counts) {
        if (failed_before) {
          row.push_back("(fails)");
          continue;
        }
        // The per-object schemes cost the same page(s) whatever the size up to 4 KiB, and
        // each of their objects is system calls and page faults: a thinner grid for them
        // (sodium at 100k objects once, to show where it fails).
        const bool per_object = k == SchemeKind::sodium || k == SchemeKind::mmap;
        if (per_object && ((size & (size - 1)) != 0 || (size != 16 && size != 64 && size != 256 && size != 1024) ||
                           (k == SchemeKind::sodium && count > 10000 && size != 64))) {
          row.push_back("·");
          continue;
        }
        const double need = predicted_resident(k, size, count);
        if (need > budget) {
          row.push_back("not run (~" + human_bytes(need) + ")");
          continue;
        }
        const double takes = predicted_seconds(k, size, count, ctx.machine.page_fault_seconds);
        if (takes > time_budget) {
          row.push_back("not run (~" + fmt(takes, 0) + " s)");
          continue;
        }
        ctx.progress("footprint: %s %zu B x %zu", scheme_name(k), size, count);
        const auto r = footprint(k, size, count);
        if (!r.ok) {
          row.push_back("child " + r.failure);
          failed_before = true;
          continue;
        }
        const Footprint& f = r.value;
        std::string cell = fmt(f.rss_per_object, f.rss_per_object < 100 ? 1 : 0);
        if (f.error != 0) {
          cell += " †";
          failed_before = true;
          if (failures.find(k) == failures.end()) {
            failures[k] = failure_text(k, f) + " (" + std::to_string(size) + "-byte objects, " +
                          std::to_string(f.mappings) + " mappings added)";
          }
        }
        row.push_back(cell);
        by_count[{k, size}].points.emplace_back(double(f.made), f.rss_per_object);
        if (count == 100000 || (f.error != 0 && count >= 100000)) at_100k[k].points.emplace_back(double(size), f.rss_per_object);
        if (size == 64 && count == 10000) pte_and_maps[k] = {f.pte_per_object, f.mappings};
      }
      t.row(row);
    }
    ctx.md << "#### " << scheme_name(k) << "\n\n" << t.markdown();
  }

  ctx.md << "† the scheme failed in this cell; the figure is over the objects it managed. · not part of the grid "
            "for this scheme (its cost is whole pages per object at any size up to 4 KiB). ";
  if (!failures.empty()) {
    ctx.md << "Where each scheme fails (vm.max_map_count = " << ctx.machine.max_map_count << "):\n\n";
    for (const auto& [k, why] : failures) ctx.md << "- **" << scheme_name(k) << "**: " << why << "\n";
    ctx.md << "\n";
  } else {
    ctx.md << "No scheme failed within the budget.\n\n";
  }

  Table pt({"scheme", "page-table bytes / object", "kernel mappings added (10k objects of 64 B)"});
  for (const auto& [k, v] : pte_and_maps) pt.row({scheme_name(k), fmt(v.first, 2), std::to_string(v.second)});
  ctx.md << "Page tables and mappings, 10,000 objects of 64 bytes:\n\n" << pt.markdown();

  Plot p;
  p.file = "footprint-64.png";
  p.title = "Resident bytes per 64-byte object";
  p.xlabel = "objects";
  p.ylabel = "resident bytes per object";
  p.logx = p.logy = true;
  for (SchemeKind k : all_schemes()) {
    Series s = by_count[{k, 64}];
    s.label = scheme_name(k);
    p.series.push_back(s);
  }
  ctx.md << ctx.plot(p);

  Plot q;
  q.file = "footprint-by-size.png";
  q.title = "Resident bytes per object at 100,000 objects (sodium: as far as it gets)";
  q.xlabel = "object size (bytes)";
  q.ylabel = "resident bytes per object";
  q.logx = q.logy = true;
  q.extra = "set xtics (16, 32, 64, 128, 256, 512, 1024)\nset xrange [12:1400]";
  for (SchemeKind k : all_schemes()) {
    Series s = at_100k[k];
    s.label = scheme_name(k);
    q.series.push_back(s);
  }
  ctx.md << ctx.plot(q);
}

}  // namespace bench
