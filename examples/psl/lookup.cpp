// Registrable-domain queries (see lookup.hpp for the algorithm and the edge cases).
#include "lookup.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace psl {
namespace {

constexpr std::uint32_t kFnvBasis = 2166136261u;
constexpr std::uint32_t kFnvPrime = 16777619u;

std::uint32_t hash_step(std::uint32_t h, char c) noexcept {
  return (h ^ static_cast<unsigned char>(c)) * kFnvPrime;
}

const Rule* find(const List& list, std::string_view name, std::uint32_t hash) noexcept {
  for (std::size_t i = hash & list.slot_mask; list.slots[i] != 0; i = (i + 1) & list.slot_mask) {
    const Rule* r = list.rules[list.slots[i] - 1];
    if (r->hash == hash && r->name_length == name.size() && std::memcmp(r->name(), name.data(), name.size()) == 0) {
      return r;
    }
  }
  return nullptr;
}

bool is_ip_address(std::string_view host) {
  bool dotted_digits = true, colon = false;
  for (char c : host) {
    dotted_digits = dotted_digits && ((c >= '0' && c <= '9') || c == '.');
    colon = colon || c == ':';
  }
  if (!dotted_digits && !colon) return false;  // the common case: no system call, no copy
  unsigned char buf[16];
  std::string s(host);
  if (colon && s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  return dotted_digits ? inet_pton(AF_INET, s.c_str(), buf) == 1 : inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

const char* verdict_marker(Verdict v) noexcept {
  switch (v) {
    case Verdict::registrable: return "";
    case Verdict::public_suffix: return "[public-suffix]";
    case Verdict::invalid: return "[invalid]";
    case Verdict::ip_address: return "[ip-address]";
  }
  return "[invalid]";
}

Match match(const List& list, const CanonicalName& host) noexcept {
  const std::size_t n = host.labels;
  Match best;                     // the default rule "*": one label
  const Rule* exception = nullptr;
  std::size_t exception_labels = 0;
  std::uint32_t h = kFnvBasis;
  for (std::size_t k = 1; k <= n; ++k) {
    // Extend the hash leftwards by ".label" (see name_hash: last byte first).
    const std::size_t begin = host.start[n - k];
    const std::size_t end = k == 1 ? host.length : host.start[n - k + 1] - 1;
    if (k > 1) h = hash_step(h, '.');
    for (std::size_t i = end; i-- > begin;) h = hash_step(h, host.text[i]);
    for (const Rule* r = find(list, host.suffix(k), h); r != nullptr; r = r->next_same_name) {
      switch (r->kind) {
        case RuleKind::normal:
          if (k > best.suffix_labels || (k == best.suffix_labels && best.rule == nullptr)) best = Match{k, r};
          break;
        case RuleKind::wildcard:
          if (k < n && k + 1 > best.suffix_labels) best = Match{k + 1, r};
          break;
        case RuleKind::exception:
          if (k > exception_labels) {
            exception = r;
            exception_labels = k;
          }
          break;
      }
    }
  }
  if (exception != nullptr) return Match{exception_labels - 1, exception};
  return best;
}

Answer lookup(const List& list, std::string_view host) {
  Answer a;
  if (host.empty()) {
    a.reason = "empty host name";
    return a;
  }
  if (is_ip_address(host)) {
    a.verdict = Verdict::ip_address;
    return a;
  }
  const bool fqdn = host.back() == '.';
  std::string_view name = host;
  if (fqdn) name.remove_suffix(1);
  if (name.empty()) {
    a.reason = "the root name '.' has no labels";
    return a;
  }
  if (name.front() == '.') {
    a.reason = "leading dot (empty first label)";
    return a;
  }
  if (name.back() == '.') {
    a.reason = "empty last label (more than one trailing dot)";
    return a;
  }
  CanonicalName canonical;
  if (!canonicalize(name, &canonical, &a.reason)) return a;
  const Match m = match(list, canonical);
  a.rule = m.rule;
  const std::size_t n = canonical.labels;
  const std::string dot = fqdn ? "." : "";
  if (m.suffix_labels >= n) {
    a.verdict = Verdict::public_suffix;
    a.public_suffix = ascii_lower(name) + dot;
    return a;
  }
  a.verdict = Verdict::registrable;
  a.public_suffix = ascii_lower(name.substr(canonical.input_start[n - m.suffix_labels])) + dot;
  a.domain = ascii_lower(name.substr(canonical.input_start[n - m.suffix_labels - 1])) + dot;
  return a;
}

}  // namespace psl
