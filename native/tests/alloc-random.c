/*
 * alloc-random.c — randomized malloc/calloc/realloc/memalign/free sequence against a shadow
 * model: every block inside the heap, aligned, usable size >= requested, calloc zeroed,
 * contents preserved across realloc, no two live blocks overlapping, and the heap walk
 * reporting exactly the live blocks.  usage: alloc-random SEED OPS
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/alloc-state.h"
#include "../src/internal.h"
#include "test-support.h"

#define SLOTS 2048

struct block {
  unsigned char *p;
  size_t n;
  size_t align;
  uint64_t id;
};

static struct block live[SLOTS];
static uint64_t base, reserve;

static size_t pick_size(uint64_t *s) {
  uint64_t r = rnd(s) % 1000;
  if (r < 700) return rnd(s) % 256;
  if (r < 950) return rnd(s) % 8192;
  if (r < 995) return rnd(s) % (256 << 10);
  return rnd(s) % (4 << 20);
}

/* Big blocks get their ends and every 61st byte patterned: enough to catch a lost or
 * overlapping copy without spending the run in byte loops. */
static inline int sampled(size_t i, size_t n) {
  return n <= 65536 || i < 4096 || i + 4096 >= n || i % 61 == 0;
}

static void fill(struct block *b) {
  for (size_t i = 0; i < b->n; i++)
    if (sampled(i, b->n)) b->p[i] = pattern(b->id, i);
}

static void verify(const struct block *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (sampled(i, b->n)) CHECK(b->p[i] == pattern(b->id, i), "block %p id %llu byte %zu of %zu changed", (void *)b->p,
          (unsigned long long)b->id, i, b->n);
}

static void check_block(const struct block *b) {
  CHECK(in_heap(b->p, base, reserve), "%p outside the heap", (void *)b->p);
  CHECK(((uintptr_t)b->p % b->align) == 0, "%p not aligned to %zu", (void *)b->p, b->align);
  CHECK(malloc_usable_size(b->p) >= b->n, "usable %zu < %zu", malloc_usable_size(b->p), b->n);
}

static int cmp_block(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const struct block *)a)->p, y = (uintptr_t)((const struct block *)b)->p;
  return x < y ? -1 : x > y;
}

struct walk_state {
  struct block *sorted;
  size_t n, i;
};

static int on_chunk(void *payload, size_t usable, int used, void *arg) {
  struct walk_state *w = arg;
  if (!used) return 0;
  CHECK(w->i < w->n, "walk found more live chunks than the %zu allocated (extra %p)", w->n, payload);
  CHECK(w->sorted[w->i].p == payload, "walk chunk %p, expected %p", payload, (void *)w->sorted[w->i].p);
  CHECK(usable >= w->sorted[w->i].n, "walk usable %zu < %zu", usable, w->sorted[w->i].n);
  w->i++;
  return 0;
}

/* No overlap (sorted by address, each block ends before the next starts) and the walk
 * equals the live set. */
static void check_all(void) {
  static struct block sorted[SLOTS];
  size_t n = 0;
  for (int i = 0; i < SLOTS; i++)
    if (live[i].p) sorted[n++] = live[i];
  qsort(sorted, n, sizeof sorted[0], cmp_block);
  for (size_t i = 1; i < n; i++)
    CHECK(sorted[i - 1].p + malloc_usable_size(sorted[i - 1].p) <= sorted[i].p, "%p overlaps %p",
          (void *)sorted[i - 1].p, (void *)sorted[i].p);
  struct walk_state w = {sorted, n, 0};
  int rc = imgdump__heap_walk(on_chunk, &w);
  CHECK(rc == 0, "heap walk failed: %d", rc);
  CHECK(w.i == n, "walk found %zu live chunks, %zu allocated", w.i, n);
}

static void do_alloc(struct block *b, uint64_t *s, uint64_t id) {
  size_t n = pick_size(s);
  int kind = (int)(rnd(s) % 10);
  b->id = id, b->n = n, b->align = 16;
  if (kind == 0) {
    size_t m = n / 8 + 1;
    b->n = m * 8;
    b->p = calloc(m, 8);
    CHECK(b->p, "calloc(%zu, 8) failed", m);
    for (size_t i = 0; i < b->n; i++) CHECK(b->p[i] == 0, "calloc byte %zu is %d", i, b->p[i]);
  } else if (kind == 1) {
    b->align = (size_t)1 << (4 + rnd(s) % 10); /* 16 .. 8192 */
    int which = (int)(rnd(s) % 3);
    void *p = NULL;
    if (which == 0) CHECK(posix_memalign(&p, b->align, n) == 0, "posix_memalign %zu %zu", b->align, n);
    else if (which == 1) p = memalign(b->align, n);
    else p = aligned_alloc(b->align, n);
    b->p = p;
    CHECK(b->p, "aligned allocation %zu/%zu failed", b->align, n);
  } else {
    b->p = malloc(n);
    CHECK(b->p, "malloc(%zu) failed", n);
  }
  check_block(b);
  fill(b);
}

static void do_realloc(struct block *b, uint64_t *s) {
  size_t n = pick_size(s);
  verify(b, b->n);
  unsigned char *q = realloc(b->p, n ? n : 1);
  CHECK(q, "realloc(%zu) failed", n);
  size_t keep = b->n < n ? b->n : n;
  b->p = q, b->align = 16;
  verify(b, keep);
  b->n = n ? n : 1;
  check_block(b);
  fill(b);
}

int main(int argc, char **argv) {
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1, s = seed * 0x9e3779b97f4a7c15ull + 1;
  long ops = argc > 2 ? atol(argv[2]) : 200000;
  struct imgdump_heap_header *h = imgdump__heap();
  CHECK(h, "no heap: %s", strerror(errno));
  base = h->base, reserve = h->reserve;
  for (long op = 0; op < ops; op++) {
    struct block *b = &live[rnd(&s) % SLOTS];
    if (!b->p) do_alloc(b, &s, (uint64_t)op);
    else if (rnd(&s) % 3 == 0) do_realloc(b, &s);
    else {
      verify(b, b->n);
      free(b->p);
      b->p = NULL;
    }
    if (op % 20000 == 0) check_all();
  }
  check_all();
  for (int i = 0; i < SLOTS; i++)
    if (live[i].p) verify(&live[i], live[i].n), free(live[i].p), live[i].p = NULL;
  check_all();
  CHECK(malloc_usable_size(NULL) == 0, "usable(NULL)");
  printf("ok seed=%llu ops=%ld base=0x%llx reserve=%llu brk=0x%llx\n", (unsigned long long)seed, ops,
         (unsigned long long)h->base, (unsigned long long)h->reserve, (unsigned long long)h->brk);
  return 0;
}
