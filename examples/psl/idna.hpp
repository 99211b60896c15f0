// Internationalised domain names for the Public Suffix List: strict UTF-8 decoding and
// Punycode (RFC 3492), the two pieces needed to compare rules and host names written
// either as Unicode (U-labels, "公司") or as ASCII-compatible encoding (A-labels,
// "xn--55qx5d").
//
// Design: everything is compared in A-label form. A label that contains non-ASCII
// characters is encoded to "xn--" + Punycode; an ASCII label is only case-folded. This
// is exactly what a resolver sends on the wire, so a rule written in Unicode matches a
// host written in Punycode and the other way round. Deliberately NOT done (documented in
// README.md of this example): the UTS #46 mapping step (Unicode case folding, NFC
// normalisation, mapping of full-width dots). Hosts must be given in lower-case NFC form
// for non-ASCII letters, which is what the list itself uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace psl::idna {

inline constexpr std::size_t kMaxLabel = 63;   // octets of one label in A-label form
inline constexpr std::size_t kMaxName = 253;   // octets of a name without a trailing dot

// Decodes strict UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF) into
// code points. On error returns false and sets *bad_offset to the offending byte.
bool utf8_decode(std::string_view in, std::u32string* out, std::size_t* bad_offset);

// First invalid byte of `in` as UTF-8, or npos when all of it is valid.
std::size_t utf8_first_invalid(std::string_view in) noexcept;

// RFC 3492 encoding of code points (without the "xn--" prefix). False on overflow.
bool punycode_encode(std::u32string_view in, std::string* out);
// RFC 3492 decoding (input without "xn--", ASCII only). False on malformed input.
bool punycode_decode(std::string_view in, std::u32string* out);

}  // namespace psl::idna
