// Included first by every C++ header of pmalloc (the pmalloc/ .hpp files): they use C++20
// (concepts, std::span), and a compiler in an older mode would otherwise stop at the first
// construct it does not know, far from the cause. The C headers (the .h files) work from
// C11 and from C++11.
#pragma once

#if !defined(PMALLOC_DOXYGEN) && (!defined(__cplusplus) || __cplusplus < 202002L)
#error "pmalloc's C++ headers need C++20 (-std=c++20); from older C++ use the C API, <pmalloc/pmalloc.h>"
#endif
