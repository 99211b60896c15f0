// Replays the fuzzer's seed corpus (fuzz/corpus/pool) through the harness in every test
// tier, with the ordinary compiler and sanitizers: the seeds stay valid programs, and the
// model checks in fuzz/pool_fuzz.cpp run on every build, not only in the clang fuzz tier.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#define PMALLOC_FUZZ_NO_MAIN 1
#include "../fuzz/pool_fuzz.cpp"

namespace {

TEST(FuzzCorpus, EverySeedRunsCleanly) {
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path().parent_path() / "fuzz" / "corpus" / "pool";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::size_t seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().filename().string());
    pmalloc_fuzz::run_one(data.data(), data.size());  // aborts with a message on any mismatch
    ++seeds;
  }
  EXPECT_GE(seeds, 5u);
}

}  // namespace
