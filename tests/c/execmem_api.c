/* The execmem C API from C11: allocate text, write x86-64 code through the update
 * helper, call it, check the error codes and the reasons, free. Exit 0 on success. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pmalloc/pmalloc.h"

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",    \
              __FILE__, __LINE__, #cond, pmalloc_last_error());        \
      return 1;                                                        \
    }                                                                  \
  } while (0)

typedef int (*binop)(int, int);

int main(void) {
  /* lea eax, [rdi + rsi]; ret */
  static const unsigned char add_code[] = {0x8d, 0x04, 0x37, 0xc3};
  unsigned char *text = execmem_alloc(EXECMEM_TEXT, sizeof add_code);
  binop add;
  struct execmem_stats st;
  unsigned char *ro;
  int *roai;
  unsigned char stack_bytes[4] = {0};

  CHECK(text != NULL);
  CHECK(((uintptr_t)text % EXECMEM_TEXT_ALIGN) == 0);
  CHECK(text[0] == 0xCC);
  CHECK(execmem_update_copy(text, add_code, sizeof add_code) == 0);
  /* ISO C has no object-to-function pointer conversion; copy the representation. */
  memcpy(&add, &text, sizeof add);
  CHECK(add(2, 40) == 42);

  CHECK(execmem_update_copy(text, add_code, sizeof add_code + 1) == EINVAL);
  CHECK(errno == EINVAL);
  CHECK(pmalloc_last_error()[0] != '\0');
  CHECK(execmem_update_copy(stack_bytes, add_code, 1) == EINVAL);
  CHECK(execmem_free(text + 1) == EINVAL);
  CHECK(execmem_free(NULL) == 0);

  ro = execmem_alloc(EXECMEM_RODATA, 8);
  CHECK(ro != NULL);
  CHECK(execmem_update_copy(ro, "abcdefg", 8) == 0);
  CHECK(strcmp((const char *)ro, "abcdefg") == 0);

  roai = execmem_alloc(EXECMEM_RO_AFTER_INIT, sizeof(int));
  CHECK(roai != NULL);
  *roai = 5;
  CHECK(execmem_protect_ro_after_init() == 0);
  CHECK(execmem_update_copy(roai, stack_bytes, 1) == EPERM);
  CHECK(*roai == 5);

  CHECK(execmem_get_stats(EXECMEM_TEXT, &st) == 0);
  CHECK(st.allocations_live >= 1);
  CHECK(execmem_free(text) == 0);
  CHECK(execmem_free(text) == EINVAL);
  CHECK(execmem_free(ro) == 0);
  CHECK(execmem_free(roai) == 0);
  CHECK(execmem_alloc(EXECMEM_DATA, 0) == NULL && errno == EINVAL);
  puts("execmem C API: ok");
  return 0;
}
