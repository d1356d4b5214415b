/*
 * scratch.h — a bump arena in its own anonymous mapping, outside the heap segment.
 * A save must not allocate from the heap between reporting the break and writing it (the
 * written allocator state must match the reported break), and start-up code runs inside
 * the first malloc; both use this instead.
 */
#ifndef IMGDUMP_SCRATCH_H
#define IMGDUMP_SCRATCH_H

#include <stddef.h>

struct scratch {
  char *base;
  size_t size;
  size_t used;
};

/* Map `size` bytes (rounded to pages). Returns 0 or -errno. */
int imgdump__scratch_open(struct scratch *s, size_t size);
/* 16-byte aligned, zeroed; NULL when the arena is exhausted. */
void *imgdump__scratch_alloc(struct scratch *s, size_t n);
char *imgdump__scratch_strdup(struct scratch *s, const char *str);
void imgdump__scratch_close(struct scratch *s);

#endif
