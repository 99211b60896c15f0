// Thread-local error reasons and the fatal-error path (see error.hpp).
#include "core/error.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace pmalloc::internal {
namespace {
thread_local char t_reason[256];
}

int fail(int error, const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  std::vsnprintf(t_reason, sizeof t_reason, format, args);
  va_end(args);
  return error;
}

const char* last_error() noexcept { return t_reason; }

void clear_error() noexcept { t_reason[0] = '\0'; }

void fatal(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  std::fputs("pmalloc: fatal: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
  std::abort();
}

}  // namespace pmalloc::internal
