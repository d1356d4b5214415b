#include "scratch.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int imgdump__scratch_open(struct scratch *s, size_t size) {
  size = (size + 4095) & ~(size_t)4095;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return -errno;
  s->base = p;
  s->size = size;
  s->used = 0;
  return 0;
}

void *imgdump__scratch_alloc(struct scratch *s, size_t n) {
  size_t start = (s->used + 15) & ~(size_t)15;
  if (start > s->size || n > s->size - start) return NULL;
  s->used = start + n;
  return s->base + start; /* fresh anonymous pages are zero and never reused */
}

char *imgdump__scratch_strdup(struct scratch *s, const char *str) {
  size_t n = strlen(str) + 1;
  char *p = imgdump__scratch_alloc(s, n);
  if (p) memcpy(p, str, n);
  return p;
}

void imgdump__scratch_close(struct scratch *s) {
  if (s->base) munmap(s->base, s->size);
  s->base = NULL;
  s->size = s->used = 0;
}
