// pmalloc-psl: the Public Suffix List in a protected, sealed pmalloc pool.
//
// The real-data demonstration of pmalloc (issue 7): loads the rule set that browsers and
// curl use to scope cookies and certificates (/usr/share/publicsuffix/public_suffix_list.dat,
// Debian package `publicsuffix`) into a write-once pool, with its lookup index built in
// the same pool; protects and (where the kernel can) seals the pool; and answers
// "registrable domain" queries for host names given as arguments or on stdin.
//
// A malformed file is rejected with the line and the reason; everything allocated for it
// is released with pfree and the pool statistics printed to show it. --prove shows in
// forked children that the loaded rules cannot be written and that a sealed pool cannot
// be mprotect()ed back. See README.md in this directory for the decisions on IDNs,
// leading/trailing dots and hosts that are public suffixes themselves.
#include <pmalloc/pmalloc.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "arena.hpp"
#include "lookup.hpp"
#include "prove.hpp"
#include "rules.hpp"

namespace {

constexpr const char* kDefaultList = "/usr/share/publicsuffix/public_suffix_list.dat";

struct Options {
  std::string list = kDefaultList;
  std::string check;
  bool prove = false;
  bool quiet = false;
  bool explain = false;
  bool seal = true;
  bool read_stdin = false;
  std::vector<std::string> hosts;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: pmalloc-psl [options] [host ...]\n"
               "Loads the Public Suffix List into a protected (and, where supported, sealed) pmalloc\n"
               "pool and prints the registrable domain of each host name: given as arguments, or one\n"
               "per line on stdin when there are none (or when '-' is given).\n"
               "  --list FILE    rules to load (default %s)\n"
               "  --check FILE   compare with FILE's lines 'host expected'; exit 1 on any mismatch\n"
               "  --prove        show in forked children that the rules are write-protected and sealed\n"
               "  --explain      also print the rule that decided each answer\n"
               "  --no-seal      protect without mseal()\n"
               "  -q, --quiet    print the answers only (no load report, no statistics)\n"
               "  -h, --help     this text\n"
               "Output: 'host registrable-domain', or 'host [public-suffix]' when the host is itself a\n"
               "public suffix, 'host [ip-address]', 'host [invalid] reason'.\n",
               kDefaultList);
}

// Returns 0 and fills `o`, or an exit status (2 = usage error, 0 = --help).
int parse(int argc, char** argv, Options* o, bool* done) {
  *done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pmalloc-psl: %s needs a value\n", what);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--list" || a == "--check") {
      const char* v = value(a.c_str());
      if (v == nullptr) return 2;
      (a == "--list" ? o->list : o->check) = v;
    } else if (a.rfind("--list=", 0) == 0) {
      o->list = a.substr(7);
    } else if (a.rfind("--check=", 0) == 0) {
      o->check = a.substr(8);
    } else if (a == "--prove") {
      o->prove = true;
    } else if (a == "--explain") {
      o->explain = true;
    } else if (a == "--no-seal") {
      o->seal = false;
    } else if (a == "-q" || a == "--quiet") {
      o->quiet = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      *done = true;
      return 0;
    } else if (a == "-") {
      o->read_stdin = true;
    } else if (a == "--") {
      for (++i; i < argc; ++i) o->hosts.emplace_back(argv[i]);
    } else if (a.size() > 1 && a[0] == '-' && a[1] == '-') {
      std::fprintf(stderr, "pmalloc-psl: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    } else {
      o->hosts.push_back(a);
    }
  }
  if (o->hosts.empty() && o->check.empty() && !o->prove) o->read_stdin = true;
  return 0;
}

bool read_file(const std::string& path, std::string* out, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = std::strerror(errno);
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) {
    *why = "read error";
    return false;
  }
  *out = std::move(s).str();
  return true;
}

std::size_t count_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

long max_map_count() {
  std::ifstream f("/proc/sys/vm/max_map_count");
  long v = 0;
  return (f >> v) ? v : 0;
}

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

void print_stats(const pmalloc_stats& s) {
  std::printf("  pool statistics\n");
  std::printf("    %-18s %12zu\n", "allocations_live", s.allocations_live);
  std::printf("    %-18s %12zu\n", "bytes_live", s.bytes_live);
  std::printf("    %-18s %12zu\n", "bytes_committed", s.bytes_committed);
  std::printf("    %-18s %12zu\n", "bytes_metadata", s.bytes_metadata);
  std::printf("    %-18s %12zu\n", "bytes_free", s.bytes_free);
  std::printf("    %-18s %12zu\n", "bytes_protected", s.bytes_protected);
  std::printf("    %-18s %12zu\n", "bytes_reserved", s.bytes_reserved);
  std::printf("    %-18s %12zu\n", "regions", s.regions);
  std::printf("    %-18s %12s\n", "protected", s.is_protected ? "yes" : "no");
  std::printf("    %-18s %12s\n", "sealed", s.sealed ? "yes" : "no");
}

void print_comparison(const pmalloc_stats& s, const psl::CountingArena& arena, std::size_t mappings_added) {
  const psl::SodiumCost& so = arena.sodium();
  const std::size_t pool_bytes = s.bytes_committed + s.bytes_metadata;
  std::printf("  memory for the same %zu objects (%s of data)\n", arena.objects(), human(double(arena.bytes())).c_str());
  std::printf("    %-30s %12s %14s %16s\n", "", "memory", "address space", "kernel mappings");
  std::printf("    %-30s %12s %14s %16zu\n", "one pmalloc pool (this run)", human(double(pool_bytes)).c_str(),
              human(double(s.bytes_reserved)).c_str(), mappings_added);
  std::printf("    %-30s %12s %14s %16zu\n", "one sodium_malloc per object", human(double(so.resident)).c_str(),
              human(double(so.address_space)).c_str(), so.mappings);
  std::printf("    sodium_malloc needs %.0fx the memory", pool_bytes ? double(so.resident) / double(pool_bytes) : 0.0);
  const long limit = max_map_count();
  if (limit > 0 && so.mappings > static_cast<std::size_t>(limit)) {
    std::printf(" and would fail: %zu mappings exceed vm.max_map_count = %ld", so.mappings, limit);
  } else if (limit > 0) {
    std::printf(" and %.0f%% of vm.max_map_count (%ld)", 100.0 * double(so.mappings) / double(limit), limit);
  }
  std::printf(".\n    (pool memory = committed data pages + metadata pages; sodium figures are computed from\n"
              "     libsodium's layout: a read-only size page, a guard page, data + 16-byte canary rounded\n"
              "     up to pages, a guard page; the guards take address space only; bench/report measures it.)\n");
}

// The host as typed, with control bytes escaped: a query must not be able to write
// terminal escape sequences or fake extra output lines.
std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

void print_answer(const std::string& raw_host, const psl::Answer& a, bool explain) {
  const std::string host = printable(raw_host);
  if (a.verdict == psl::Verdict::registrable) {
    std::printf("%s %s", host.c_str(), a.domain.c_str());
  } else {
    std::printf("%s %s", host.c_str(), psl::verdict_marker(a.verdict));
    if (a.verdict == psl::Verdict::invalid) std::printf(" %s", printable(a.reason).c_str());
  }
  if (explain && (a.verdict == psl::Verdict::registrable || a.verdict == psl::Verdict::public_suffix)) {
    if (a.rule != nullptr) {
      std::printf("  (public suffix %s, rule '%s' on line %u)", a.public_suffix.c_str(), a.rule->text().c_str(),
                  a.rule->line);
    } else {
      std::printf("  (public suffix %s, default rule '*')", a.public_suffix.c_str());
    }
  }
  std::printf("\n");
}

std::string trim(const std::string& s) {
  const std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const std::size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// --check: lines "host expected"; '#' starts a comment line.
int run_check(const psl::List& list, const std::string& path) {
  std::string text, why;
  if (!read_file(path, &text, &why)) {
    std::fprintf(stderr, "pmalloc-psl: cannot read %s: %s\n", path.c_str(), why.c_str());
    return 1;
  }
  std::istringstream in(text);
  std::size_t line_no = 0, checked = 0, wrong = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::istringstream words(t);
    std::string host, expected, extra;
    words >> host >> expected;
    if (expected.empty() || (words >> extra)) {
      std::fprintf(stderr, "%s:%zu: expected two words 'host expected', got \"%s\"\n", path.c_str(), line_no, t.c_str());
      return 1;
    }
    const psl::Answer a = psl::lookup(list, host);
    const std::string got = a.verdict == psl::Verdict::registrable ? a.domain : psl::verdict_marker(a.verdict);
    ++checked;
    if (got != expected) {
      ++wrong;
      std::printf("%s:%zu: %s: expected %s, got %s%s%s\n", path.c_str(), line_no, printable(host).c_str(),
                  printable(expected).c_str(), got.c_str(), a.reason.empty() ? "" : " ", printable(a.reason).c_str());
    }
  }
  std::printf("check %s: %zu of %zu host names agree\n", path.c_str(), checked - wrong, checked);
  return wrong == 0 && checked > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  bool done = false;
  if (int e = parse(argc, argv, &opt, &done); e != 0 || done) return e;

  std::string text, why;
  if (!read_file(opt.list, &text, &why)) {
    std::fprintf(stderr, "pmalloc-psl: cannot read %s: %s%s\n", opt.list.c_str(), why.c_str(),
                 opt.list == kDefaultList ? " (install the Debian package 'publicsuffix')" : "");
    return 1;
  }

  const bool seal = opt.seal && pmalloc_seal_supported() == 1;
  const std::size_t maps_before = count_mappings();
  pmalloc_pool* pool = pmalloc_create_pool("public-suffix-list", seal ? PMALLOC_SEAL : PMALLOC_RO);
  if (pool == nullptr) {
    std::fprintf(stderr, "pmalloc-psl: cannot create the pool: %s\n", pmalloc_last_error());
    return 1;
  }
  psl::PoolArena pool_arena(pool);
  psl::CountingArena arena(pool_arena, static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));

  const auto t0 = std::chrono::steady_clock::now();
  psl::LoadError error;
  const psl::List* list = psl::load_list(text, arena, &error);
  if (list == nullptr) {
    if (error.line != 0) {
      std::fprintf(stderr, "pmalloc-psl: %s:%zu: %s\n", opt.list.c_str(), error.line, printable(error.reason).c_str());
    } else {
      std::fprintf(stderr, "pmalloc-psl: %s: %s\n", opt.list.c_str(), printable(error.reason).c_str());
    }
    pmalloc_stats s{};
    (void)pmalloc_pool_stats(pool, &s);
    std::printf("pmalloc-psl: rejected %s; every allocation made for it was rolled back with pfree:\n"
                "  the pool holds %zu allocations and %zu live bytes again\n",
                opt.list.c_str(), s.allocations_live, s.bytes_live);
    if (!opt.quiet) print_stats(s);
    pmalloc_destroy_pool(pool);
    return 1;
  }
  if (int e = arena.protect(); e != 0) {
    std::fprintf(stderr, "pmalloc-psl: cannot protect the pool: %s\n", pmalloc_last_error());
    pmalloc_destroy_pool(pool);
    return 1;
  }
  const auto t1 = std::chrono::steady_clock::now();
  pmalloc_stats stats{};
  (void)pmalloc_pool_stats(pool, &stats);
  const std::size_t maps_after = count_mappings();

  if (!opt.quiet) {
    const psl::ListCounts& c = list->counts;
    std::printf("pmalloc-psl: loaded %zu rules from %s (%zu lines) in %.1f ms\n", c.rules, opt.list.c_str(), c.lines,
                std::chrono::duration<double, std::milli>(t1 - t0).count());
    std::printf("  %zu normal, %zu wildcard, %zu exception; %zu ICANN, %zu private; %zu internationalised",
                c.normal, c.wildcard, c.exception, c.icann, c.private_domains, c.idn);
    if (c.duplicates) std::printf("; %zu duplicates ignored", c.duplicates);
    std::printf("\n  pool '%s': %s\n", pmalloc_pool_name(pool),
                stats.sealed ? "protected and sealed (mseal)"
                             : (opt.seal ? "protected (this kernel cannot seal)" : "protected (not sealed: --no-seal)"));
    print_stats(stats);
    print_comparison(stats, arena, maps_after > maps_before ? maps_after - maps_before : 0);
  }

  int status = 0;
  if (opt.prove) {
    std::fflush(stdout);
    if (psl::prove(*list, stats.sealed != 0, stdout) != 0) status = 1;
  }
  if (!opt.check.empty() && run_check(*list, opt.check) != 0) status = 1;
  for (const std::string& h : opt.hosts) print_answer(h, psl::lookup(*list, h), opt.explain);
  if (opt.read_stdin) {
    for (std::string line; std::getline(std::cin, line);) {
      const std::string h = trim(line);
      if (h.empty() || h[0] == '#') continue;
      print_answer(h, psl::lookup(*list, h), opt.explain);
    }
  }
  std::fflush(stdout);
  pmalloc_destroy_pool(pool);
  return status;
}
