// Test support: pools created while a SmallFirstRegion is alive start with a 1 MiB region
// (then 4, 16, ... MiB), as pools did before the default first region grew to 64 MiB
// (src/pool/layout.hpp). Tests of multi-region behaviour use it so that a pool grows a
// second or third region after a few MiB instead of 64.
#pragma once

#include <cstddef>

#include "pool/pool.hpp"

namespace test_support {

class SmallFirstRegion {
 public:
  explicit SmallFirstRegion(std::size_t bytes = std::size_t{1} << 20) {
    pmalloc::internal::set_first_region_bytes(bytes);
  }
  ~SmallFirstRegion() { pmalloc::internal::set_first_region_bytes(0); }
  SmallFirstRegion(const SmallFirstRegion&) = delete;
  SmallFirstRegion& operator=(const SmallFirstRegion&) = delete;
};

}  // namespace test_support
