// The PMALLOC_VERBOSE event log (see log.hpp).
#include "core/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pmalloc::internal::log {

bool env_flag(const char* name) noexcept {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

// Read at every event (events are rare: pool creation, protection, destruction), so that
// a program may also turn the log on or off with setenv() while it runs.
bool verbose() noexcept { return env_flag("PMALLOC_VERBOSE"); }

void line(const char* format, ...) noexcept {
  char buffer[512];
  const int saved_errno = errno;
  std::size_t n = static_cast<std::size_t>(std::snprintf(buffer, sizeof buffer, "pmalloc: "));
  va_list args;
  va_start(args, format);
  const int m = std::vsnprintf(buffer + n, sizeof buffer - n - 1, format, args);
  va_end(args);
  if (m > 0) n += static_cast<std::size_t>(m) < sizeof buffer - n - 1 ? static_cast<std::size_t>(m) : sizeof buffer - n - 2;
  buffer[n++] = '\n';
  for (std::size_t done = 0; done < n;) {
    const ssize_t w = ::write(STDERR_FILENO, buffer + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += static_cast<std::size_t>(w);
  }
  errno = saved_errno;  // logging never changes what the caller reports
}

}  // namespace pmalloc::internal::log
