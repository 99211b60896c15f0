// --prove: evidence, from forked children, that the loaded list is really protected.
//
//   1. a stray write into a rule's name is killed by SIGSEGV;
//   2. a stray write into the list header (the pointers every lookup follows) likewise;
//   3. on a sealed pool, mprotect(PROT_READ|PROT_WRITE) on a rule's page fails with
//      EPERM, and the write after it still dies of SIGSEGV: the protection cannot be
//      undone, not even by code that calls mprotect itself.
// Children run with core dumps off and the default SIGSEGV action (sanitizers install
// their own handler). The parent checks afterwards that lookups still give the same
// answers: nothing changed.
#pragma once

#include <cstdio>

#include "rules.hpp"

namespace psl {

// Runs the proofs and prints what happened. Returns the number of proofs that failed.
int prove(const List& list, bool sealed, std::FILE* out);

}  // namespace psl
