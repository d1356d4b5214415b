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

HIDDEN void imgdump__lock_word(uint32_t *w);
HIDDEN void imgdump__unlock_word(uint32_t *w);

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
HIDDEN void imgdump__tcache_release_self(void);
HIDDEN void imgdump__tcache_fork_child(struct imgdump_heap_header *h);
HIDDEN void imgdump__alloc_committed(struct imgdump_heap_header *h, uint64_t to);

#endif
