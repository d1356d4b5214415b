/*
 * alloc-core.h — the allocator core's seam to its entry points (alloc-api.c, api-*.c).
 * Functions named chunk_* / take_* require the allocator lock.
 */
#ifndef IMGDUMP_ALLOC_CORE_H
#define IMGDUMP_ALLOC_CORE_H

#include "alloc-state.h"
#include "internal.h"

#define HIDDEN __attribute__((visibility("hidden")))

static inline uint64_t chunk_size(const struct chunk *c) { return c->head & ~CH_FLAGS; }
static inline struct chunk *chunk_at(const struct chunk *c, int64_t off) {
  return (struct chunk *)((char *)c + off);
}
static inline struct chunk *mem_to_chunk(const void *p) { return (struct chunk *)((char *)p - CH_HDR); }
static inline void *chunk_to_mem(struct chunk *c) { return (char *)c + CH_HDR; }

/* Chunk size for a request of n bytes; 0 when n is too large to represent. */
static inline uint64_t request_size(size_t n) {
  if (n > (1ull << 62)) return 0;
  uint64_t s = ((uint64_t)n + CH_OVERHEAD + 15) & ~15ull;
  return s < CH_MIN ? CH_MIN : s;
}

#include <sys/single_threaded.h>

HIDDEN void imgdump__lock_slow(uint32_t *w);
HIDDEN void imgdump__unlock_wake(uint32_t *w);
HIDDEN void imgdump__lock_reentered(void) __attribute__((noreturn));

/* The allocator lock (the header's lock word): a futex mutex, two plain stores while the
 * process is single-threaded (glibc's __libc_single_threaded). Inline: it is on every path. */
static inline void imgdump__lock_word(uint32_t *w) {
  if (__libc_single_threaded) {
    if (__builtin_expect(*w != 0, 0)) imgdump__lock_reentered();
    *w = 1;
    return;
  }
  uint32_t z = 0;
  if (!__atomic_compare_exchange_n(w, &z, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) imgdump__lock_slow(w);
}

static inline void imgdump__unlock_word(uint32_t *w) {
  if (__libc_single_threaded) {
    *w = 0;
    return;
  }
  if (__atomic_exchange_n(w, 0, __ATOMIC_RELEASE) == 2) imgdump__unlock_wake(w);
}

/* A chunk of exactly >= nb bytes marked in use, or NULL with *need = the address up to
 * which the heap must be committed for the request to fit at top. */
HIDDEN struct chunk *imgdump__take_chunk(struct imgdump_heap_header *h, uint64_t nb, uint64_t *need);
HIDDEN void imgdump__chunk_free(struct imgdump_heap_header *h, struct chunk *c);
HIDDEN void imgdump__chunk_release(struct imgdump_heap_header *h, struct chunk *c);
HIDDEN void imgdump__chunk_trim(struct imgdump_heap_header *h, struct chunk *c, uint64_t nb);
HIDDEN void imgdump__set_top(struct imgdump_heap_header *h, struct chunk *t);
HIDDEN void imgdump__quick_consolidate(struct imgdump_heap_header *h);
HIDDEN int imgdump__chunk_resize(struct imgdump_heap_header *h, struct chunk *c, uint64_t nb, uint64_t *need);
HIDDEN void *imgdump__alloc_aligned_nocache(size_t n, size_t align);
HIDDEN void imgdump__tcache_init(void);
HIDDEN void *imgdump__tcache_alloc(struct imgdump_heap_header *h, uint64_t nb);
HIDDEN int imgdump__tcache_free(struct imgdump_heap_header *h, struct chunk *c, uint64_t size);
HIDDEN int imgdump__tcache_defer(struct imgdump_heap_header *h, void *p);
HIDDEN void imgdump__tcache_release_self(void);
HIDDEN void imgdump__tcache_fork_child(struct imgdump_heap_header *h);
HIDDEN void imgdump__alloc_committed(struct imgdump_heap_header *h, uint64_t to);

#endif
