// pmalloc-demo: the core life cycle in one screen.
//
// Loads a small routing/permission table into a pool (one allocation per record and per
// string), rolls back a half-loaded bad record with pfree, protects the pool, prints its
// statistics, and then proves the protection: a forked child makes a stray write into
// the table and is killed by SIGSEGV, and the parent checks that no byte changed.
#include <pmalloc/pmalloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace {

struct Rule {
  const char* user;
  const char* path;
  unsigned permissions;  // 4 = read, 2 = write, 1 = execute
};

struct Table {
  Rule** rules;
  size_t count;
};

const char* const kInput[] = {
    "alice /srv/www 6", "bob /srv/www 4", "carol /var/log 4", "dave /etc/app 4",
    "erin /srv/db 6",   "frank /srv/db 4", "grace /home/grace 7", "BROKEN-RECORD",
};

// Parses "user path perms" into the pool; on a malformed line frees what it took.
Rule* load_rule(pmalloc_pool* pool, const char* line) {
  char user[32], path[64];
  unsigned perms = 0;
  auto* rule = static_cast<Rule*>(pmalloc(pool, sizeof(Rule)));
  if (rule == nullptr) return nullptr;
  if (std::sscanf(line, "%31s %63s %u", user, path, &perms) != 3 || perms > 7) {
    std::printf("  rejected malformed record \"%s\": rolling it back with pfree\n", line);
    pfree(pool, rule);
    return nullptr;
  }
  rule->user = pstrdup(pool, user);
  rule->path = pstrdup(pool, path);
  rule->permissions = perms;
  return rule;
}

void print_stats(pmalloc_pool* pool) {
  pmalloc_stats s{};
  if (pmalloc_pool_stats(pool, &s) != 0) return;
  std::printf("  %-18s %12s\n", "statistic", "value");
  std::printf("  %-18s %12zu\n", "allocations_live", s.allocations_live);
  std::printf("  %-18s %12zu\n", "bytes_live", s.bytes_live);
  std::printf("  %-18s %12zu\n", "bytes_committed", s.bytes_committed);
  std::printf("  %-18s %12zu\n", "bytes_protected", s.bytes_protected);
  std::printf("  %-18s %12zu\n", "bytes_metadata", s.bytes_metadata);
  std::printf("  %-18s %12zu\n", "bytes_reserved", s.bytes_reserved);
  std::printf("  %-18s %12zu\n", "regions", s.regions);
  std::printf("  %-18s %12s\n", "protected", s.is_protected ? "yes" : "no");
  std::printf("  %-18s %12s\n", "sealed", s.sealed ? "yes" : "no");
}

}  // namespace

int main() {
  const unsigned flags = pmalloc_seal_supported() ? PMALLOC_SEAL : PMALLOC_RO;
  pmalloc_pool* pool = pmalloc_create_pool("access-rules", flags);
  if (pool == nullptr) {
    std::fprintf(stderr, "pmalloc-demo: %s\n", pmalloc_last_error());
    return 1;
  }
  std::printf("1. loading %zu records into pool 'access-rules'\n", sizeof kInput / sizeof *kInput);
  auto* table = static_cast<Table*>(pzalloc(pool, sizeof(Table)));
  table->rules = static_cast<Rule**>(pcalloc(pool, sizeof kInput / sizeof *kInput, sizeof(Rule*)));
  for (const char* line : kInput) {
    if (Rule* r = load_rule(pool, line)) table->rules[table->count++] = r;
  }

  std::printf("2. protecting the pool%s\n", flags & PMALLOC_SEAL ? " and sealing it with mseal()" : "");
  if (int e = pmalloc_protect_pool(pool)) {
    std::fprintf(stderr, "pmalloc-demo: protect failed: %s (%s)\n", std::strerror(e), pmalloc_last_error());
    return 1;
  }
  print_stats(pool);

  std::printf("3. reading the protected table\n");
  for (size_t i = 0; i < table->count; ++i) {
    const Rule* r = table->rules[i];
    std::printf("  %-6s %-14s %c%c%c\n", r->user, r->path, r->permissions & 4 ? 'r' : '-',
                r->permissions & 2 ? 'w' : '-', r->permissions & 1 ? 'x' : '-');
  }

  std::printf("4. a stray write (an attacker's or a bug's) in a forked child\n");
  Rule* target = table->rules[1];
  const unsigned before = target->permissions;
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    target->permissions = 7;  // bob grants himself write access
    _exit(0);                 // reached only if the write went through
  }
  int status = 0;
  waitpid(child, &status, 0);
  const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
  std::printf("  child %s\n", killed ? "was killed by SIGSEGV: the write was stopped"
                                     : "was NOT stopped: protection failed");
  std::printf("  bob's permissions still %u (was %u): %s\n", target->permissions, before,
              target->permissions == before ? "unchanged" : "CHANGED");

  const bool ok = killed && target->permissions == before;
  if (flags & PMALLOC_SEAL) {
    std::printf("5. the pool is sealed: destroy releases what the kernel lets go of\n");
  }
  pmalloc_destroy_pool(pool);
  return ok ? 0 : 1;
}
