/*
 * alloc-exhaust.c — run with a small IMGDUMP_HEAP_SIZE: allocations past the reservation
 * fail with NULL + ENOMEM (no crash), freeing makes room again, overflowing requests fail
 * cleanly, and the heap stays walkable.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/alloc-state.h"
#include "../src/internal.h"
#include "test-support.h"

#define MAXB 100000

static void *blocks[MAXB];

int main(void) {
  struct imgdump_heap_header *h = imgdump__heap();
  CHECK(h, "no heap: %s", strerror(errno));
  size_t n = 0, bytes = 0;
  errno = 0;
  for (;;) {
    CHECK(n < MAXB, "never exhausted a %llu-byte heap", (unsigned long long)h->reserve);
    size_t want = 1000 + (n % 7) * 3000;
    void *p = malloc(want);
    if (!p) {
      CHECK(errno == ENOMEM, "errno %d after exhaustion", errno);
      break;
    }
    CHECK((uint64_t)p + want <= h->base + h->reserve, "block beyond the reservation");
    memset(p, 0xab, want);
    blocks[n++] = p;
    bytes += want;
  }
  CHECK(bytes > h->reserve / 2, "only %zu of %llu bytes allocated", bytes, (unsigned long long)h->reserve);
  errno = 0;
  CHECK(malloc(h->reserve) == NULL && errno == ENOMEM, "malloc(reserve)");
  volatile size_t huge = SIZE_MAX - 8, half = SIZE_MAX / 2; /* opaque to the optimiser */
  errno = 0;
  CHECK(malloc(huge) == NULL && errno == ENOMEM, "malloc(SIZE_MAX-8)");
  errno = 0;
  CHECK(calloc(half, 3) == NULL && errno == ENOMEM, "calloc overflow");
  errno = 0;
  CHECK(realloc(blocks[0], h->reserve) == NULL && errno == ENOMEM, "realloc past the end");
  CHECK(((unsigned char *)blocks[0])[999] == 0xab, "failed realloc lost the block");
  void *q;
  CHECK(posix_memalign(&q, 4096, h->reserve) == ENOMEM, "posix_memalign past the end");
  CHECK(imgdump__heap_walk(NULL, NULL) == 0, "walk after exhaustion");
  for (size_t i = 0; i < n; i += 2) free(blocks[i]), blocks[i] = NULL;
  size_t again = 0;
  while (again < n / 4) {
    void *p = malloc(1000);
    CHECK(p, "malloc after freeing half failed at %zu", again);
    again++;
  }
  CHECK(imgdump__heap_walk(NULL, NULL) == 0, "walk after reuse");
  printf("ok blocks=%zu bytes=%zu reserve=%llu\n", n, bytes, (unsigned long long)h->reserve);
  return 0;
}
