// Section "psl": the real workload. The Public Suffix List loaded by the very code of
// examples/psl (the allocator is pluggable: psl::Arena) into a protected pmalloc pool,
// onto the malloc heap (no protection), and one object per sodium_malloc (each object
// protected with sodium_mprotect_readonly). Measured per arena in forked children: load
// time (parse + index + protect), resident memory, kernel mappings, lookup throughput.
#include <pmalloc/pmalloc.h>

#include <fstream>
#include <sstream>

#include "arena.hpp"
#include "cells.hpp"
#include "lookup.hpp"
#include "report.hpp"
#include "rules.hpp"

#ifdef PMALLOC_HAVE_SODIUM
#include <sodium.h>
#endif

namespace bench {
namespace {

constexpr const char* kList = "/usr/share/publicsuffix/public_suffix_list.dat";

#ifdef PMALLOC_HAVE_SODIUM
class SodiumArena final : public psl::Arena {
 public:
  SodiumArena() {
    if (sodium_init() < 0) std::abort();
  }
  void* allocate(std::size_t n) noexcept override {
    void* p = sodium_malloc(n);
    if (p != nullptr) objects_.push_back(p);
    return p;
  }
  void release(void* p, std::size_t) noexcept override {
    for (std::size_t i = objects_.size(); i-- > 0;) {
      if (objects_[i] == p) {
        objects_.erase(objects_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
    sodium_free(p);
  }
  int protect() noexcept override {
    for (void* p : objects_) {
      if (sodium_mprotect_readonly(p) != 0) return errno != 0 ? errno : EIO;
    }
    return 0;
  }
  const char* name() const noexcept override { return "sodium_malloc"; }

 private:
  std::vector<void*> objects_;
};
#endif

enum class ArenaKind { pmalloc, malloc, sodium };

const char* arena_name(ArenaKind k) {
  switch (k) {
    case ArenaKind::pmalloc: return "pmalloc (protected, sealed)";
    case ArenaKind::malloc: return "malloc (unprotected)";
    case ArenaKind::sodium: return "sodium_malloc per object";
  }
  return "?";
}

struct PslRun {
  double load_seconds = 0;
  double rss = 0;
  double pte = 0;
  long mappings = 0;
  std::size_t objects = 0;
  double sodium_model = 0;  // resident bytes the example's sodium cost model predicts
  double query_seconds = 0; // per full query (canonicalise + match + answer)
  double probe_seconds = 0; // per index probe (match on a canonical name)
  int error = 0;
};

ChildResult<PslRun> run_psl(ArenaKind kind, const std::string& text, const std::vector<std::string>& hosts,
                            const std::vector<psl::CanonicalName>& canonical, double min_seconds) {
  return in_child<PslRun>([&] {
    PslRun r;
    const Memory before = memory_now(true);  // the pool's own pages count too
    pmalloc_pool* pool = nullptr;
    psl::MallocArena heap;
    std::unique_ptr<psl::Arena> owned;
    psl::Arena* inner = &heap;
    if (kind == ArenaKind::pmalloc) {
      pool = pmalloc_create_pool("psl", pmalloc_seal_supported() == 1 ? PMALLOC_SEAL : PMALLOC_RO);
      owned = std::make_unique<psl::PoolArena>(pool);
      inner = owned.get();
    }
#ifdef PMALLOC_HAVE_SODIUM
    if (kind == ArenaKind::sodium) {
      owned = std::make_unique<SodiumArena>();
      inner = owned.get();
    }
#endif
    psl::CountingArena arena(*inner, page_size());
    const auto t0 = Clock::now();
    psl::LoadError err;
    const psl::List* list = psl::load_list(text, arena, &err);
    if (list == nullptr) {
      r.error = 1;
      return r;
    }
    if (int e = arena.protect(); e != 0) {
      r.error = e;
      return r;
    }
    r.load_seconds = seconds_since(t0);
    const Memory after = memory_now(true);
    r.rss = double(after.rss - before.rss);
    r.pte = double(after.pte - before.pte);
    r.mappings = after.mappings - before.mappings;
    r.objects = arena.objects();
    r.sodium_model = double(arena.sodium().resident);

    std::size_t n = 0;
    auto t1 = Clock::now();
    do {
      for (const std::string& h : hosts) keep(psl::lookup(*list, h).verdict);
      n += hosts.size();
    } while (seconds_since(t1) < min_seconds);
    r.query_seconds = seconds_since(t1) / double(n);
    n = 0;
    t1 = Clock::now();
    do {
      for (const psl::CanonicalName& c : canonical) keep(psl::match(*list, c).suffix_labels);
      n += canonical.size();
    } while (seconds_since(t1) < min_seconds);
    r.probe_seconds = seconds_since(t1) / double(n);
    return r;
  });
}

// Query set: the checked-in test hosts plus one host under every rule of the list.
std::vector<std::string> make_hosts(const std::string& text) {
  std::vector<std::string> hosts;
  std::ifstream tests(std::string(PMALLOC_SOURCE_DIR) + "/tests/psl/hosts.txt");
  for (std::string line; std::getline(tests, line);) {
    if (!line.empty() && line[0] != '#') hosts.push_back(line.substr(0, line.find(' ')));
  }
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.rfind("//", 0) == 0) continue;
    std::string rule = line.substr(0, line.find_first_of(" \t\r"));
    if (rule.empty()) continue;
    if (rule[0] == '!') rule.erase(0, 1);
    if (rule.rfind("*.", 0) == 0) rule[0] = 'x';
    hosts.push_back("www.example." + rule);
  }
  return hosts;
}

}  // namespace

void section_psl(Context& ctx) {
  std::ifstream in(kList, std::ios::binary);
  if (!in) {
    ctx.md << "Not run: " << kList << " is missing (Debian package `publicsuffix`).\n\n";
    return;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::vector<std::string> hosts = make_hosts(text);
  std::vector<psl::CanonicalName> canonical;
  for (const std::string& h : hosts) {
    psl::CanonicalName c;
    std::string why;
    if (psl::canonicalize(h, &c, &why)) canonical.push_back(c);
  }
  const int reps = ctx.quick ? 3 : 7;
  const double min_seconds = ctx.quick ? 0.1 : 0.3;

  std::vector<ArenaKind> kinds{ArenaKind::pmalloc, ArenaKind::malloc};
#ifdef PMALLOC_HAVE_SODIUM
  kinds.push_back(ArenaKind::sodium);
#endif
  struct Agg {
    std::vector<double> load, rss, pte, query, probe;
    long mappings = 0;
    std::size_t objects = 0;
    double model = 0;
    std::string failure;
  };
  std::vector<Agg> agg(kinds.size());
  for (int i = 0; i < reps; ++i) {
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      if (kinds[k] == ArenaKind::sodium && i >= 3) continue;  // seconds per run: three are enough
      ctx.progress("psl: %s, run %d/%d", arena_name(kinds[k]), i + 1, reps);
      const auto r = run_psl(kinds[k], text, hosts, canonical, min_seconds);
      if (!r.ok || r.value.error != 0) {
        agg[k].failure = r.ok ? "load failed: " + errno_name(r.value.error) : r.failure;
        continue;
      }
      agg[k].load.push_back(r.value.load_seconds);
      agg[k].rss.push_back(r.value.rss);
      agg[k].pte.push_back(r.value.pte);
      agg[k].query.push_back(r.value.query_seconds);
      agg[k].probe.push_back(r.value.probe_seconds);
      agg[k].mappings = r.value.mappings;
      agg[k].objects = r.value.objects;
      agg[k].model = r.value.sodium_model;
    }
  }
  ctx.md << "The list (" << kList << ", " << with_commas(agg[0].objects)
         << " objects: one per rule, the rule array, the hash index and the header) is loaded by the code of "
            "`examples/psl` through its pluggable allocator. Load = parse + build the index + protect. "
            "Resident = growth of resident anonymous memory (`RssAnon`) during the load, after the heap was trimmed (page tables listed separately). Lookups: "
         << with_commas(hosts.size())
         << " host names (tests/psl/hosts.txt plus one name under every rule), as full queries "
            "(canonicalise, match, build the answer) and as bare index probes on canonical names. Median of "
         << reps << " forked runs (sodium: " << (reps < 3 ? reps : 3) << ").\n\n";
  Table t({"structure in", "load", "vs malloc", "resident", "vs malloc", "page tables", "mappings added", "query",
           "vs malloc", "index probe", "vs malloc"});
  const std::size_t mi = 1;
  const double mload = median(agg[mi].load), mrss = median(agg[mi].rss), mq = median(agg[mi].query),
               mp = median(agg[mi].probe);
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const Agg& a = agg[k];
    if (a.load.empty()) {
      t.row({arena_name(kinds[k]), "failed: " + a.failure, "", "", "", "", "", "", "", "", ""});
      continue;
    }
    const double load = median(a.load), rss = median(a.rss), q = median(a.query), p = median(a.probe);
    t.row({arena_name(kinds[k]), human_time(load), ratio(load, mload), human_bytes(rss), ratio(rss, mrss),
           human_bytes(median(a.pte)), std::to_string(a.mappings), human_time(q), ratio(q, mq), human_time(p),
           ratio(p, mp)});
    if (kinds[k] == ArenaKind::pmalloc) {
      ctx.key.push_back({"PSL load (parse + index + protect + seal), pmalloc / malloc", "-", ratio(load, mload), "-"});
      ctx.key.push_back({"PSL resident memory, pmalloc / malloc", "-", ratio(rss, mrss), "-"});
      ctx.key.push_back({"PSL lookup time, pmalloc / malloc", "-", ratio(q, mq), "-"});
      if (load > mload * 1.05) {
        ctx.loss.push_back("Loading the PSL into a protected pool takes " + ratio(load, mload) +
                           " of the time on malloc (" + human_time(load) + " vs " + human_time(mload) + ").");
      }
      if (rss > mrss * 1.05) {
        ctx.loss.push_back("The PSL in a pool is " + ratio(rss, mrss) + " the resident memory of the same structure on malloc.");
      }
    }
  }
  ctx.md << t.markdown();
  if (kinds.size() > 2 && !agg[2].rss.empty()) {
    ctx.md << "pmalloc-psl prints what the same objects would take one per sodium_malloc from a layout model "
              "(a size page + the data and canary rounded up to pages per object): "
           << human_bytes(agg[0].model) << "; measured here: " << human_bytes(median(agg[2].rss)) << " ("
           << ratio(median(agg[2].rss), agg[0].model) << " of the model).\n\n";
  }
}

}  // namespace bench
