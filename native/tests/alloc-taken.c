/*
 * alloc-taken.c — run with IMGDUMP_HEAP_BASE pointing at this (non-PIE) executable's own
 * pages: the reservation must fail cleanly — malloc returns NULL with ENOMEM, the heap
 * reports EEXIST — and the program keeps running. Output via write(2): stdio would malloc.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/internal.h"

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

int main(void) {
  errno = 0;
  void *p = malloc(100);
  int e1 = errno;
  errno = 0;
  struct imgdump_heap_header *h = imgdump__heap();
  int e2 = errno;
  if (p || e1 != ENOMEM) return say("malloc did not fail with ENOMEM\n"), 1;
  if (h || e2 != EEXIST) return say("imgdump__heap did not fail with EEXIST\n"), 1;
  say("ok taken\n");
  return 0;
}
