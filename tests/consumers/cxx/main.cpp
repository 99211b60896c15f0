// External consumer (C++): every public C++ header, a std::pmr table and an allocator
// vector built in a pool, protected, read back; a write in a forked child must fault.
#include <pmalloc/allocator.hpp>
#include <pmalloc/memory_resource.hpp>
#include <pmalloc/pmalloc.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

int main() {
  pmalloc::Pool pool("consumer-cxx");
  auto* mr = pool.make<pmalloc::memory_resource>(pool);
  using Table = std::pmr::unordered_map<std::pmr::string, int>;
  auto* table = pool.make<Table>(mr);
  (*table)[std::pmr::string("a key longer than the small string buffer", mr)] = 42;
  using Ids = std::vector<int, pmalloc::allocator<int>>;
  auto* ids = pool.make<Ids>(pool);
  ids->assign({1, 2, 3});
  auto [ro_table, ro_ids] = pool.protect(table, ids);
  if (ro_table->at(std::pmr::string("a key longer than the small string buffer")) != 42 || (*ro_ids)[2] != 3) {
    std::puts("consumer-cxx: wrong data");
    return 1;
  }
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);
    const_cast<Ids&>(*ro_ids)[0] = 7;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV || (*ro_ids)[0] != 1) {
    std::puts("consumer-cxx: the write was not stopped");
    return 1;
  }
  pmalloc_stats_print(stdout, "table");
  std::puts("consumer-cxx: ok");
  return 0;
}
