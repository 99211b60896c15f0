// The Public Suffix List, loaded: rules and a lookup index, all allocated from an Arena.
//
// File format (publicsuffix.org/list): UTF-8 text, one rule per line; a line is read up
// to its first whitespace; lines starting with "//" are comments; "*." as the leftmost
// label makes a wildcard rule, a leading "!" an exception rule. The sections
// "===BEGIN ICANN DOMAINS===" / "===BEGIN PRIVATE DOMAINS===" are recorded per rule.
//
// Structure (everything below is allocated through the Arena, so in the demonstration it
// all lives in one protected, sealed pmalloc pool):
//   List   the header: counts, a pointer to the rule array and to the hash index;
//   Rule   one allocation per rule: header + canonical name (+ the text as written when
//          that differs, e.g. a Unicode rule), linked to rules with the same name;
//   rules  an array of Rule pointers, in file order;
//   slots  an open-addressing hash table (power of two, load <= 1/2) of indices into
//          `rules`, keyed by the rule's canonical name without "!" / "*.".
// The hash runs over the name from its LAST byte to its first, so a lookup hashes each
// suffix of the host incrementally while it walks from the top-level label leftwards.
//
// Loading is all or nothing (the SELinux policy-load case from seeds/002): the first
// malformed line stops the load, every allocation made so far is released (pfree in a
// pool) in reverse order, and the error names the line and what is wrong with it.
// Malformed means: invalid UTF-8 anywhere (comments included), a NUL byte, a line longer
// than 4096 bytes, a missing newline at the end of the file (truncated last line), an
// empty label, a label over 63 or a rule over 253 octets (A-label form), a character
// other than letters, digits, '-', '_', '*' misplaced, '!' without at least two labels,
// invalid Punycode, or a file without any rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "arena.hpp"

namespace psl {

enum class RuleKind : std::uint8_t { normal, wildcard, exception };
enum class Section : std::uint8_t { none, icann, private_domains };

struct Rule {
  const Rule* next_same_name;  // next rule whose name is the same (other kind), or null
  std::uint32_t hash;          // of name(), see name_hash()
  std::uint32_t line;          // 1-based line in the file
  std::uint16_t name_length;   // octets of name()
  std::uint16_t text_length;   // octets of the original text, 0 when it equals the canonical
  RuleKind kind;
  Section section;
  std::uint8_t labels;         // labels of name()

  // Canonical name without "!" / "*." ("kobe.jp" for "*.kobe.jp"), NUL-terminated.
  const char* name() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  // The rule as written in the file (e.g. "*.公司.cn"), built when needed.
  std::string text() const;
};

struct ListCounts {
  std::size_t lines = 0;
  std::size_t rules = 0;
  std::size_t normal = 0;
  std::size_t wildcard = 0;
  std::size_t exception = 0;
  std::size_t icann = 0;
  std::size_t private_domains = 0;
  std::size_t duplicates = 0;  // a rule listed again (kept once)
  std::size_t idn = 0;         // rules with at least one non-ASCII label
};

struct List {
  std::uint64_t magic;
  const Rule* const* rules;  // `counts.rules` entries, file order
  std::size_t rule_capacity; // entries allocated (lines that could hold a rule)
  const std::uint32_t* slots;  // index + 1 into rules, 0 = empty
  std::size_t slot_mask;     // slots - 1
  ListCounts counts;
};

struct LoadError {
  std::size_t line = 0;  // 1-based; 0 when not about one line (e.g. out of memory)
  std::string reason;
};

// Parses `text` and builds the list through `arena`. Returns the list, or nullptr with
// *error filled after releasing every allocation it made.
const List* load_list(std::string_view text, Arena& arena, LoadError* error);

// Releases everything load_list allocated (for arenas that can free; not after protect).
void unload_list(const List* list, Arena& arena) noexcept;

// Hash of a canonical name, computed from its last byte to its first (see above).
std::uint32_t name_hash(std::string_view name) noexcept;

// Bytes of the allocation holding a rule with these name/text lengths.
std::size_t rule_bytes(std::size_t name_length, std::size_t text_length) noexcept;

}  // namespace psl
