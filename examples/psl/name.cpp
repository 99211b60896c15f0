// Canonical form of domain names (see name.hpp).
#include "name.hpp"

#include <cstdio>
#include <cstring>

namespace psl {
namespace {

constexpr std::size_t kMaxInput = 4 * idna::kMaxName;  // UTF-8 input is at most ~4x its A-label form

bool ascii_label_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// A short, printable excerpt of a label for messages.
std::string excerpt(std::string_view label) {
  constexpr std::size_t kShown = 24;
  if (label.size() <= kShown) return std::string(label);
  std::size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) --cut;  // whole characters
  return std::string(label.substr(0, cut)) + "...";
}

std::string describe_byte(char c) {
  char buf[32];
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7F) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "byte 0x%02x", u);
  }
  return buf;
}

// Code points that are not characters of a host name label: controls, spaces, and the
// dot look-alikes that UTS #46 would map to '.' (we do not map, so we refuse them rather
// than silently treat "a。b" as one label).
bool refused_code_point(char32_t c) noexcept {
  return (c >= 0x80 && c <= 0xA0) || (c >= 0x2000 && c <= 0x200F) || c == 0x2028 || c == 0x2029 ||
         c == 0x3000 || c == 0x3002 || c == 0xFEFF || c == 0xFF0E || c == 0xFF61 || c == 0xFFFD;
}

// Canonicalises one label into `out` (appended). False with a reason on error.
bool canonical_label(std::string_view label, std::string* out, std::string* reason, bool allow_star) {
  if (label.empty()) {
    *reason = "empty label";
    return false;
  }
  if (allow_star && label == "*") {
    out->push_back('*');
    return true;
  }
  bool ascii = true;
  for (char c : label) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    const std::size_t first = out->size();
    for (char c : label) {
      const char l = lower(c);
      if (!ascii_label_char(l)) {
        *reason = "character " + describe_byte(c) + " is not allowed in label '" + excerpt(label) + "'";
        return false;
      }
      out->push_back(l);
    }
    if (label.size() > idna::kMaxLabel) {
      *reason = "label '" + excerpt(label) + "' is " + std::to_string(label.size()) + " octets, at most " +
                std::to_string(idna::kMaxLabel) + " allowed";
      return false;
    }
    const std::string_view folded = std::string_view(*out).substr(first);
    if (folded.size() >= 4 && folded.substr(0, 4) == "xn--") {
      std::u32string decoded;
      if (!idna::punycode_decode(folded.substr(4), &decoded) || decoded.empty()) {
        *reason = "label '" + excerpt(label) + "' is not valid Punycode";
        return false;
      }
    }
    return true;
  }
  std::u32string points;
  std::size_t bad = 0;
  if (!idna::utf8_decode(label, &points, &bad)) {
    *reason = "invalid UTF-8 (" + describe_byte(label[bad]) + ") in label";
    return false;
  }
  for (char32_t& c : points) {
    if (c < 0x80) {
      c = static_cast<char32_t>(lower(static_cast<char>(c)));
      if (!ascii_label_char(static_cast<char>(c))) {
        *reason = "character " + describe_byte(static_cast<char>(c)) + " is not allowed in label '" +
                  excerpt(label) + "'";
        return false;
      }
    } else if (refused_code_point(c)) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
      *reason = std::string("character ") + buf + " is not allowed in label '" + excerpt(label) + "'";
      return false;
    }
  }
  std::string encoded;
  if (!idna::punycode_encode(points, &encoded) || encoded.size() + 4 > idna::kMaxLabel) {
    *reason = "label '" + excerpt(label) + "' is " + std::to_string(encoded.size() + 4) +
              " octets as an A-label, at most " + std::to_string(idna::kMaxLabel) + " allowed";
    return false;
  }
  out->append("xn--");
  out->append(encoded);
  return true;
}

}  // namespace

bool canonicalize(std::string_view name, CanonicalName* out, std::string* reason, bool allow_star) {
  out->length = 0;
  out->labels = 0;
  out->text[0] = '\0';
  if (name.empty()) {
    *reason = "empty name";
    return false;
  }
  if (name.size() > kMaxInput) {
    *reason = "name is longer than " + std::to_string(kMaxInput) + " bytes";
    return false;
  }
  std::string label_out;
  label_out.reserve(idna::kMaxName + 1);
  std::size_t pos = 0;
  for (;;) {
    const std::size_t dot = name.find('.', pos);
    const std::string_view label = name.substr(pos, dot == std::string_view::npos ? name.size() - pos : dot - pos);
    if (out->labels == kMaxLabels) {
      *reason = "more than " + std::to_string(kMaxLabels) + " labels";
      return false;
    }
    label_out.clear();
    if (!canonical_label(label, &label_out, reason, allow_star)) return false;
    const std::size_t need = out->length + (out->labels > 0 ? 1 : 0) + label_out.size();
    if (need > idna::kMaxName) {
      *reason = "name is longer than " + std::to_string(idna::kMaxName) + " octets";
      return false;
    }
    if (out->labels > 0) out->text[out->length++] = '.';
    out->start[out->labels] = static_cast<std::uint16_t>(out->length);
    out->input_start[out->labels] = static_cast<std::uint16_t>(pos);
    std::memcpy(out->text + out->length, label_out.data(), label_out.size());
    out->length += label_out.size();
    out->labels += 1;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  out->text[out->length] = '\0';
  return true;
}

std::string ascii_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lower(c);
  return r;
}

}  // namespace psl
