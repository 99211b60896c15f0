// Registrable-domain queries against a loaded list (the algorithm of publicsuffix.org):
//
//   1. A rule matches a host when its labels equal the host's rightmost labels; "*"
//      matches any one label. The implicit default rule "*" always matches.
//   2. If an exception rule ("!") matches, it prevails; otherwise the matching rule with
//      the most labels does.
//   3. The public suffix is the host's rightmost labels, as many as the prevailing rule
//      has (one fewer for an exception rule). The registrable domain is the public
//      suffix plus one more label; a host that has no such label IS a public suffix.
//
// Host names are compared case-insensitively in canonical form (name.hpp), so Unicode
// and Punycode spellings match each other. Decisions for the edge cases (documented in
// this example's README.md):
//   * one trailing dot (a fully qualified name, "example.com.") is accepted and kept in
//     the answer ("example.com."); two trailing dots are an empty label;
//   * a leading dot or any empty label makes the host invalid;
//   * an IPv4 or IPv6 address (also "[::1]") has no registrable domain: verdict ip_address;
//   * answers are spelled like the input (ASCII lower-cased, Unicode kept as typed).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "name.hpp"
#include "rules.hpp"

namespace psl {

enum class Verdict { registrable, public_suffix, invalid, ip_address };

struct Answer {
  Verdict verdict = Verdict::invalid;
  std::string domain;         // the registrable domain (registrable only)
  std::string public_suffix;  // the public suffix (registrable and public_suffix)
  const Rule* rule = nullptr; // the prevailing rule; nullptr for the default rule "*"
  std::string reason;         // why the host is invalid
};

// The marker printed instead of a domain: "[public-suffix]", "[invalid]", "[ip-address]".
const char* verdict_marker(Verdict v) noexcept;

// The prevailing rule for a host in canonical form: how many rightmost labels form the
// public suffix, and which rule said so (nullptr = default rule).
struct Match {
  std::size_t suffix_labels = 1;
  const Rule* rule = nullptr;
};
Match match(const List& list, const CanonicalName& host) noexcept;

Answer lookup(const List& list, std::string_view host);

}  // namespace psl
