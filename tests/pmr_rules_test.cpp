// The acceptance scenario: a realistic lookup table, a
// std::pmr::unordered_map<std::pmr::string, Rule> whose Rules hold pmr strings and
// vectors, is built in a pool through pmalloc::memory_resource, protected, and serves
// find(). Every kind of mutation attempt afterwards - changing a rule, a key, inserting,
// erasing, rehashing, clearing - kills the forked child with SIGSEGV, and the table is
// byte-for-byte unchanged in the parent. (examples/pmr_rules.cpp is the narrated version.)
#include <gtest/gtest.h>
#include <pmalloc/memory_resource.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory_resource>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cpp_support/protection.hpp"

namespace {

using pmalloc_test::allocating_mutation_faults;
using pmalloc_test::faults;

enum class Action : std::uint8_t { deny, allow, audit };

struct Rule {
  using allocator_type = std::pmr::polymorphic_allocator<>;
  Action action = Action::deny;
  std::uint32_t rate = 0;
  std::pmr::string role;
  std::pmr::vector<std::pmr::string> tags;

  explicit Rule(allocator_type a = {}) : role(a), tags(a) {}
  Rule(const Rule& o, allocator_type a) : action(o.action), rate(o.rate), role(o.role, a), tags(o.tags, a) {}
  Rule(Rule&& o, allocator_type a)
      : action(o.action), rate(o.rate), role(std::move(o.role), a), tags(std::move(o.tags), a) {}
};

struct Hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
struct Equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};
using RuleTable = std::pmr::unordered_map<std::pmr::string, Rule, Hash, Equal>;

// Keys for lookups live in the default resource, not in the pool.
std::pmr::string key_of(int i) {
  return std::pmr::string("POST /api/v2/service-" + std::to_string(i) + "/resource", std::pmr::new_delete_resource());
}

// A fingerprint of everything reachable from the table, to prove "no byte changed".
std::string fingerprint(const RuleTable& t) {
  std::string out;
  for (int i = 0; i < 300; ++i) {
    const auto it = t.find(key_of(i));
    if (it == t.end()) continue;
    out += std::string_view(it->first);
    out += static_cast<char>(it->second.action);
    out += std::to_string(it->second.rate);
    out += std::string_view(it->second.role);
    for (const auto& tag : it->second.tags) out += std::string_view(tag);
    out += '|';
  }
  return out + std::to_string(t.size()) + "/" + std::to_string(t.bucket_count());
}

class PmrRules : public ::testing::Test {
 protected:
  void SetUp() override {
    mr_ = pool_.make<pmalloc::memory_resource>(pool_);
    RuleTable* t = pool_.make<RuleTable>(mr_);
    for (int i = 0; i < 300; ++i) {
      Rule& r = (*t)[std::pmr::string(key_of(i), mr_)];
      r.action = i % 3 == 0 ? Action::deny : Action::allow;
      r.rate = static_cast<std::uint32_t>(i * 10);
      r.role = i % 2 == 0 ? "administrator-with-long-role-name" : "reader";
      r.tags.emplace_back("audit-trail-required-for-this-rule");
      r.tags.emplace_back("pii");
    }
    table_ = pool_.protect(t);
    before_ = fingerprint(*table_);
  }

  RuleTable& victim() { return const_cast<RuleTable&>(*table_); }

  pmalloc::Pool pool_{"pmr-rules-test"};
  pmalloc::memory_resource* mr_ = nullptr;
  pmalloc::ro_ptr<RuleTable> table_;
  std::string before_;
};

TEST_F(PmrRules, EverythingLivesInTheProtectedPool) {
  const auto s = pool_.stats();
  EXPECT_TRUE(s.is_protected);
  // map object, buckets, 300 nodes, 300 long keys, 150 long roles, 300 tag vectors,
  // 300 long tags: well over a thousand allocations, all in the pool.
  EXPECT_GT(s.allocations_live, 1000u);
  EXPECT_EQ(table_->get_allocator().resource(), mr_);
  EXPECT_EQ(table_->at(key_of(1)).tags.get_allocator().resource(), mr_);
}

TEST_F(PmrRules, ServesLookupsAfterProtection) {
  const RuleTable& rules = *table_;
  const auto it = rules.find(std::string_view(key_of(42)));  // heterogeneous, no allocation
  ASSERT_NE(it, rules.end());
  EXPECT_EQ(it->second.action, Action::deny);
  EXPECT_EQ(it->second.rate, 420u);
  EXPECT_EQ(it->second.role, "administrator-with-long-role-name");
  EXPECT_EQ(it->second.tags.at(1), "pii");
  EXPECT_TRUE(rules.contains(key_of(299)));
  EXPECT_EQ(rules.count(key_of(300)), 0u);
  EXPECT_EQ(rules.find(std::string_view("GET /nothing")), rules.end());
  std::size_t denies = 0;
  for (const auto& [key, rule] : rules) denies += rule.action == Action::deny;
  EXPECT_EQ(denies, 100u);
  const auto range = rules.equal_range(key_of(7));
  EXPECT_EQ(std::distance(range.first, range.second), 1);
  // Copying a rule out of the table is a read; the copy lives in the default resource.
  std::pmr::string role_copy(rules.at(key_of(2)).role, std::pmr::new_delete_resource());
  role_copy += "!";
  EXPECT_EQ(fingerprint(*table_), before_);
}

TEST_F(PmrRules, ChangingARuleFaults) {
  EXPECT_TRUE(faults([&] { victim().find(key_of(42))->second.action = Action::allow; }));
  EXPECT_TRUE(faults([&] { victim().at(key_of(42)).rate = 0; }));
  EXPECT_TRUE(faults([&] { victim().at(key_of(42)).role[0] = 'X'; }));
  EXPECT_TRUE(faults([&] { victim().at(key_of(42)).tags.clear(); }));
  EXPECT_TRUE(allocating_mutation_faults([&] { victim().at(key_of(42)).tags.emplace_back("x"); }));
  EXPECT_EQ(fingerprint(*table_), before_);
  EXPECT_EQ(table_->at(key_of(42)).action, Action::deny);
}

TEST_F(PmrRules, ChangingTheTableFaults) {
  EXPECT_TRUE(faults([&] { const_cast<char&>(victim().begin()->first[0]) = 'G'; }));
  EXPECT_TRUE(allocating_mutation_faults(
      [&] { victim()[std::pmr::string("GET /admin/backdoor/with/a/long/path", mr_)].action = Action::allow; }));
  EXPECT_TRUE(faults([&] { victim().erase(key_of(3)); }));
  EXPECT_TRUE(faults([&] { victim().clear(); }));
  EXPECT_TRUE(faults([&] { victim().rehash(4096); }));
  EXPECT_TRUE(faults([&] { victim().max_load_factor(0.1f); }));
  EXPECT_EQ(fingerprint(*table_), before_);
}

TEST_F(PmrRules, RedirectingTheResourceFaults) {
  // An attacker's next idea: point the table's allocator somewhere else.
  EXPECT_TRUE(faults([&] {
    auto* mr_slot = reinterpret_cast<void* volatile*>(mr_);  // the resource's vtable pointer
    *mr_slot = nullptr;
  }));
  EXPECT_TRUE(faults([&] {
    RuleTable replacement(std::pmr::new_delete_resource());
    std::memcpy(static_cast<void*>(&victim()), &replacement, sizeof replacement);
  }));
  EXPECT_EQ(fingerprint(*table_), before_);
}

}  // namespace
