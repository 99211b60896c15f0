/* External consumer (C11, built with pkg-config): the C API end to end, including a
 * write after protection that must kill a forked child with SIGSEGV. */
#define _POSIX_C_SOURCE 200809L
#include <pmalloc/pmalloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  pmalloc_pool *pool = pmalloc_create_pool("consumer-c", PMALLOC_RO);
  char *motd;
  pid_t child;
  int status = 0;
  if (pool == NULL) return 1;
  motd = pstrdup(pool, "protected message of the day");
  if (motd == NULL || pmalloc_protect_pool(pool) != 0) return 1;
  fflush(stdout);
  child = fork();
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);
    motd[0] = 'X';
    _exit(0);
  }
  waitpid(child, &status, 0);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV || strcmp(motd, "protected message of the day") != 0) {
    puts("consumer-c: the write was not stopped");
    return 1;
  }
  pmalloc_stats_print(stdout, "json");
  pmalloc_destroy_pool(pool);
  puts("consumer-c: ok");
  return 0;
}
