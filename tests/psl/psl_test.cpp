// Tests of the Public Suffix List demonstration (examples/psl; issue 7).
//
// What is proven here:
//   * the IDNA pieces (strict UTF-8, Punycode) on known values and malformed input;
//   * the loader rejects every kind of malformed file with the right line and reason, and
//     rolls back with pfree: the pool's accounting is back where it was (also when an
//     allocation fails at any point of the load);
//   * the lookup algorithm (default rule, longest match, wildcards, exceptions, IDN in
//     both spellings, case, dots, IP addresses) on crafted lists, and identical answers
//     on a pool and on malloc (the allocator is pluggable);
//   * the loaded list is protected: stray writes die of SIGSEGV, a sealed pool cannot be
//     mprotect()ed back;
//   * the pmalloc-psl command line: arguments, stdin, --check, --list errors, --prove.
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "arena.hpp"
#include "idna.hpp"
#include "lookup.hpp"
#include "name.hpp"
#include "prove.hpp"
#include "rules.hpp"

namespace {

using psl::Verdict;

std::string encode(std::u32string_view s) {
  std::string out;
  EXPECT_TRUE(psl::idna::punycode_encode(s, &out));
  return out;
}

pmalloc_stats stats_of(pmalloc_pool* pool) {
  pmalloc_stats s{};
  EXPECT_EQ(pmalloc_pool_stats(pool, &s), 0);
  return s;
}

// A pool plus the arenas the loader is given.
struct PoolFixture {
  pmalloc_pool* pool = pmalloc_create_pool("psl-test", PMALLOC_RO);
  psl::PoolArena arena{pool};
  ~PoolFixture() { pmalloc_destroy_pool(pool); }
};

// Fails the n-th allocation (0-based), passes everything else on.
class FailingArena final : public psl::Arena {
 public:
  FailingArena(psl::Arena& inner, std::size_t fail_at) : inner_(inner), fail_at_(fail_at) {}
  void* allocate(std::size_t n) noexcept override {
    if (calls_++ == fail_at_) {
      errno = ENOMEM;
      return nullptr;
    }
    return inner_.allocate(n);
  }
  void release(void* p, std::size_t n) noexcept override { inner_.release(p, n); }
  int protect() noexcept override { return inner_.protect(); }
  const char* name() const noexcept override { return "failing"; }
  std::size_t calls() const noexcept { return calls_; }

 private:
  psl::Arena& inner_;
  std::size_t fail_at_;
  std::size_t calls_ = 0;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool have_system_list() { return access(PSL_SYSTEM_LIST, R_OK) == 0; }

// What lookup() answers, as pmalloc-psl prints it: the domain or the marker.
std::string answer(const psl::List& list, const std::string& host) {
  const psl::Answer a = psl::lookup(list, host);
  return a.verdict == Verdict::registrable ? a.domain : psl::verdict_marker(a.verdict);
}

// ---------------------------------------------------------------------------- IDNA

TEST(PslIdna, PunycodeEncodesKnownLabels) {
  EXPECT_EQ(encode(U"bücher"), "bcher-kva");
  EXPECT_EQ(encode(U"münchen"), "mnchen-3ya");
  EXPECT_EQ(encode(U"公司"), "55qx5d");
  EXPECT_EQ(encode(U"食狮"), "85x722f");
  EXPECT_EQ(encode(U"中国"), "fiqs8s");
  EXPECT_EQ(encode(U"пример"), "e1afmkfd");
  EXPECT_EQ(encode(U"рф"), "p1ai");
}

TEST(PslIdna, PunycodeDecodesAndRejectsMalformed) {
  std::u32string out;
  ASSERT_TRUE(psl::idna::punycode_decode("bcher-kva", &out));
  EXPECT_EQ(out, U"bücher");
  ASSERT_TRUE(psl::idna::punycode_decode("55qx5d", &out));
  EXPECT_EQ(out, U"公司");
  EXPECT_FALSE(psl::idna::punycode_decode("zz9", &out));    // ends inside a number
  EXPECT_FALSE(psl::idna::punycode_decode("ab$c", &out));   // not a digit
  EXPECT_FALSE(psl::idna::punycode_decode("99999999999", &out));  // overflow
}

TEST(PslIdna, Utf8IsStrict) {
  using psl::idna::utf8_first_invalid;
  constexpr auto ok = std::string_view::npos;
  EXPECT_EQ(utf8_first_invalid("plain ascii"), ok);
  EXPECT_EQ(utf8_first_invalid("公司.cn é"), ok);
  EXPECT_EQ(utf8_first_invalid("\xF0\x9F\x98\x80"), ok);  // U+1F600
  EXPECT_EQ(utf8_first_invalid("ab\xC0\x80"), 2u);         // overlong NUL
  EXPECT_EQ(utf8_first_invalid("\xE0\x80\xAF"), 1u);       // overlong '/'
  EXPECT_EQ(utf8_first_invalid("\xED\xA0\x80"), 1u);       // UTF-16 surrogate
  EXPECT_EQ(utf8_first_invalid("\xF4\x90\x80\x80"), 1u);   // above U+10FFFF
  EXPECT_EQ(utf8_first_invalid("x\xE4\xB8"), 1u);          // truncated sequence
  EXPECT_EQ(utf8_first_invalid("\x80"), 0u);               // lone continuation byte
  EXPECT_EQ(utf8_first_invalid("a\xFF"), 1u);
}

TEST(PslName, CanonicalFormAndLimits) {
  psl::CanonicalName c;
  std::string why;
  ASSERT_TRUE(psl::canonicalize("WWW.食狮.公司.CN", &c, &why)) << why;
  EXPECT_EQ(c.view(), "www.xn--85x722f.xn--55qx5d.cn");
  EXPECT_EQ(c.labels, 4u);
  EXPECT_EQ(c.suffix(2), "xn--55qx5d.cn");
  EXPECT_FALSE(psl::canonicalize(std::string(64, 'a') + ".com", &c, &why));
  EXPECT_NE(why.find("64 octets"), std::string::npos) << why;
  EXPECT_TRUE(psl::canonicalize(std::string(63, 'a') + ".com", &c, &why)) << why;
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'b') + ".";
  long_name += "com";
  EXPECT_FALSE(psl::canonicalize(long_name, &c, &why));
  EXPECT_NE(why.find("253"), std::string::npos) << why;
  EXPECT_FALSE(psl::canonicalize("a..b", &c, &why));
  EXPECT_EQ(why, "empty label");
  EXPECT_FALSE(psl::canonicalize("a b.com", &c, &why));
  EXPECT_FALSE(psl::canonicalize("a\xE3\x80\x82" "b", &c, &why));  // U+3002 ideographic full stop
  EXPECT_NE(why.find("U+3002"), std::string::npos) << why;
}

// ------------------------------------------------------------------------- loading

constexpr const char* kSmallList =
    "// a crafted list\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "jp\n"
    "*.kobe.jp\n"
    "!city.kobe.jp\n"
    "*.ck\n"
    "!www.ck\n"
    "公司.cn\n"
    "cn\n"
    "COM   trailing words are ignored\n"
    "// ===END ICANN DOMAINS===\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "\n"
    "github.io\n"
    "// ===END PRIVATE DOMAINS===\n";

TEST(PslLoad, CountsKindsSectionsAndDuplicates) {
  PoolFixture f;
  psl::LoadError err;
  const psl::List* list = psl::load_list(kSmallList, f.arena, &err);
  ASSERT_NE(list, nullptr) << err.line << ": " << err.reason;
  const psl::ListCounts& c = list->counts;
  EXPECT_EQ(c.rules, 11u);
  EXPECT_EQ(c.duplicates, 1u);  // "COM" again
  EXPECT_EQ(c.normal, 7u);
  EXPECT_EQ(c.wildcard, 2u);
  EXPECT_EQ(c.exception, 2u);
  EXPECT_EQ(c.icann, 10u);
  EXPECT_EQ(c.private_domains, 1u);
  EXPECT_EQ(c.idn, 1u);
  EXPECT_EQ(c.lines, 18u);
  // Header, rule array, index, one allocation per rule: nothing else, nothing leaked.
  EXPECT_EQ(stats_of(f.pool).allocations_live, 3u + c.rules);
}

struct BadFile {
  const char* what;
  std::string text;
  std::size_t line;
  const char* reason;  // substring of the message
};

void PrintTo(const BadFile& b, std::ostream* os) { *os << b.what; }

class PslMalformed : public ::testing::TestWithParam<BadFile> {};

TEST_P(PslMalformed, IsRejectedWithItsLineAndRolledBack) {
  const BadFile& bad = GetParam();
  PoolFixture f;
  // Something the pool held before the load: must survive the rollback untouched.
  char* sentinel = pstrdup(f.pool, "held before the load");
  ASSERT_NE(sentinel, nullptr);
  const pmalloc_stats before = stats_of(f.pool);

  psl::CountingArena counting(f.arena, 4096);
  psl::LoadError err;
  EXPECT_EQ(psl::load_list(bad.text, counting, &err), nullptr) << bad.what;
  EXPECT_EQ(err.line, bad.line) << bad.what << ": " << err.reason;
  EXPECT_NE(err.reason.find(bad.reason), std::string::npos) << bad.what << ": " << err.reason;

  const pmalloc_stats after = stats_of(f.pool);
  EXPECT_EQ(after.allocations_live, before.allocations_live) << bad.what;
  EXPECT_EQ(after.bytes_live, before.bytes_live) << bad.what;
  EXPECT_EQ(counting.objects(), 0u);
  EXPECT_EQ(counting.bytes(), 0u);
  EXPECT_STREQ(sentinel, "held before the load");
  EXPECT_EQ(pfree(f.pool, sentinel), 0);
}

const std::string kGood = "com\nco.uk\nuk\n";

INSTANTIATE_TEST_SUITE_P(
    Files, PslMalformed,
    ::testing::Values(
        BadFile{"bad UTF-8 in a rule", kGood + "b\xFF" "d.com\n", 4, "invalid UTF-8: byte 0xff at column 2"},
        BadFile{"bad UTF-8 in a comment", kGood + "// caf\xC3\n", 4, "invalid UTF-8"},
        BadFile{"overlong UTF-8", kGood + "a\xC0\xAE" "com\n", 4, "invalid UTF-8"},
        BadFile{"over-long label", kGood + std::string(64, 'x') + ".com\n", 4, "64 octets, at most 63"},
        BadFile{"over-long IDN label", kGood + [] {
                  std::string s;  // 30 different CJK ideographs: short in UTF-8, long in Punycode
                  for (unsigned i = 0; i < 30; ++i) {
                    const unsigned cp = 0x4E00 + i * 97;
                    s += static_cast<char>(0xE0 | (cp >> 12));
                    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                    s += static_cast<char>(0x80 | (cp & 0x3F));
                  }
                  return s;
                }() + ".cn\n", 4, "as an A-label"},
        BadFile{"over-long rule", kGood + [] {
                  std::string s;
                  for (int i = 0; i < 5; ++i) s += std::string(60, 'q') + ".";
                  return s + "com\n";
                }(), 4, "longer than 253"},
        BadFile{"truncated last line", kGood + "net\nor", 5, "truncated line"},
        BadFile{"empty label", kGood + "a..com\n", 4, "empty label"},
        BadFile{"leading dot", kGood + ".com\n", 4, "empty label"},
        BadFile{"trailing dot", kGood + "com.\n", 4, "empty label"},
        BadFile{"misplaced wildcard", kGood + "a.*.com\n", 4, "only supported as the whole leftmost label"},
        BadFile{"partial wildcard", kGood + "*a.com\n", 4, "only supported as the whole leftmost label"},
        BadFile{"wildcard exception", kGood + "!*.a.com\n", 4, "only supported as the whole leftmost label"},
        BadFile{"bare star", kGood + "*\n", 4, "implicit default rule"},
        BadFile{"one-label exception", kGood + "!com\n", 4, "at least two labels"},
        BadFile{"bare exception mark", kGood + "!\n", 4, "nothing after"},
        BadFile{"bang inside", kGood + "a!b.com\n", 4, "'!' is only allowed as the first character"},
        BadFile{"bad character", kGood + "a$b.com\n", 4, "'$' is not allowed"},
        BadFile{"NUL byte", kGood + std::string("ab\0c.com\n", 9), 4, "NUL byte at column 3"},
        BadFile{"over-long line", kGood + std::string(5000, 'a') + "\n", 4, "5000 bytes long"},
        BadFile{"invalid Punycode", kGood + "xn--zz9.com\n", 4, "not valid Punycode"},
        BadFile{"error after comments and blanks", kGood + "// x\n\n   \nbad..x\n", 7, "empty label"},
        BadFile{"CRLF file with an error", "com\r\nco.uk\r\na..b\r\n", 3, "empty label"},
        BadFile{"no rules at all", "// only a comment\n\n", 2, "no rules"},
        BadFile{"empty file", "", 0, "no rules"}),
    [](const ::testing::TestParamInfo<BadFile>& param) {
      std::string n = param.param.what;
      for (char& ch : n) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

TEST(PslLoad, RollbackFreesMemoryForReuseByTheNextLoad) {
  PoolFixture f;
  psl::LoadError err;
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "rule" + std::to_string(i) + ".example\n";
  ASSERT_EQ(psl::load_list(text + "broken..rule\n", f.arena, &err), nullptr);
  EXPECT_EQ(err.line, 2001u);
  const pmalloc_stats rolled_back = stats_of(f.pool);
  EXPECT_EQ(rolled_back.allocations_live, 0u);
  EXPECT_EQ(rolled_back.bytes_live, 0u);
  // The same rules without the bad line fit in the memory the failed load gave back.
  const psl::List* list = psl::load_list(text, f.arena, &err);
  ASSERT_NE(list, nullptr) << err.reason;
  EXPECT_EQ(list->counts.rules, 2000u);
  EXPECT_EQ(stats_of(f.pool).bytes_committed, rolled_back.bytes_committed);
}

TEST(PslLoad, OutOfMemoryAtAnyPointRollsBackEverything) {
  // How many allocations a successful load of kSmallList makes.
  PoolFixture probe;
  FailingArena never(probe.arena, ~std::size_t{0});
  ASSERT_NE(psl::load_list(kSmallList, never, nullptr), nullptr);
  const std::size_t total = never.calls();
  ASSERT_GT(total, 3u);

  for (std::size_t k = 0; k < total; ++k) {
    PoolFixture f;
    FailingArena failing(f.arena, k);
    psl::CountingArena counting(failing, 4096);
    psl::LoadError err;
    EXPECT_EQ(psl::load_list(kSmallList, counting, &err), nullptr) << "allocation " << k;
    EXPECT_NE(err.reason.find("out of memory"), std::string::npos) << err.reason;
    EXPECT_EQ(counting.objects(), 0u) << "allocation " << k;
    EXPECT_EQ(stats_of(f.pool).allocations_live, 0u) << "allocation " << k;
  }
}

// ------------------------------------------------------------------------- lookups

class PslLookup : public ::testing::Test {
 protected:
  void SetUp() override {
    psl::LoadError err;
    list_ = psl::load_list(kSmallList, f_.arena, &err);
    ASSERT_NE(list_, nullptr) << err.reason;
    ASSERT_EQ(pmalloc_protect_pool(f_.pool), 0);
  }
  PoolFixture f_;
  const psl::List* list_ = nullptr;
};

TEST_F(PslLookup, LongestRuleWinsAndTheDefaultRuleIsStar) {
  EXPECT_EQ(answer(*list_, "www.example.co.uk"), "example.co.uk");
  EXPECT_EQ(answer(*list_, "example.co.uk"), "example.co.uk");
  EXPECT_EQ(answer(*list_, "co.uk"), "[public-suffix]");
  EXPECT_EQ(answer(*list_, "example.uk"), "example.uk");
  EXPECT_EQ(answer(*list_, "uk"), "[public-suffix]");
  EXPECT_EQ(answer(*list_, "a.b.example.test"), "example.test");  // unlisted TLD: default rule
  EXPECT_EQ(answer(*list_, "test"), "[public-suffix]");
  const psl::Answer a = psl::lookup(*list_, "a.b.example.test");
  EXPECT_EQ(a.rule, nullptr);
  EXPECT_EQ(a.public_suffix, "test");
}

TEST_F(PslLookup, WildcardsAndExceptions) {
  EXPECT_EQ(answer(*list_, "kobe.jp"), "kobe.jp");  // "*.kobe.jp" needs one more label
  EXPECT_EQ(answer(*list_, "c.kobe.jp"), "[public-suffix]");
  EXPECT_EQ(answer(*list_, "b.c.kobe.jp"), "b.c.kobe.jp");
  EXPECT_EQ(answer(*list_, "a.b.c.kobe.jp"), "b.c.kobe.jp");
  EXPECT_EQ(answer(*list_, "city.kobe.jp"), "city.kobe.jp");  // the exception prevails
  EXPECT_EQ(answer(*list_, "www.city.kobe.jp"), "city.kobe.jp");
  EXPECT_EQ(answer(*list_, "ck"), "[public-suffix]");
  EXPECT_EQ(answer(*list_, "test.ck"), "[public-suffix]");
  EXPECT_EQ(answer(*list_, "www.ck"), "www.ck");
  EXPECT_EQ(answer(*list_, "a.www.ck"), "www.ck");
  const psl::Answer a = psl::lookup(*list_, "www.city.kobe.jp");
  ASSERT_NE(a.rule, nullptr);
  EXPECT_EQ(a.rule->text(), "!city.kobe.jp");
  EXPECT_EQ(a.public_suffix, "kobe.jp");
}

TEST_F(PslLookup, InternationalNamesMatchInBothSpellings) {
  EXPECT_EQ(answer(*list_, "食狮.公司.cn"), "食狮.公司.cn");
  EXPECT_EQ(answer(*list_, "www.食狮.公司.cn"), "食狮.公司.cn");
  EXPECT_EQ(answer(*list_, "xn--85x722f.xn--55qx5d.cn"), "xn--85x722f.xn--55qx5d.cn");
  EXPECT_EQ(answer(*list_, "WWW.XN--85X722F.XN--55QX5D.CN"), "xn--85x722f.xn--55qx5d.cn");
  EXPECT_EQ(answer(*list_, "食狮.xn--55qx5d.cn"), "食狮.xn--55qx5d.cn");  // mixed spellings
  EXPECT_EQ(answer(*list_, "公司.cn"), "[public-suffix]");
  EXPECT_EQ(answer(*list_, "xn--55qx5d.cn"), "[public-suffix]");
  const psl::Answer a = psl::lookup(*list_, "xn--85x722f.xn--55qx5d.cn");
  ASSERT_NE(a.rule, nullptr);
  EXPECT_EQ(a.rule->text(), "公司.cn");  // the rule as written in the file
}

TEST_F(PslLookup, CaseDotsAddressesAndInvalidNames) {
  EXPECT_EQ(answer(*list_, "WwW.Example.COM"), "example.com");
  EXPECT_EQ(answer(*list_, "www.example.com."), "example.com.");
  EXPECT_EQ(answer(*list_, "com."), "[public-suffix]");
  EXPECT_EQ(answer(*list_, "example.com.."), "[invalid]");
  EXPECT_EQ(answer(*list_, ".example.com"), "[invalid]");
  EXPECT_EQ(answer(*list_, "."), "[invalid]");
  EXPECT_EQ(answer(*list_, ""), "[invalid]");
  EXPECT_EQ(answer(*list_, "a..com"), "[invalid]");
  EXPECT_EQ(answer(*list_, "bad host.com"), "[invalid]");
  EXPECT_EQ(answer(*list_, "b\xFF.com"), "[invalid]");
  EXPECT_EQ(answer(*list_, std::string(64, 'a') + ".com"), "[invalid]");
  EXPECT_EQ(answer(*list_, "127.0.0.1"), "[ip-address]");
  EXPECT_EQ(answer(*list_, "::1"), "[ip-address]");
  EXPECT_EQ(answer(*list_, "[2001:db8::1]"), "[ip-address]");
  EXPECT_EQ(answer(*list_, "1.2.3"), "2.3");  // not an address: labels "1", "2", "3"
  const psl::Answer a = psl::lookup(*list_, ".example.com");
  EXPECT_NE(a.reason.find("leading dot"), std::string::npos) << a.reason;
}

TEST(PslArena, MallocAndPoolGiveTheSameAnswers) {
  if (!have_system_list()) GTEST_SKIP() << PSL_SYSTEM_LIST << " is missing (Debian package publicsuffix)";
  const std::string text = read_all(PSL_SYSTEM_LIST);
  PoolFixture f;
  psl::MallocArena heap;
  psl::CountingArena counted_heap(heap, 4096);
  psl::LoadError err;
  const psl::List* in_pool = psl::load_list(text, f.arena, &err);
  ASSERT_NE(in_pool, nullptr) << err.line << ": " << err.reason;
  ASSERT_EQ(pmalloc_protect_pool(f.pool), 0);
  const psl::List* on_heap = psl::load_list(text, counted_heap, &err);
  ASSERT_NE(on_heap, nullptr) << err.reason;
  EXPECT_EQ(in_pool->counts.rules, on_heap->counts.rules);
  EXPECT_GT(in_pool->counts.rules, 5000u);

  std::istringstream hosts(read_all(PSL_HOSTS));
  std::size_t compared = 0;
  for (std::string line; std::getline(hosts, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::string host = line.substr(0, line.find(' '));
    EXPECT_EQ(answer(*in_pool, host), answer(*on_heap, host)) << host;
    ++compared;
  }
  EXPECT_GE(compared, 100u);
  psl::unload_list(on_heap, counted_heap);
  EXPECT_EQ(counted_heap.objects(), 0u);
  EXPECT_EQ(counted_heap.bytes(), 0u);
}

// ---------------------------------------------------------------------- protection

// Forks a child that writes to p; returns the child's wait status.
int write_in_child(volatile unsigned char* p) {
  const pid_t child = fork();
  if (child == 0) {
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &sa, nullptr);
    *p = 0x5A;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}

TEST_F(PslLookup, StrayWritesIntoRulesIndexAndHeaderFault) {
  std::vector<volatile unsigned char*> targets;
  for (std::size_t i = 0; i < list_->counts.rules; ++i) {
    targets.push_back(reinterpret_cast<volatile unsigned char*>(const_cast<char*>(list_->rules[i]->name())));
  }
  targets.push_back(reinterpret_cast<volatile unsigned char*>(const_cast<std::uint32_t*>(list_->slots)));
  targets.push_back(reinterpret_cast<volatile unsigned char*>(const_cast<psl::List*>(list_)));
  std::vector<unsigned char> before;
  for (auto* t : targets) before.push_back(static_cast<unsigned char>(*t));
  for (auto* t : targets) {
    const int status = write_in_child(t);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << "status " << status;
  }
  for (std::size_t i = 0; i < targets.size(); ++i) EXPECT_EQ(*targets[i], before[i]);
  EXPECT_EQ(answer(*list_, "www.city.kobe.jp"), "city.kobe.jp");
}

TEST(PslProve, ProofsHoldOnASealedPool) {
  if (pmalloc_seal_supported() != 1) GTEST_SKIP() << "this kernel has no mseal(): sealing cannot be shown";
  pmalloc_pool* pool = pmalloc_create_pool("psl-sealed", PMALLOC_SEAL);
  ASSERT_NE(pool, nullptr);
  psl::PoolArena arena(pool);
  psl::LoadError err;
  const psl::List* list = psl::load_list(kSmallList, arena, &err);
  ASSERT_NE(list, nullptr) << err.reason;
  ASSERT_EQ(pmalloc_protect_pool(pool), 0);
  ASSERT_EQ(stats_of(pool).sealed, 1);
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(psl::prove(*list, true, out), 0);
  std::rewind(out);
  std::string text;
  for (int ch; (ch = std::fgetc(out)) != EOF;) text.push_back(static_cast<char>(ch));
  std::fclose(out);
  EXPECT_NE(text.find("EPERM"), std::string::npos) << text;
  EXPECT_EQ(text.find("FAILED"), std::string::npos) << text;
  pmalloc_destroy_pool(pool);
}

// -------------------------------------------------------------------- command line

struct ToolRun {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};

// Runs pmalloc-psl with `args` (already shell-quoted) and `input` on stdin.
ToolRun run_tool(const std::string& args, const std::string& input = "") {
  char dir_template[] = "/tmp/pmalloc-psl-test-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  EXPECT_NE(dir, nullptr);
  const std::string d = dir != nullptr ? dir : "/tmp";
  std::ofstream(d + "/in", std::ios::binary) << input;
  const std::string cmd = std::string("'") + PSL_TOOL + "' " + args + " <" + d + "/in >" + d + "/out 2>" + d + "/err";
  const int raw = std::system(cmd.c_str());
  ToolRun r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  r.out = read_all(d + "/out");
  r.err = read_all(d + "/err");
  std::remove((d + "/in").c_str());
  std::remove((d + "/out").c_str());
  std::remove((d + "/err").c_str());
  rmdir(d.c_str());
  return r;
}

std::string write_temp(const std::string& text) {
  char name[] = "/tmp/pmalloc-psl-list-XXXXXX";
  const int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return name;
}

TEST(PslTool, AnswersHostsGivenAsArguments) {
  const std::string list = write_temp(kSmallList);
  const ToolRun r = run_tool("--quiet --list " + list + " www.example.co.uk co.uk www.city.kobe.jp");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "www.example.co.uk example.co.uk\nco.uk [public-suffix]\nwww.city.kobe.jp city.kobe.jp\n");
  std::remove(list.c_str());
}

TEST(PslTool, AnswersHostsOnStdin) {
  const std::string list = write_temp(kSmallList);
  const ToolRun r = run_tool("-q --list " + list, "www.example.co.uk\n\n# a comment\n  WWW.CK  \r\n.bad\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "www.example.co.uk example.co.uk\nWWW.CK www.ck\n.bad [invalid] leading dot (empty first label)\n");
  std::remove(list.c_str());
}

TEST(PslTool, EscapesControlBytesInOutput) {
  const std::string list = write_temp(kSmallList);
  const ToolRun r = run_tool("-q --list " + list, std::string("evil\x1b[2J.com\nnul\0byte.com\n", 26));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "a terminal escape reached the output";
  EXPECT_EQ(r.out.find('\0'), std::string::npos);
  EXPECT_NE(r.out.find("evil\\x1b[2J.com [invalid]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nul\\x00byte.com [invalid]"), std::string::npos) << r.out;
  std::remove(list.c_str());
}

TEST(PslTool, ReportsStatisticsAndTheSodiumComparison) {
  const std::string list = write_temp(kSmallList);
  const ToolRun r = run_tool("--list " + list + " example.com");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("loaded 11 rules"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("allocations_live"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes_protected"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("one sodium_malloc per object"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("example.com example.com\n"), std::string::npos) << r.out;
  std::remove(list.c_str());
}

TEST(PslTool, RejectsAMalformedListNamingTheLineAndShowsTheRollback) {
  const std::string list = write_temp(kGood + "ok.com\nbad\xFF.com\nnever.reached\n");
  const ToolRun r = run_tool("--list " + list + " example.com");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(list + ":5: invalid UTF-8"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("rolled back with pfree"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the pool holds 0 allocations and 0 live bytes again"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("example.com example.com"), std::string::npos) << "no answers from a rejected list";
  std::remove(list.c_str());

  const std::string truncated = write_temp(kGood + "net\nor");
  const ToolRun t = run_tool("--list " + truncated + " example.com");
  EXPECT_EQ(t.status, 1);
  EXPECT_NE(t.err.find(truncated + ":5: truncated line"), std::string::npos) << t.err;
  std::remove(truncated.c_str());

  const std::string long_label = write_temp(kGood + std::string(70, 'l') + ".com\n");
  const ToolRun l = run_tool("--list " + long_label + " example.com");
  EXPECT_EQ(l.status, 1);
  EXPECT_NE(l.err.find(long_label + ":4: rule '"), std::string::npos) << l.err;
  EXPECT_NE(l.err.find("70 octets, at most 63"), std::string::npos) << l.err;
  std::remove(long_label.c_str());
}

TEST(PslTool, MissingFileAndBadOptions) {
  const ToolRun missing = run_tool("--list /nonexistent/psl.dat example.com");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("cannot read /nonexistent/psl.dat"), std::string::npos) << missing.err;
  const ToolRun unknown = run_tool("--frobnicate");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("unknown option --frobnicate"), std::string::npos) << unknown.err;
  const ToolRun no_value = run_tool("--list");
  EXPECT_EQ(no_value.status, 2);
}

TEST(PslTool, CheckModeReportsMismatches) {
  const std::string list = write_temp(kSmallList);
  const std::string expected = write_temp("# host expected\nwww.example.co.uk example.co.uk\nco.uk example.co.uk\n");
  const ToolRun r = run_tool("-q --list " + list + " --check " + expected);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find(":3: co.uk: expected example.co.uk, got [public-suffix]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 of 2 host names agree"), std::string::npos) << r.out;
  std::remove(list.c_str());
  std::remove(expected.c_str());
}

TEST(PslTool, ProveShowsSegvAndTheSeal) {
  const std::string list = write_temp(kSmallList);
  const ToolRun r = run_tool("--prove --list " + list);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("killed by Segmentation fault"), std::string::npos) << r.out;
  if (pmalloc_seal_supported() == 1) {
    EXPECT_NE(r.out.find("mprotect(PROT_READ|PROT_WRITE) -> EPERM"), std::string::npos) << r.out;
  }
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
  std::remove(list.c_str());
}

TEST(PslTool, HostListAgreesWithTheSystemList) {
  if (!have_system_list()) GTEST_SKIP() << PSL_SYSTEM_LIST << " is missing (Debian package publicsuffix)";
  const ToolRun r = run_tool(std::string("-q --check ") + PSL_HOSTS);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("host names agree"), std::string::npos) << r.out;
}

}  // namespace
