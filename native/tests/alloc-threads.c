/*
 * alloc-threads.c — four threads churn (malloc/calloc/realloc/free of patterned blocks)
 * concurrently; each checks its own blocks; at the end the heap walk must equal the union of
 * the blocks still held.  usage: alloc-threads OPS_PER_THREAD
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/alloc-state.h"
#include "../src/internal.h"
#include "test-support.h"

#define THREADS 4
#define SLOTS 512

struct worker {
  pthread_t tid;
  uint64_t seed;
  long ops;
  unsigned char *p[SLOTS];
  size_t n[SLOTS];
  uint64_t id[SLOTS];
};

static struct worker workers[THREADS];

static void verify(struct worker *w, int i, size_t n) {
  for (size_t k = 0; k < n; k++)
    CHECK(w->p[i][k] == pattern(w->id[i], k), "thread block changed at %zu", k);
}

static void *churn(void *arg) {
  struct worker *w = arg;
  uint64_t s = w->seed;
  for (long op = 0; op < w->ops; op++) {
    int i = (int)(rnd(&s) % SLOTS);
    size_t n = rnd(&s) % 100 < 95 ? rnd(&s) % 512 : rnd(&s) % 65536;
    if (!w->p[i]) {
      w->p[i] = (op & 3) == 0 ? calloc(1, n + 1) : malloc(n + 1);
      CHECK(w->p[i], "alloc failed");
      if ((op & 3) == 0)
        for (size_t k = 0; k <= n; k++) CHECK(w->p[i][k] == 0, "calloc not zero");
    } else if (rnd(&s) % 4 == 0) {
      size_t keep = w->n[i] < n + 1 ? w->n[i] : n + 1;
      verify(w, i, w->n[i]);
      w->p[i] = realloc(w->p[i], n + 1);
      CHECK(w->p[i], "realloc failed");
      verify(w, i, keep);
    } else {
      verify(w, i, w->n[i]);
      free(w->p[i]);
      w->p[i] = NULL;
      continue;
    }
    w->n[i] = n + 1;
    w->id[i] = (uint64_t)op * THREADS + (uint64_t)(w - workers);
    for (size_t k = 0; k <= n; k++) w->p[i][k] = pattern(w->id[i], k);
  }
  return NULL;
}

static size_t held, seen;

static int on_chunk(void *payload, size_t usable, int used, void *arg) {
  (void)usable, (void)arg;
  if (!used) return 0;
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < SLOTS; i++)
      if (workers[t].p[i] == payload) {
        seen++;
        return 0;
      }
  return 0; /* libc's own allocations (stdio, thread stacks' TLS) are live too */
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 200000;
  CHECK(imgdump__heap(), "no heap");
  for (int t = 0; t < THREADS; t++) {
    workers[t].seed = 0x1234567ull * (uint64_t)(t + 1);
    workers[t].ops = ops;
    CHECK(pthread_create(&workers[t].tid, NULL, churn, &workers[t]) == 0, "pthread_create");
  }
  for (int t = 0; t < THREADS; t++) pthread_join(workers[t].tid, NULL);
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < SLOTS; i++)
      if (workers[t].p[i]) held++;
  CHECK(imgdump__heap_walk(on_chunk, NULL) == 0, "walk failed");
  CHECK(seen == held, "walk saw %zu of %zu held blocks", seen, held);
  printf("ok threads=%d ops=%ld held=%zu\n", THREADS, ops, held);
  return 0;
}
