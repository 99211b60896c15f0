// README example (C++): a std::pmr map built in a pool, then read-only for good.
#include <pmalloc/memory_resource.hpp>

#include <cstdio>
#include <map>
#include <memory_resource>
#include <string>

int main() {
  pmalloc::Pool pool("routes");
  auto* mr = pool.make<pmalloc::memory_resource>(pool);
  using Routes = std::pmr::map<std::pmr::string, int>;
  Routes* routes = pool.make<Routes>(mr);  // the map and all its nodes live in the pool
  routes->emplace("/api/users", 8080);
  routes->emplace("/static/images/and/other/assets", 8081);

  pmalloc::ro_ptr<Routes> ro = pool.protect(routes);  // read-only pages, const in the type
  for (const auto& [path, port] : *ro) std::printf("%s -> %d\n", path.c_str(), port);
  std::printf("/api/users is served on port %d\n", ro->at("/api/users"));
  // (*routes)["/admin"] = 1;  would be killed by SIGSEGV: the pages are read-only
}
