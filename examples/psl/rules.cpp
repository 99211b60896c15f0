// Loading the Public Suffix List into an Arena (see rules.hpp for format and structure).
//
// Order of work: one cheap pass counts the lines that can hold a rule, which sizes the
// rule array and the hash index exactly once (no growing arrays in write-once memory);
// then each line is validated, canonicalised, checked against the index for duplicates,
// and only then allocated and linked in. Any error unwinds every allocation in reverse
// order (Loader::rollback).
#include "rules.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "idna.hpp"
#include "name.hpp"

namespace psl {
namespace {

constexpr std::uint64_t kListMagic = 0x7473696c2d6c7370ULL;  // "psl-list"
constexpr std::size_t kMaxLine = 4096;
constexpr std::uint32_t kFnvBasis = 2166136261u;
constexpr std::uint32_t kFnvPrime = 16777619u;

std::string_view trim_left(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// The first whitespace-delimited word of a line.
std::string_view first_word(std::string_view s) noexcept {
  s = trim_left(s);
  std::size_t i = 0;
  while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
  return s.substr(0, i);
}

std::string byte_at(std::string_view line, std::size_t at) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "byte 0x%02x at column %zu", static_cast<unsigned char>(line[at]), at + 1);
  return buf;
}

class Loader {
 public:
  Loader(std::string_view text, Arena& arena, LoadError* error) : text_(text), arena_(arena), error_(error) {}
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  // An exception (std::bad_alloc from a message string) still releases everything.
  ~Loader() {
    if (!done_) rollback();
  }

  const List* run() {
    std::size_t candidates = 0;
    count_candidates(&candidates);
    if (!allocate_tables(candidates)) return nullptr;
    if (!parse_lines()) return nullptr;
    if (list_->counts.rules == 0) return reject(line_, "the file contains no rules");
    list_->magic = kListMagic;
    done_ = true;
    return list_;
  }

 private:
  // Lines that may hold a rule: not blank, not a comment.
  void count_candidates(std::size_t* n) const noexcept {
    std::size_t pos = 0;
    while (pos < text_.size()) {
      std::size_t nl = text_.find('\n', pos);
      if (nl == std::string_view::npos) nl = text_.size();
      const std::string_view word = first_word(text_.substr(pos, nl - pos));
      if (!word.empty() && word.substr(0, 2) != "//") ++*n;
      pos = nl + 1;
    }
  }

  void* take(std::size_t bytes) {
    void* p = arena_.allocate(bytes);
    if (p == nullptr) {
      const int e = errno;
      reject(line_, std::string("out of memory allocating ") + std::to_string(bytes) + " bytes (" +
                        std::strerror(e) + ")");
      return nullptr;
    }
    return p;
  }

  bool allocate_tables(std::size_t candidates) {
    std::size_t slots = 16;
    while (slots < 2 * candidates) slots *= 2;
    list_ = static_cast<List*>(take(sizeof(List)));
    if (list_ == nullptr) return false;
    std::memset(static_cast<void*>(list_), 0, sizeof(List));
    list_bytes_ = sizeof(List);
    rule_capacity_ = candidates == 0 ? 1 : candidates;
    rules_ = static_cast<Rule**>(take(rule_capacity_ * sizeof(Rule*)));
    if (rules_ == nullptr) {
      rollback();
      return false;
    }
    slots_ = static_cast<std::uint32_t*>(take(slots * sizeof(std::uint32_t)));
    if (slots_ == nullptr) {
      rollback();
      return false;
    }
    std::memset(slots_, 0, slots * sizeof(std::uint32_t));
    list_->rules = rules_;
    list_->rule_capacity = rule_capacity_;
    list_->slots = slots_;
    list_->slot_mask = slots - 1;
    return true;
  }

  bool parse_lines() {
    std::size_t pos = 0;
    Section section = Section::none;
    while (pos < text_.size()) {
      ++line_;
      const std::size_t nl = text_.find('\n', pos);
      if (nl == std::string_view::npos) {
        return reject(line_, "truncated line: the file does not end with a newline") != nullptr;
      }
      std::string_view line = text_.substr(pos, nl - pos);
      pos = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line_ == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // byte order mark
      if (line.size() > kMaxLine) {
        return reject(line_, "line is " + std::to_string(line.size()) + " bytes long, at most " +
                                 std::to_string(kMaxLine) + " allowed") != nullptr;
      }
      if (const void* nul = std::memchr(line.data(), '\0', line.size())) {
        const auto at = static_cast<std::size_t>(static_cast<const char*>(nul) - line.data());
        return reject(line_, "NUL byte at column " + std::to_string(at + 1)) != nullptr;
      }
      if (const std::size_t bad = idna::utf8_first_invalid(line); bad != std::string_view::npos) {
        return reject(line_, "invalid UTF-8: " + byte_at(line, bad)) != nullptr;
      }
      const std::string_view word = first_word(line);
      if (word.empty()) continue;
      if (word.substr(0, 2) == "//") {
        if (line.find("===BEGIN ICANN DOMAINS===") != std::string_view::npos) section = Section::icann;
        if (line.find("===BEGIN PRIVATE DOMAINS===") != std::string_view::npos) section = Section::private_domains;
        if (line.find("===END ") != std::string_view::npos) section = Section::none;
        continue;
      }
      if (!add_rule(word, section)) return false;
    }
    list_->counts.lines = line_;
    return true;
  }

  bool add_rule(std::string_view word, Section section) {
    RuleKind kind = RuleKind::normal;
    std::string_view body = word;
    if (body[0] == '!') {
      kind = RuleKind::exception;
      body.remove_prefix(1);
    } else if (body.substr(0, 2) == "*.") {
      kind = RuleKind::wildcard;
      body.remove_prefix(2);
    }
    const std::string quoted = "rule '" + std::string(word) + "': ";
    if (body.empty()) return reject(line_, quoted + "nothing after '" + std::string(word) + "'") != nullptr;
    if (word == "*") {
      return reject(line_, quoted + "'*' alone is the implicit default rule; wildcards are written '*.example'") !=
             nullptr;
    }
    if (body.find('*') != std::string_view::npos) {
      return reject(line_, quoted + "'*' is only supported as the whole leftmost label ('*.example')") != nullptr;
    }
    if (body.find('!') != std::string_view::npos) {
      return reject(line_, quoted + "'!' is only allowed as the first character (exception rule)") != nullptr;
    }
    CanonicalName canonical;
    std::string why;
    if (!canonicalize(body, &canonical, &why)) return reject(line_, quoted + why) != nullptr;
    if (kind == RuleKind::exception && canonical.labels < 2) {
      return reject(line_, quoted + "an exception rule needs at least two labels") != nullptr;
    }
    if (kind == RuleKind::wildcard && canonical.length + 2 > idna::kMaxName) {
      return reject(line_, quoted + "name is longer than " + std::to_string(idna::kMaxName) + " octets") != nullptr;
    }

    const std::uint32_t hash = name_hash(canonical.view());
    Rule* same = find(canonical.view(), hash);
    for (const Rule* r = same; r != nullptr; r = r->next_same_name) {
      if (r->kind == kind) {
        ++list_->counts.duplicates;
        return true;
      }
    }
    // Keep the text as written only when it differs from the canonical spelling.
    std::string rebuilt = kind == RuleKind::exception ? "!" : kind == RuleKind::wildcard ? "*." : "";
    rebuilt.append(canonical.view());
    const std::size_t text_length = rebuilt == word ? 0 : word.size();
    if (list_->counts.rules == rule_capacity_) {
      return reject(line_, "internal error: more rules than counted") != nullptr;
    }
    const std::size_t bytes = rule_bytes(canonical.length, text_length);
    auto* rule = static_cast<Rule*>(take(bytes));
    if (rule == nullptr) return false;
    rule->next_same_name = nullptr;
    rule->hash = hash;
    rule->line = static_cast<std::uint32_t>(line_);
    rule->name_length = static_cast<std::uint16_t>(canonical.length);
    rule->text_length = static_cast<std::uint16_t>(text_length);
    rule->kind = kind;
    rule->section = section;
    rule->labels = static_cast<std::uint8_t>(canonical.labels);
    auto* name = reinterpret_cast<char*>(rule + 1);
    std::memcpy(name, canonical.text, canonical.length + 1);
    if (text_length != 0) {
      std::memcpy(name + canonical.length + 1, word.data(), text_length);
      name[canonical.length + 1 + text_length] = '\0';
    }
    const std::size_t index = list_->counts.rules;
    rules_[index] = rule;
    ListCounts& c = list_->counts;
    c.rules += 1;
    c.normal += kind == RuleKind::normal;
    c.wildcard += kind == RuleKind::wildcard;
    c.exception += kind == RuleKind::exception;
    c.icann += section == Section::icann;
    c.private_domains += section == Section::private_domains;
    c.idn += canonical.view().find("xn--") != std::string_view::npos;
    if (same != nullptr) {
      while (same->next_same_name != nullptr) same = const_cast<Rule*>(same->next_same_name);
      same->next_same_name = rule;
    } else {
      std::size_t i = hash & list_->slot_mask;
      while (slots_[i] != 0) i = (i + 1) & list_->slot_mask;
      slots_[i] = static_cast<std::uint32_t>(index + 1);
    }
    return true;
  }

  Rule* find(std::string_view name, std::uint32_t hash) const noexcept {
    for (std::size_t i = hash & list_->slot_mask; slots_[i] != 0; i = (i + 1) & list_->slot_mask) {
      Rule* r = rules_[slots_[i] - 1];
      if (r->hash == hash && r->name_length == name.size() && std::memcmp(r->name(), name.data(), name.size()) == 0) {
        return r;
      }
    }
    return nullptr;
  }

  // Records the error, releases everything, returns nullptr.
  const List* reject(std::size_t line, std::string reason) {
    error_->line = line;
    error_->reason = std::move(reason);
    rollback();
    return nullptr;
  }

  void rollback() noexcept {
    if (list_ == nullptr) return;
    for (std::size_t i = list_->counts.rules; i-- > 0;) {
      arena_.release(rules_[i], rule_bytes(rules_[i]->name_length, rules_[i]->text_length));
    }
    if (slots_ != nullptr) arena_.release(slots_, (list_->slot_mask + 1) * sizeof(std::uint32_t));
    if (rules_ != nullptr) arena_.release(rules_, rule_capacity_ * sizeof(Rule*));
    arena_.release(list_, list_bytes_);
    list_ = nullptr;
    rules_ = nullptr;
    slots_ = nullptr;
  }

  std::string_view text_;
  Arena& arena_;
  LoadError* error_;
  std::size_t line_ = 0;
  List* list_ = nullptr;
  std::size_t list_bytes_ = 0;
  Rule** rules_ = nullptr;
  std::size_t rule_capacity_ = 0;
  std::uint32_t* slots_ = nullptr;
  bool done_ = false;
};

}  // namespace

std::uint32_t name_hash(std::string_view name) noexcept {
  std::uint32_t h = kFnvBasis;
  for (std::size_t i = name.size(); i-- > 0;) {
    h ^= static_cast<unsigned char>(name[i]);
    h *= kFnvPrime;
  }
  return h;
}

std::size_t rule_bytes(std::size_t name_length, std::size_t text_length) noexcept {
  return sizeof(Rule) + name_length + 1 + (text_length == 0 ? 0 : text_length + 1);
}

std::string Rule::text() const {
  if (text_length != 0) return std::string(name() + name_length + 1, text_length);
  std::string t = kind == RuleKind::exception ? "!" : kind == RuleKind::wildcard ? "*." : "";
  return t.append(name(), name_length);
}

const List* load_list(std::string_view text, Arena& arena, LoadError* error) {
  LoadError ignored;
  Loader loader(text, arena, error != nullptr ? error : &ignored);
  try {
    return loader.run();
  } catch (const std::bad_alloc&) {
    // Only the loader's own heap bookkeeping can throw; the arena never does.
    if (error != nullptr) *error = LoadError{0, "out of memory (heap)"};
    return nullptr;
  }
}

void unload_list(const List* list, Arena& arena) noexcept {
  if (list == nullptr) return;
  const std::size_t n = list->counts.rules;
  for (std::size_t i = n; i-- > 0;) {
    const Rule* r = list->rules[i];
    arena.release(const_cast<Rule*>(r), rule_bytes(r->name_length, r->text_length));
  }
  arena.release(const_cast<std::uint32_t*>(list->slots), (list->slot_mask + 1) * sizeof(std::uint32_t));
  arena.release(const_cast<Rule**>(list->rules), list->rule_capacity * sizeof(Rule*));
  arena.release(const_cast<List*>(list), sizeof(List));
}

}  // namespace psl
