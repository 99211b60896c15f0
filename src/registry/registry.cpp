// Address registry: an ordered map from reservation start to (end, region).
#include "registry/registry.hpp"

#include <cerrno>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <shared_mutex>

namespace pmalloc::internal::registry {
namespace {

struct Entry {
  std::uintptr_t end;
  Region* region;
};

struct Table {
  std::shared_mutex lock;
  std::map<std::uintptr_t, Entry> entries;
};

Table& table() noexcept {
  static Table* t = new Table;  // never destroyed: pools may outlive static destructors
  return *t;
}

}  // namespace

int add(const void* begin, std::size_t size, Region* region) noexcept {
  auto b = reinterpret_cast<std::uintptr_t>(begin);
  Table& t = table();
  std::unique_lock guard(t.lock);
  try {
    t.entries.insert_or_assign(b, Entry{b + size, region});
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  return 0;
}

void remove(const void* begin) noexcept {
  Table& t = table();
  std::unique_lock guard(t.lock);
  t.entries.erase(reinterpret_cast<std::uintptr_t>(begin));
}

Region* find(const void* p) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  Table& t = table();
  std::shared_lock guard(t.lock);
  auto it = t.entries.upper_bound(a);
  if (it == t.entries.begin()) return nullptr;
  --it;
  return a < it->second.end ? it->second.region : nullptr;
}

std::size_t size() noexcept {
  Table& t = table();
  std::shared_lock guard(t.lock);
  return t.entries.size();
}

void for_each(void (*fn)(Region* region, void* context), void* context) noexcept {
  Table& t = table();
  std::shared_lock guard(t.lock);
  for (const auto& [begin, entry] : t.entries) fn(entry.region, context);
}

}  // namespace pmalloc::internal::registry
