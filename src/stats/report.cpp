// Statistics report: collection under the lifecycle lock, table and JSON output (report.hpp).
#include "stats/report.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>

#include "os/os.hpp"
#include "pool/lifecycle.hpp"
#include "pool/pool.hpp"
#include "wr/writer.hpp"

namespace pmalloc::internal::stats {
namespace {

// The numeric fields of the report, in output order: JSON key (= pmalloc_stats member),
// table heading, member.
struct Field {
  const char* key;
  const char* heading;
  std::size_t pmalloc_stats::*member;
};
constexpr Field kFields[] = {
    {"bytes_live", "live", &pmalloc_stats::bytes_live},
    {"allocations_live", "allocs", &pmalloc_stats::allocations_live},
    {"bytes_committed", "committed", &pmalloc_stats::bytes_committed},
    {"bytes_protected", "protected", &pmalloc_stats::bytes_protected},
    {"bytes_free", "free", &pmalloc_stats::bytes_free},
    {"bytes_metadata", "metadata", &pmalloc_stats::bytes_metadata},
    {"bytes_reserved", "reserved", &pmalloc_stats::bytes_reserved},
    {"regions", "regions", &pmalloc_stats::regions},
    {"protect_calls", "protects", &pmalloc_stats::protect_calls},
};

struct Collection {
  Report* report;
  bool failed;
};

void add_pool(Pool* pool, void* context) noexcept {
  auto* c = static_cast<Collection*>(context);
  PoolReport r{};
  // Pools cannot vanish here (lifecycle lock); a corrupt descriptor is left out.
  if (pool_stats(pool, &r.stats) != 0) return;
  r.handle = pool;
  std::memcpy(r.name, pool->name, sizeof r.name);
  r.name[kNameMax] = '\0';
  try {
    c->report->pools.push_back(r);
  } catch (const std::bad_alloc&) {
    c->failed = true;
  }
}

const char* protection_state(const pmalloc_stats& s) noexcept {
  if (s.is_protected) return "yes";
  return s.bytes_protected != 0 ? "partly" : "no";
}

// Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not valid UTF-8.
std::size_t utf8_length(const unsigned char* s) noexcept {
  const unsigned char c = s[0];
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1fu; }
  else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0fu; }
  else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07u; }
  else return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((s[i] & 0xc0u) != 0x80u) return 0;  // also stops at the terminating NUL
    cp = (cp << 6) | (s[i] & 0x3fu);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
    return 0;
  }
  return n;
}

// A JSON string literal: quotes, escapes, and U+FFFD for bytes that are not UTF-8.
void json_string(std::FILE* out, const char* s) noexcept {
  std::fputc('"', out);
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  while (*p != 0) {
    const unsigned char c = *p;
    if (c == '"' || c == '\\') {
      std::fprintf(out, "\\%c", c);
      ++p;
    } else if (c < 0x20 || c == 0x7f) {
      std::fprintf(out, "\\u%04x", c);
      ++p;
    } else if (const std::size_t n = utf8_length(p); n != 0) {
      std::fwrite(p, 1, n, out);
      p += n;
    } else {
      std::fputs("\\ufffd", out);
      ++p;
    }
  }
  std::fputc('"', out);
}

// A pool name for the table: one cell; control characters and bytes that are not UTF-8
// become '?'.
std::string table_name(const char* name) {
  if (*name == '\0') return "(unnamed)";
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(name);
  while (*p != 0) {
    const std::size_t n = utf8_length(p);
    if (n == 0 || *p < 0x20 || *p == 0x7f) {
      out += '?';
      ++p;
    } else {
      out.append(reinterpret_cast<const char*>(p), n);
      p += n;
    }
  }
  return out;
}

pmalloc_stats totals(const Report& report) noexcept {
  pmalloc_stats t{};
  for (const PoolReport& p : report.pools) {
    for (const Field& f : kFields) t.*f.member += p.stats.*f.member;
  }
  return t;
}

void write_json(std::FILE* out, const Report& report) noexcept {
  std::fprintf(out, "{\n  \"wr_backend\": ");
  json_string(out, report.wr_backend);
  std::fprintf(out, ",\n  \"seal_supported\": %s,\n  \"pools\": [", report.seal_supported ? "true" : "false");
  char flags[64];
  for (std::size_t i = 0; i < report.pools.size(); ++i) {
    const PoolReport& p = report.pools[i];
    std::fprintf(out, "%s\n    {\"name\": ", i == 0 ? "" : ",");
    json_string(out, p.name);
    std::fprintf(out, ", \"address\": \"%p\", \"flags\": \"%s\", \"flag_bits\": %u", p.handle,
                 flags_name(p.stats.flags, flags, sizeof flags), p.stats.flags);
    for (const Field& f : kFields) std::fprintf(out, ", \"%s\": %zu", f.key, p.stats.*f.member);
    std::fprintf(out, ", \"protected\": %s, \"sealed\": %s, \"write_rare\": %s, \"wr_backend\": ",
                 p.stats.is_protected ? "true" : "false", p.stats.sealed ? "true" : "false",
                 (p.stats.flags & PMALLOC_WR) != 0 ? "true" : "false");
    json_string(out, report.wr_backend);
    std::fputc('}', out);
  }
  std::fprintf(out, "%s],\n  \"totals\": {\"pools\": %zu", report.pools.empty() ? "" : "\n  ", report.pools.size());
  const pmalloc_stats t = totals(report);
  for (const Field& f : kFields) std::fprintf(out, ", \"%s\": %zu", f.key, t.*f.member);
  std::fprintf(out, "}\n}\n");
}

void write_table(std::FILE* out, const Report& report) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head{"pool", "flags"};
  for (const Field& f : kFields) head.emplace_back(f.heading);
  for (const char* h : {"read-only", "sealed", "wr_backend"}) head.emplace_back(h);
  rows.push_back(std::move(head));
  char flags[64];
  for (const PoolReport& p : report.pools) {
    std::vector<std::string> row{table_name(p.name), flags_name(p.stats.flags, flags, sizeof flags)};
    for (const Field& f : kFields) row.push_back(std::to_string(p.stats.*f.member));
    row.emplace_back(protection_state(p.stats));
    row.emplace_back(p.stats.sealed ? "yes" : "no");
    row.emplace_back(report.wr_backend);
    rows.push_back(std::move(row));
  }
  const pmalloc_stats t = totals(report);
  std::vector<std::string> total{"(total)", ""};
  for (const Field& f : kFields) total.push_back(std::to_string(t.*f.member));
  rows.push_back(std::move(total));

  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::fprintf(out, "pmalloc: %zu live pool%s; write-rare back end (wr_backend): %s; mseal: %s\n", report.pools.size(),
               report.pools.size() == 1 ? "" : "s", report.wr_backend,
               report.seal_supported ? "supported" : "not supported");
  const std::size_t numeric_end = 2 + std::size(kFields);
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::size_t pad = width[c] - row[c].size();
      if (c != 0) line += "  ";
      const bool right = c >= 2 && c < numeric_end;  // numbers align right, text left
      if (right) line.append(pad, ' ');
      line += row[c];
      if (!right && c + 1 < row.size()) line.append(pad, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    line += '\n';
    std::fputs(line.c_str(), out);
  }
}

}  // namespace

int collect(Report* out) noexcept {
  out->pools.clear();
  out->wr_backend = wr::backend_name(wr::backend());
  out->seal_supported = os::seal_supported();
  Collection c{out, false};
  std::shared_lock life(lifecycle_lock());
  if (int e = for_each_live_pool(add_pool, &c)) return e;
  return c.failed ? ENOMEM : 0;
}

int write(std::FILE* out, const Report& report, Format format) noexcept {
  if (format == Format::json) {
    write_json(out, report);
  } else {
    try {
      write_table(out, report);
    } catch (const std::bad_alloc&) {
      return ENOMEM;
    }
  }
  return std::ferror(out) != 0 ? EIO : 0;
}

}  // namespace pmalloc::internal::stats
