// Fault injection for the OS layer (tests only): make the N-th primitive call fail.
//
// Every primitive in os.hpp that talks to the kernel first asks should_fail(); when the
// armed countdown reaches zero that call returns the armed errno without doing anything.
// Counting is process-wide and atomic, so a sweep over N exercises every failure point of
// a scenario deterministically (as long as the scenario is single-threaded).
#pragma once

namespace pmalloc::os::fault {

// Fail the n-th primitive call from now (1 = the next one) with `error`; 0 disarms.
void arm(unsigned long n, int error) noexcept;
void disarm() noexcept;
// Primitive calls made since the process started (armed or not).
unsigned long calls() noexcept;
// True once an armed failure has been delivered.
bool fired() noexcept;
// Called by the OS layer: returns 0 or the errno to fail with.
int should_fail() noexcept;

}  // namespace pmalloc::os::fault
