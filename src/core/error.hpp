// pmalloc's one error vocabulary: functions return 0 or a positive errno value, and
// record a human-readable reason for the calling thread (pmalloc_last_error()).
//
// Usage:  if (size == 0) return fail(EINVAL, "pmalloc: size must not be 0");
// The C API turns the value into errno / a return code; the C++ API into pmalloc::error.
#pragma once

namespace pmalloc::internal {

// Records the reason (printf-style) for this thread and returns `error` unchanged.
[[gnu::format(printf, 2, 3)]] int fail(int error, const char* format, ...) noexcept;
// The last reason recorded on this thread ("" when none).
const char* last_error() noexcept;
// Forgets this thread's last reason.
void clear_error() noexcept;

// Prints one line to stderr and aborts: for broken invariants that must not be survived
// (metadata that could not be written back consistently, say).
[[noreturn, gnu::format(printf, 1, 2)]] void fatal(const char* format, ...) noexcept;

}  // namespace pmalloc::internal
