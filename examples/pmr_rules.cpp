// pmr_rules: a request-authorisation table built with std::pmr containers inside a pool,
// protected, and then serving lookups.
//
// The table is a std::pmr::unordered_map<std::pmr::string, Rule>; every Rule holds a
// std::pmr::string and a std::pmr::vector of strings. All of it - the map object, its
// bucket array and nodes, the keys, the nested strings and vectors, and the
// memory_resource the containers point to - is allocated in one pool. After loading,
// the pool is protected and the program keeps only a pmalloc::ro_ptr to the table, so
// the compiler allows lookups only. Then the program proves the protection: a forked
// child plays an attacker with a stray-write primitive and tries to flip a "deny" rule
// to "allow"; the MMU kills it with SIGSEGV and the parent checks that the rule is
// unchanged. Exit status 0 when everything behaved as described.
#include <pmalloc/memory_resource.hpp>
#include <pmalloc/pmalloc.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory_resource>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

enum class Action : std::uint8_t { deny, allow, audit };

const char* action_name(Action a) {
  switch (a) {
    case Action::deny: return "deny";
    case Action::allow: return "allow";
    case Action::audit: return "audit";
  }
  return "?";
}

// One rule. Allocator-aware (allocator_type + allocator-extended constructors), so a
// container that builds a Rule passes its memory resource down to the nested strings.
struct Rule {
  using allocator_type = std::pmr::polymorphic_allocator<>;

  Action action = Action::deny;
  std::uint32_t rate_per_minute = 0;
  std::pmr::string required_role;
  std::pmr::vector<std::pmr::string> audit_tags;

  explicit Rule(allocator_type a = {}) : required_role(a), audit_tags(a) {}
  Rule(const Rule& o, allocator_type a)
      : action(o.action), rate_per_minute(o.rate_per_minute), required_role(o.required_role, a),
        audit_tags(o.audit_tags, a) {}
  Rule(Rule&& o, allocator_type a)
      : action(o.action), rate_per_minute(o.rate_per_minute), required_role(std::move(o.required_role), a),
        audit_tags(std::move(o.audit_tags), a) {}
};

// Heterogeneous lookup: find(std::string_view) without building a key string.
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using RuleTable = std::pmr::unordered_map<std::pmr::string, Rule, KeyHash, std::equal_to<>>;

// "METHOD /path  action  rate  role  tag,tag"
constexpr std::string_view kConfig = R"(GET /api/users        allow 600 reader    -
POST /api/users       allow 60  admin     audit,pii
DELETE /api/users     audit 10  admin     audit,pii,destructive
GET /api/health       allow 6000 -        -
GET /admin/console    deny  0   root      audit
POST /admin/reload    deny  0   root      audit,destructive
GET /api/reports      allow 120 analyst   audit
PUT /api/settings     audit 30  admin     audit
)";

// Loads the configuration into a table that lives, with everything it owns, in `pool`.
RuleTable* load(pmalloc::Pool& pool) {
  auto* mr = pool.make<pmalloc::memory_resource>(pool);
  auto* table = pool.make<RuleTable>(mr);
  table->reserve(16);
  std::istringstream in{std::string(kConfig)};
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string method, path, action, role, tags;
    std::uint32_t rate = 0;
    if (!(fields >> method >> path >> action >> rate >> role >> tags)) continue;
    auto [it, inserted] = table->try_emplace(std::pmr::string(method + " " + path, mr));
    Rule& r = it->second;
    r.action = action == "allow" ? Action::allow : action == "audit" ? Action::audit : Action::deny;
    r.rate_per_minute = rate;
    if (role != "-") r.required_role = role;
    std::istringstream tag_list(tags);
    for (std::string tag; std::getline(tag_list, tag, ',');) {
      if (tag != "-") r.audit_tags.emplace_back(tag);
    }
  }
  return table;
}

void serve(const RuleTable& rules, std::string_view request) {
  const auto it = rules.find(request);
  if (it == rules.end()) {
    std::printf("  %-22s -> no rule: deny\n", std::string(request).c_str());
    return;
  }
  const Rule& r = it->second;
  std::printf("  %-22s -> %-5s role=%-7s rate=%u/min tags=%zu\n", std::string(request).c_str(), action_name(r.action),
              r.required_role.empty() ? "-" : r.required_role.c_str(), r.rate_per_minute, r.audit_tags.size());
}

// The attacker: a forked child with a stray-write primitive tries to allow the admin
// console. Returns true when the child was killed by SIGSEGV.
bool tamper_in_child(const RuleTable& rules) {
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    std::signal(SIGSEGV, SIG_DFL);
    auto& rule = const_cast<Rule&>(rules.find(std::string_view("GET /admin/console"))->second);
    *static_cast<volatile Action*>(&rule.action) = Action::allow;
    _exit(0);  // reached only if the write went through
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

}  // namespace

int main() {
  pmalloc::Pool pool("pmr-rules");
  // After this line the table is reachable only through a pointer to const.
  const pmalloc::ro_ptr<RuleTable> rules = pool.protect(load(pool));
  const pmalloc::Stats s = pool.stats();
  std::printf("loaded %zu rules: %zu allocations, %zu bytes, protected: %s\n", rules->size(), s.allocations_live,
              s.bytes_live, s.is_protected ? "yes" : "no");

  for (std::string_view request : {"GET /api/users", "DELETE /api/users", "GET /admin/console", "GET /api/health",
                                   "PATCH /api/users"}) {
    serve(*rules, request);
  }

  const bool killed = tamper_in_child(*rules);
  const Action after = rules->find(std::string_view("GET /admin/console"))->second.action;
  std::printf("stray write from a child process: %s; the rule is still '%s'\n",
              killed ? "killed by SIGSEGV" : "NOT STOPPED", action_name(after));
  return killed && after == Action::deny ? 0 : 1;
}
