// execmem under load: threads allocate, write, patch, call and free thousands of code
// blocks (and some rodata) while another thread samples /proc/self/maps the whole time
// and records any mapping of the process that is writable and executable. The same run is
// repeated in a child process with the mprotect writer forced (RX -> RW -> RX windows).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "execmem/execmem.hpp"
#include "execmem_probe.hpp"
#include "pmalloc/pmalloc.h"

using namespace execmem_test;

namespace {

class MapsSampler {
 public:
  MapsSampler() : thread_([this] { run(); }) {}
  ~MapsSampler() { stop(); }
  void stop() {
    done_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  long samples() const { return samples_.load(); }
  std::vector<std::string> violations() {
    std::lock_guard<std::mutex> g(lock_);
    return violations_;
  }

 private:
  void run() {
    // Sample at least a few times even if the workers finish quickly.
    while (!done_.load() || samples_.load() < 3) {
      for (const std::string& line : wx_mappings()) {
        std::lock_guard<std::mutex> g(lock_);
        if (violations_.size() < 10) violations_.push_back(line);
      }
      samples_.fetch_add(1);
    }
  }
  std::atomic<bool> done_{false};
  std::atomic<long> samples_{0};
  std::mutex lock_;
  std::vector<std::string> violations_;
  std::thread thread_;
};

struct Live {
  unsigned char* fn;
  std::uint32_t value;
  size_t size;
};

// One worker: `rounds` iterations of allocate / write / call / patch / free, keeping up
// to 64 blocks alive so that pages are shared, freed, returned and reused.
void worker(unsigned seed, int rounds, std::atomic<long>* failures) {
  std::mt19937 rng(seed);
  std::vector<Live> live;
  auto check = [&](bool ok) {
    if (!ok) failures->fetch_add(1);
  };
  for (int i = 0; i < rounds; ++i) {
    const size_t size = 8 + rng() % 600;
    auto* p = static_cast<unsigned char*>(execmem_alloc(EXECMEM_TEXT, size));
    if (p == nullptr) {
      failures->fetch_add(1);
      continue;
    }
    check(p[0] == 0xCC && p[size - 1] == 0xCC);
    const std::uint32_t value = static_cast<std::uint32_t>(rng());
    std::vector<std::uint8_t> code = padded_const(value, size < 6 ? 6 : size);
    if (size < 6) {
      check(execmem_free(p) == 0);
      continue;
    }
    check(execmem_update_copy(p, code.data(), code.size()) == 0);
    check(as_function<int (*)()>(p)() == static_cast<int>(value));
    live.push_back({p, value, size});
    if (rng() % 4 == 0) {
      // Patch the immediate of a random live block and call it.
      Live& l = live[rng() % live.size()];
      l.value = static_cast<std::uint32_t>(rng());
      check(execmem_update_copy(l.fn + l.size - 5, &l.value, 4) == 0);
      check(as_function<int (*)()>(l.fn)() == static_cast<int>(l.value));
    }
    if (rng() % 8 == 0) {
      auto* r = static_cast<std::uint32_t*>(execmem_alloc(EXECMEM_RODATA, 64));
      check(r != nullptr && execmem_update_copy(r, &value, 4) == 0 && *r == value);
      check(execmem_free(r) == 0);
    }
    while (live.size() > 64 || (!live.empty() && rng() % 3 == 0)) {
      const size_t k = rng() % live.size();
      check(as_function<int (*)()>(live[k].fn)() == static_cast<int>(live[k].value));
      check(execmem_free(live[k].fn) == 0);
      live[k] = live.back();
      live.pop_back();
    }
  }
  for (Live& l : live) check(execmem_free(l.fn) == 0);
}

void run_stress(int threads, int rounds) {
  ASSERT_GT(rounds, 0);
  MapsSampler sampler;
  std::atomic<long> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back(worker, 1234u + static_cast<unsigned>(t), rounds, &failures);
  for (auto& t : ts) t.join();
  sampler.stop();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(sampler.samples(), 3);
  const auto v = sampler.violations();
  EXPECT_TRUE(v.empty()) << "writable+executable mapping seen: " << (v.empty() ? "" : v.front());
  EXPECT_TRUE(pmalloc::internal::execmem::check_all()) << pmalloc_last_error();
}

TEST(ExecmemStress, ThreadsWithMapsSampler) { run_stress(4, 1500); }

TEST(ExecmemStress, SingleWorkerWithMapsSampler) {
  // The mprotect-writer child below asks for fewer rounds: every update and metadata
  // change there is two mprotect calls, which queue behind the sampler's maps reads.
  const char* rounds = std::getenv("EXECMEM_STRESS_ROUNDS");
  run_stress(1, rounds != nullptr ? std::atoi(rounds) : 3000);
}

// The mprotect writer is the weakest back end: prove that it, too, never maps W+X. It is
// chosen once per process, so the single-worker run is repeated in a child process.
// (That back end updates a copy of the text and moves it over the old pages, so code on
// the same page keeps running; ThreadsWithMapsSampler covers it with four workers where
// /proc/self/mem writes are refused, noprocmem.execmem_stress_test. One worker here keeps
// the run short.)
TEST(ExecmemStress, MprotectWriterNeverMapsWX) {
  if (std::getenv("PMALLOC_WR_BACKEND") != nullptr) GTEST_SKIP() << "writer already forced";
  const pid_t child = fork();
  if (child == 0) {
    setenv("PMALLOC_WR_BACKEND", "mprotect", 1);
    setenv("EXECMEM_STRESS_ROUNDS", "400", 1);
    execl("/proc/self/exe", "execmem_stress_test", "--gtest_filter=ExecmemStress.SingleWorkerWithMapsSampler",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
