// The C API from C++ older than C++20 (compiled as C++11 and C++17 by CMakeLists.txt):
// <pmalloc/pmalloc.h> promises C11 and C++, so a program that is not on C++20 must be able
// to include it and use the pool and write-rare calls, the C++ forms of wr_assign included.
// Exit status 0 on success.
#include <pmalloc/pmalloc.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

struct Config {
  int level;
  const Config* next;
};

int check(bool ok, const char* what, int line) {
  if (!ok) std::fprintf(stderr, "line %d: %s failed (%s)\n", line, what, pmalloc_last_error());
  return ok ? 0 : 1;
}
#define CHECK(cond) \
  if (check((cond), #cond, __LINE__) != 0) return 1

}  // namespace

int main() {
  pmalloc_pool* pool = pmalloc_create_pool("old-cxx", PMALLOC_WR);
  CHECK(pool != nullptr);
  Config* a = static_cast<Config*>(pzalloc(pool, sizeof(Config)));
  Config* b = static_cast<Config*>(pzalloc(pool, sizeof(Config)));
  CHECK(a != nullptr && b != nullptr);
  a->level = 1;
  CHECK(pmalloc_protect_pool(pool) == 0);
  CHECK(wr_assign(a->level, 5));  // the C++ template behind the C macro's name
  CHECK(a->level == 5);
  CHECK(wr_rcu_assign_pointer(a->next, b));
  CHECK(wr_rcu_dereference(a->next) == b);
  int local = 0;
  errno = 0;
  CHECK(!wr_assign(local, 3) && errno == EINVAL);  // not pool memory: refused
  struct pmalloc_stats st;
  std::memset(&st, 0, sizeof st);
  CHECK(pmalloc_pool_stats(pool, &st) == 0 && st.allocations_live == 2);
  pmalloc_destroy_pool(pool);
  return 0;
}
