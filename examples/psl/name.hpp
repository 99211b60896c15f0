// Domain names in canonical form: the one spelling rules and queries are compared in.
//
// Canonical form = labels joined by '.', each label either lower-case ASCII (letters,
// digits, '-', '_') or, when it contains non-ASCII characters, its A-label
// ("xn--" + Punycode). Labels are at most 63 octets and the name at most 253 octets in
// canonical form (RFC 1035 limits as they apply on the wire). canonicalize() also keeps
// where each label starts in the input, so an answer can be given in the spelling the
// user typed ("食狮.公司.cn", not "xn--85x722f.xn--55qx5d.cn").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "idna.hpp"

namespace psl {

inline constexpr std::size_t kMaxLabels = 127;  // a 253-octet name has at most 127 labels

struct CanonicalName {
  char text[idna::kMaxName + 1];          // NUL-terminated canonical form
  std::size_t length = 0;                 // octets in text
  std::size_t labels = 0;                 // number of labels
  std::uint16_t start[kMaxLabels] = {};   // offset of label i in text (left to right)
  std::uint16_t input_start[kMaxLabels] = {};  // offset of label i in the input

  std::string_view view() const noexcept { return {text, length}; }
  // The last k labels (1 <= k <= labels) in canonical form.
  std::string_view suffix(std::size_t k) const noexcept {
    const std::size_t b = start[labels - k];
    return {text + b, length - b};
  }
};

// Converts `name` (no leading or trailing dot, UTF-8) to canonical form. Returns true,
// or false with a one-line reason (e.g. "empty label", "label 'x…' is 70 octets, at most
// 63"). `allow_star` lets a label be exactly "*" (for wildcard rules, leftmost only; the
// caller checks the position).
bool canonicalize(std::string_view name, CanonicalName* out, std::string* reason, bool allow_star = false);

// ASCII lower-casing of a UTF-8 string (non-ASCII bytes unchanged).
std::string ascii_lower(std::string_view s);

}  // namespace psl
