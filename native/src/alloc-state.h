/*
 * alloc-state.h — the allocator's state (stored in the heap header at alloc_state_offset)
 * and the chunk format. Both are a contract with src/heap/ (TypeScript reader) and saved
 * images; see docs/heap-layout.md. Only appended to; bump IMGDUMP_ALLOC_STATE_VERSION when
 * anything moves.
 *
 * Chunks (boundary tags, after dlmalloc): every chunk starts 16-byte aligned with
 *   u64 prev_size   size of the previous chunk, valid only when PINUSE is clear
 *                   (otherwise the last 8 bytes of the previous chunk's payload)
 *   u64 head        size (multiple of 16, >= 32) | PINUSE | CINUSE | QUICK
 * and its payload at +16. Chunks tile [first_chunk, top) exactly; the top chunk (the unused
 * tail up to `committed`) starts at `top`, and the emulated break is top + 16 so that the
 * saved range covers the top chunk's head and the last chunk's payload tail.
 */
#ifndef IMGDUMP_ALLOC_STATE_H
#define IMGDUMP_ALLOC_STATE_H

#include <stddef.h>
#include <stdint.h>
#include "heap-header.h"

#define IMGDUMP_ALLOC_STATE_VERSION 1u

#define CH_PINUSE 1ull /* the previous chunk is in use (or in a quick list) */
#define CH_CINUSE 2ull /* this chunk is in use (or in a quick list) */
#define CH_QUICK 4ull  /* this chunk is free, parked in a quick list (not coalesced yet) */
#define CH_FLAGS 15ull

#define CH_HDR 16ull     /* prev_size + head */
#define CH_MIN 32ull     /* smallest chunk: header + fd + bk */
#define CH_OVERHEAD 8ull /* usable = size - 8: the payload runs on into the next prev_size */

#define NQUICK 64       /* quick lists for chunk sizes 32 .. QUICK_MAX, indexed size >> 4 */
#define QUICK_MAX 1008ull
#define NSMALL 64       /* exact-size bins for sizes < 1024, indexed size >> 4 */
#define NBINS 256       /* small bins, then 4 bins per power of two from 1024 up */
#define LARGE_MIN 1024ull

struct chunk {
  uint64_t prev_size;
  uint64_t head;
  struct chunk *fd; /* free chunks only: doubly linked bin list, NULL-terminated */
  struct chunk *bk;
};

struct imgdump_alloc_state {
  uint32_t version;      /*    0 IMGDUMP_ALLOC_STATE_VERSION */
  uint32_t debug;        /*    4 per-run: IMGDUMP_DEBUG set: 1 + a private dup of stderr */
  uint64_t first_chunk;  /*    8 address of the first chunk (base + header_size) */
  uint64_t top;          /*   16 address of the top chunk; header brk = top + 16 */
  uint64_t clean_from;   /*   24 bytes at and above this address (below committed) are zero */
  uint64_t adopted_end;  /*   32 end of the part mapped from an image file (0 when fresh) */
  uint64_t quick_bytes;  /*   40 bytes parked in quick lists */
  uint64_t in_use_bytes; /*   48 bytes of chunks handed out (chunk sizes) */
  uint64_t peak_in_use;  /*   56 */
  uint64_t n_malloc;     /*   64 allocations served (all entry points) */
  uint64_t n_free;       /*   72 */
  uint64_t n_grow;       /*   80 commits (mprotect calls that grew the writable part) */
  uint64_t bitmap[NBINS / 64];   /*   88 bit i set when bins[i] is non-empty */
  struct chunk *quick[NQUICK];   /*  120 singly linked through fd, LIFO */
  struct chunk *bins[NBINS];     /*  632 */
  struct imgdump_tcache *tcaches; /* 2680 registry of the live threads' caches (in the heap) */
  uint64_t reserved;             /* 2688 */
};                               /* 2696 */

_Static_assert(sizeof(struct imgdump_alloc_state) == 2696, "allocator state layout is a contract");

/* Per-thread caches, used only while the process is multi-threaded: small chunks freed by
 * a thread stay marked in use and go to its own cache (a heap chunk), reused without the
 * lock. A walk of a live multi-threaded heap sees them as used; imgdump__alloc_lock (save,
 * heap walk) flushes the caller's cache, thread exit and fork flush theirs, so a saved heap
 * never holds cached chunks. */
#ifndef TC_MAX_SIZE
#define TC_MAX_SIZE 1008ull /* = QUICK_MAX: a spilled chunk always has a quick list */
#endif
#define TC_CLASSES (TC_MAX_SIZE / 16 + 1) /* indexed size >> 4 */
_Static_assert(TC_MAX_SIZE <= QUICK_MAX, "a spilled cached chunk needs a quick list");
/* Spilling sends chunks through the shared quick lists to other threads, and a chunk
 * that changes threads leaves its cache lines shared with the old owner's neighbours
 * (false sharing: measured, ~30 % of the 4-thread churn's CPU time; docs/allocator.md). So caches are
 * generous, bounded in bytes: a class spills TC_BATCH chunks once it holds more than
 * TC_CLASS_BYTES, or the whole cache more than TC_BYTES. */
#ifndef TC_CLASS_BYTES
#define TC_CLASS_BYTES (64u << 10)
#endif
#ifndef TC_BYTES
#define TC_BYTES (1u << 20)
#endif
#define TC_BATCH 32u /* chunks moved per refill or spill (one lock) */
#define TC_PEND 8u   /* frees deferred (ring) so the chunk head is prefetched, not waited for */

struct imgdump_tcache {
  struct imgdump_tcache *next; /* registry link */
  uint64_t n_malloc, n_free;   /* not yet merged into the state's counters */
  uint64_t bytes;              /* bytes of chunks held */
  uint64_t npend;              /* frees deferred so far; pend[npend % TC_PEND] is the oldest */
  void *pend[TC_PEND];         /* freed payloads not yet looked at (still marked in use) */
  uint32_t count[TC_CLASSES];
  struct chunk *head[TC_CLASSES]; /* linked through fd; bk = this cache (double-free key) */
};

/* Offset of the allocator state in the header and the header size (first chunk offset). */
#define IMGDUMP_ALLOC_STATE_OFFSET ((uint64_t)sizeof(struct imgdump_heap_header))
#define IMGDUMP_HEADER_SIZE 8192u

_Static_assert(IMGDUMP_ALLOC_STATE_OFFSET % 16 == 0, "state alignment");
_Static_assert(IMGDUMP_ALLOC_STATE_OFFSET + sizeof(struct imgdump_alloc_state) <= IMGDUMP_HEADER_SIZE,
               "header fits");

static inline struct imgdump_alloc_state *alloc_state(struct imgdump_heap_header *h) {
  return (struct imgdump_alloc_state *)((char *)h + h->alloc_state_offset);
}

/* ---- heap-segment.c → alloc.c seam ---- */

/* Make the heap writable up to at least `end` (grown in big steps). Called WITHOUT the
 * allocator lock (it is a system call); the caller publishes *new_committed under the
 * lock (committed only grows). Returns 0 or -ENOMEM (end beyond the reservation). */
int imgdump__heap_commit(struct imgdump_heap_header *h, uint64_t end, uint64_t *new_committed);

/* Initialise a fresh allocator state (first chunk, empty bins, top) in a new header. */
void imgdump__alloc_init(struct imgdump_heap_header *h);
/* After adoption from an image: rebuild the per-run parts of the state. */
void imgdump__alloc_adopt(struct imgdump_heap_header *h, uint64_t mapped_end);

/* Allocation inside the library (symbol copies etc.) — same heap, same lock rules. */
void *imgdump__malloc(size_t n);
void imgdump__free(void *p);

/* Walk every chunk from first_chunk to top, checking boundary tags and the bin and quick
 * lists; fn (may be NULL) sees each chunk's payload, usable size and whether it is a live
 * allocation. Returns 0, -EINVAL when an invariant is broken, or fn's non-zero result. */
int imgdump__heap_walk(int (*fn)(void *payload, size_t usable, int used, void *arg), void *arg);

/* The heap pointer once initialised (fast path), NULL before. */
extern struct imgdump_heap_header *imgdump__heap_ptr __attribute__((visibility("hidden")));

#endif
