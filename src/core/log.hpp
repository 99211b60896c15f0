// Diagnostic output of the library: the PMALLOC_VERBOSE event log.
//
// pmalloc never prints on its own except when asked to: PMALLOC_VERBOSE=1 (any value other
// than empty or "0") turns on one line per pool life-cycle event on stderr, so that an
// operator can see which pools a program makes, when they become read-only and when they
// go away, without a debugger. The variable is read at each event, so setenv() at run time
// works too.
//
// Each line is formatted into a local buffer and handed to the kernel with one write(2),
// so lines from different threads never interleave and nothing here allocates or takes a
// lock: it is safe to call with a pool lock held.
#pragma once

namespace pmalloc::internal::log {

// True when PMALLOC_VERBOSE asks for the event log.
bool verbose() noexcept;

// Writes "pmalloc: <message>\n" to stderr (printf-style, cut at 512 bytes). Callers check
// verbose() first; this function prints unconditionally.
[[gnu::format(printf, 1, 2)]] void line(const char* format, ...) noexcept;

// True when the environment variable `name` is set to something other than "" or "0".
bool env_flag(const char* name) noexcept;

}  // namespace pmalloc::internal::log
