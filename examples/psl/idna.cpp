// Strict UTF-8 and RFC 3492 Punycode (see idna.hpp). Written from the RFCs' descriptions.
#include "idna.hpp"

#include <limits>

namespace psl::idna {
namespace {

// RFC 3492 section 5 parameters.
constexpr std::uint32_t kBase = 36;
constexpr std::uint32_t kTmin = 1;
constexpr std::uint32_t kTmax = 26;
constexpr std::uint32_t kSkew = 38;
constexpr std::uint32_t kDamp = 700;
constexpr std::uint32_t kInitialBias = 72;
constexpr std::uint32_t kInitialN = 0x80;
constexpr std::uint32_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

char digit_char(std::uint32_t d) noexcept {
  return static_cast<char>(d < 26 ? 'a' + d : '0' + (d - 26));
}

// Returns the digit value of c, or kBase when c is not a Punycode digit.
std::uint32_t digit_value(char c) noexcept {
  if (c >= 'a' && c <= 'z') return static_cast<std::uint32_t>(c - 'a');
  if (c >= 'A' && c <= 'Z') return static_cast<std::uint32_t>(c - 'A');
  if (c >= '0' && c <= '9') return static_cast<std::uint32_t>(c - '0') + 26;
  return kBase;
}

// Bias adaptation (RFC 3492 section 6.1).
std::uint32_t adapt(std::uint32_t delta, std::uint32_t points, bool first) noexcept {
  delta = first ? delta / kDamp : delta / 2;
  delta += delta / points;
  std::uint32_t k = 0;
  while (delta > ((kBase - kTmin) * kTmax) / 2) {
    delta /= kBase - kTmin;
    k += kBase;
  }
  return k + (kBase - kTmin + 1) * delta / (delta + kSkew);
}

std::uint32_t threshold(std::uint32_t k, std::uint32_t bias) noexcept {
  if (k <= bias) return kTmin;
  if (k >= bias + kTmax) return kTmax;
  return k - bias;
}

}  // namespace

std::size_t utf8_first_invalid(std::string_view in) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // no overlong forms
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;  // continuation byte, overlong lead (C0, C1) or F5..FF
    }
    if (i + len > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i + 1;
    for (std::size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i + k;
    }
    i += len;
  }
  return std::string_view::npos;
}

bool utf8_decode(std::string_view in, std::u32string* out, std::size_t* bad_offset) {
  const std::size_t bad = utf8_first_invalid(in);
  if (bad != std::string_view::npos) {
    if (bad_offset != nullptr) *bad_offset = bad;
    return false;
  }
  out->clear();
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  for (std::size_t i = 0; i < in.size();) {
    const unsigned char c = s[i];
    char32_t cp = 0;
    std::size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if (c < 0xE0) {
      cp = c & 0x1Fu;
      len = 2;
    } else if (c < 0xF0) {
      cp = c & 0x0Fu;
      len = 3;
    } else {
      cp = c & 0x07u;
      len = 4;
    }
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (s[i + k] & 0x3Fu);
    out->push_back(cp);
    i += len;
  }
  return true;
}

bool punycode_encode(std::u32string_view in, std::string* out) {
  out->clear();
  if (in.size() > kMaxU32 / 2) return false;
  for (char32_t c : in) {
    if (c < 0x80) out->push_back(static_cast<char>(c));
  }
  const auto basic = static_cast<std::uint32_t>(out->size());
  std::uint32_t handled = basic;
  if (basic > 0) out->push_back('-');

  std::uint32_t n = kInitialN, delta = 0, bias = kInitialBias;
  const auto total = static_cast<std::uint32_t>(in.size());
  while (handled < total) {
    std::uint32_t m = kMaxU32;
    for (char32_t c : in) {
      if (c >= n && c < m) m = c;
    }
    if (m - n > (kMaxU32 - delta) / (handled + 1)) return false;
    delta += (m - n) * (handled + 1);
    n = m;
    for (char32_t c : in) {
      if (c < n && ++delta == 0) return false;
      if (c != n) continue;
      std::uint32_t q = delta;
      for (std::uint32_t k = kBase;; k += kBase) {
        const std::uint32_t t = threshold(k, bias);
        if (q < t) break;
        out->push_back(digit_char(t + (q - t) % (kBase - t)));
        q = (q - t) / (kBase - t);
      }
      out->push_back(digit_char(q));
      bias = adapt(delta, handled + 1, handled == basic);
      delta = 0;
      ++handled;
    }
    ++delta;
    ++n;
  }
  return true;
}

bool punycode_decode(std::string_view in, std::u32string* out) {
  out->clear();
  // Basic code points are everything before the last '-'.
  const std::size_t dash = in.rfind('-');
  std::size_t pos = 0;
  if (dash != std::string_view::npos) {
    for (std::size_t i = 0; i < dash; ++i) {
      if (static_cast<unsigned char>(in[i]) >= 0x80) return false;
      out->push_back(static_cast<char32_t>(in[i]));
    }
    pos = dash + 1;
  }
  std::uint32_t n = kInitialN, i = 0, bias = kInitialBias;
  while (pos < in.size()) {
    const std::uint32_t old_i = i;
    std::uint32_t w = 1;
    for (std::uint32_t k = kBase;; k += kBase) {
      if (pos >= in.size()) return false;
      const std::uint32_t d = digit_value(in[pos++]);
      if (d >= kBase) return false;
      if (d > (kMaxU32 - i) / w) return false;
      i += d * w;
      const std::uint32_t t = threshold(k, bias);
      if (d < t) break;
      if (w > kMaxU32 / (kBase - t)) return false;
      w *= kBase - t;
    }
    const auto points = static_cast<std::uint32_t>(out->size() + 1);
    bias = adapt(i - old_i, points, old_i == 0);
    if (i / points > kMaxU32 - n) return false;
    n += i / points;
    i %= points;
    if (n < 0x80 || n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF)) return false;
    out->insert(out->begin() + i, static_cast<char32_t>(n));
    ++i;
  }
  return true;
}

}  // namespace psl::idna
