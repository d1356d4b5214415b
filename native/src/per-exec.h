/*
 * per-exec.h — process-local state in libimgdump's own statics.
 *
 * The library's .data and .bss are part of the executable's writable data, so they are
 * saved and come back in the image as they were at save time: a static "initialised" flag
 * or a pointer to an anonymous mapping would be stale after restore (even with the same
 * PID, after IMGDUMP_EXEC). Every such block carries a token; when it differs from this
 * exec's AT_RANDOM bytes (16 random bytes the kernel gives every execve) the block is from
 * another run and is reset.
 */
#ifndef IMGDUMP_PER_EXEC_H
#define IMGDUMP_PER_EXEC_H

#include <string.h>
#include <sys/auxv.h>

struct per_exec_token {
  unsigned char bytes[16];
};

/* 1 (and the token adopted) when `t` was not set by this exec: the caller resets its state. */
static inline int per_exec_stale(struct per_exec_token *t) {
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  if (!r) return 0;
  if (!memcmp(t->bytes, r, sizeof t->bytes)) return 0;
  memcpy(t->bytes, r, sizeof t->bytes);
  return 1;
}

#endif
