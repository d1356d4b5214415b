/* test-support.h — shared helpers of the C tests, built and run by test/alloc. */
#ifndef IMGDUMP_TEST_SUPPORT_H
#define IMGDUMP_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
      abort();                                                             \
    }                                                                      \
  } while (0)

/* xorshift64*: reproducible per seed. */
static inline uint64_t rnd(uint64_t *s) {
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static inline unsigned char pattern(uint64_t id, size_t i) {
  return (unsigned char)((id * 131 + i * 7 + (i >> 8)) & 0xff);
}

/* The heap range as the library reports it (header at base). */
static inline int in_heap(const void *p, uint64_t base, uint64_t reserve) {
  return (uint64_t)p >= base && (uint64_t)p < base + reserve;
}

#endif
