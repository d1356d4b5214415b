/*
 * alloc-bench.c — allocator workloads for bench/alloc/run.js. One workload per process, so
 * the peak RSS printed (getrusage ru_maxrss) is the workload's own.
 *   usage: alloc-bench churn|cons|realloc|threads [scale]
 * Prints: "<workload> ops=<n> seconds=<wall> cpu=<user+sys> maxrss_kb=<k> check=<x>".
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline uint64_t rnd(uint64_t *s) {
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Small-object churn: a working set of 20000 blocks of 8..512 bytes, replaced at random. */
static uint64_t churn(long ops, uint64_t seed) {
  enum { SLOTS = 20000 };
  void **slot = calloc(SLOTS, sizeof *slot);
  uint64_t s = seed, check = 0;
  for (long i = 0; i < ops; i++) {
    uint64_t r = rnd(&s);
    size_t k = r % SLOTS;
    free(slot[k]);
    size_t n = 8 + (r >> 32) % 505;
    char *p = malloc(n);
    p[0] = (char)i, p[n - 1] = (char)i;
    check += (uintptr_t)p & 0xff;
    slot[k] = p;
  }
  for (size_t k = 0; k < SLOTS; k++) free(slot[k]);
  free(slot);
  return check;
}

/* Lisp-like: cons cells (16 bytes) and short strings; build lists, keep some, drop most. */
struct cons { void *car; struct cons *cdr; };

static uint64_t cons_work(long ops, uint64_t seed) {
  enum { KEEP = 64 };
  struct cons *kept[KEEP] = {0};
  uint64_t s = seed, check = 0;
  long made = 0;
  while (made < ops) {
    long len = 1 + (long)(rnd(&s) % 2000);
    struct cons *list = NULL;
    for (long i = 0; i < len; i++) {
      struct cons *c = malloc(sizeof *c);
      if (i % 8 == 0) {
        size_t n = 8 + rnd(&s) % 40;
        char *str = malloc(n);
        memset(str, 'a', n - 1), str[n - 1] = 0;
        c->car = str;
      } else {
        c->car = NULL;
      }
      c->cdr = list;
      list = c;
    }
    made += len;
    size_t k = rnd(&s) % KEEP; /* this list survives until another replaces it */
    struct cons *dead = kept[k];
    kept[k] = list;
    while (dead) {
      struct cons *n = dead->cdr;
      check += (uintptr_t)dead & 0xff;
      free(dead->car);
      free(dead);
      dead = n;
    }
  }
  for (size_t k = 0; k < KEEP; k++)
    while (kept[k]) {
      struct cons *n = kept[k]->cdr;
      free(kept[k]->car), free(kept[k]);
      kept[k] = n;
    }
  return check;
}

/* Large realloc growth: vectors grown by 1.5x up to 32 MiB, small allocations in between. */
static uint64_t realloc_work(long ops, uint64_t seed) {
  uint64_t s = seed, check = 0;
  long done = 0;
  while (done < ops) {
    enum { V = 8 };
    char *v[V] = {0};
    size_t cap[V] = {0};
    void *small[256] = {0};
    for (int step = 0; step < 40; step++)
      for (int i = 0; i < V; i++) {
        size_t n = cap[i] ? cap[i] + cap[i] / 2 : 4096;
        if (n > (32u << 20)) continue;
        v[i] = realloc(v[i], n);
        memset(v[i] + cap[i], i, n - cap[i]); /* touch the new part like a push_back loop */
        cap[i] = n;
        check += (uintptr_t)v[i][n - 1];
        size_t k = rnd(&s) % 256;
        free(small[k]);
        small[k] = malloc(16 + rnd(&s) % 200);
        done++;
      }
    for (int i = 0; i < V; i++) free(v[i]);
    for (int k = 0; k < 256; k++) free(small[k]);
  }
  return check;
}

struct targ { long ops; uint64_t seed; uint64_t check; };
static void *thread_main(void *a) {
  struct targ *t = a;
  t->check = churn(t->ops, t->seed);
  return NULL;
}

static uint64_t threads_work(long ops, uint64_t seed) {
  pthread_t th[4];
  struct targ a[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (struct targ){ops / 4, seed + (uint64_t)i, 0};
    pthread_create(&th[i], NULL, thread_main, &a[i]);
  }
  uint64_t check = 0;
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL), check += a[i].check;
  return check;
}

int main(int argc, char **argv) {
  const char *w = argc > 1 ? argv[1] : "churn";
  double scale = argc > 2 ? atof(argv[2]) : 1.0;
  long ops;
  uint64_t check;
  double t0 = now();
  if (!strcmp(w, "churn")) check = churn(ops = (long)(20e6 * scale), 1);
  else if (!strcmp(w, "cons")) check = cons_work(ops = (long)(20e6 * scale), 2);
  else if (!strcmp(w, "realloc")) check = realloc_work(ops = (long)(3000 * scale), 3);
  else if (!strcmp(w, "threads")) check = threads_work(ops = (long)(20e6 * scale), 4);
  else return fprintf(stderr, "unknown workload %s\n", w), 2;
  double t = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec * 1e-6;
  printf("%s ops=%ld seconds=%.4f cpu=%.4f maxrss_kb=%ld check=%llu\n", w, ops, t, cpu, ru.ru_maxrss,
         (unsigned long long)check);
  return 0;
}
