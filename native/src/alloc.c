/*
 * alloc.c — the allocator core: boundary-tag chunks (dlmalloc's layout), quick lists for
 * small sizes (glibc's fastbins: freed small chunks parked uncoalesced, LIFO), exact bins
 * below 1 KiB, four bins per power of two above (TLSF-style), a bitmap to find the next
 * non-empty bin, and the top chunk carved from the emulated break. All state is in the heap
 * header (alloc-state.h), so a dump of the heap is a consistent allocator.
 *
 * One lock (the header's lock word): a futex mutex, reduced to plain stores while the
 * process is single-threaded (glibc's __libc_single_threaded). No system call is made while
 * it is held: growth unlocks, commits, relocks and retries.
 */
#include <errno.h>
#include <string.h>

#include "alloc-core.h"
#include "os.h"

/* ---- the lock ---- */

void imgdump__lock_slow(uint32_t *w) {
  for (int i = 0; i < 64; i++) {
    __builtin_ia32_pause();
    uint32_t z = 0;
    if (__atomic_load_n(w, __ATOMIC_RELAXED) == 0 &&
        __atomic_compare_exchange_n(w, &z, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
      return;
  }
  /* Drepper's "futexes are tricky" mutex: 2 means "locked, maybe waiters". */
  while (__atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE) != 0) imgdump__os_futex_wait(w, 2);
}

void imgdump__unlock_wake(uint32_t *w) { imgdump__os_futex_wake(w, 1); }

void imgdump__lock_reentered(void) {
  imgdump__os_stderr("imgdump: allocator re-entered (malloc from a signal handler or hook?)\n");
  __builtin_trap();
}

void imgdump__alloc_lock(void) {
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return;
  imgdump__tcache_release_self(); /* a save writes no chunk hidden in thread-local state */
  imgdump__lock_word(&h->lock);
}

void imgdump__alloc_unlock(void) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (h) imgdump__unlock_word(&h->lock);
}

/* ---- bins ---- */

static inline unsigned bin_index(uint64_t size) {
  if (size < LARGE_MIN) return (unsigned)(size >> 4);
  unsigned fl = 63u - (unsigned)__builtin_clzll(size);
  unsigned idx = NSMALL + (fl - 10) * 4 + (unsigned)((size >> (fl - 2)) & 3);
  return idx < NBINS ? idx : NBINS - 1;
}

static void bin_insert(struct imgdump_alloc_state *st, struct chunk *c, uint64_t size) {
  unsigned i = bin_index(size);
  struct chunk *f = st->bins[i];
  c->fd = f;
  c->bk = NULL;
  if (f) f->bk = c;
  st->bins[i] = c;
  st->bitmap[i >> 6] |= 1ull << (i & 63);
}

static void bin_unlink(struct imgdump_alloc_state *st, struct chunk *c, uint64_t size) {
  unsigned i = bin_index(size);
  if (c->bk) c->bk->fd = c->fd;
  else st->bins[i] = c->fd;
  if (c->fd) c->fd->bk = c->bk;
  if (!st->bins[i]) st->bitmap[i >> 6] &= ~(1ull << (i & 63));
}

/* First non-empty bin with index >= i, or NBINS. */
static unsigned bin_next(const struct imgdump_alloc_state *st, unsigned i) {
  while (i < NBINS) {
    uint64_t m = st->bitmap[i >> 6] & (~0ull << (i & 63));
    if (m) return (i & ~63u) + (unsigned)__builtin_ctzll(m);
    i = (i & ~63u) + 64;
  }
  return NBINS;
}

/* ---- chunk transitions ---- */

void imgdump__set_top(struct imgdump_heap_header *h, struct chunk *t) {
  struct imgdump_alloc_state *st = alloc_state(h);
  st->top = (uint64_t)t;
  t->head = (h->committed - (uint64_t)t) | CH_PINUSE;
  h->brk = (uint64_t)t + CH_HDR;
  if (st->clean_from < h->brk) st->clean_from = h->brk;
}

/* Return an in-use (CINUSE, not QUICK) chunk to the free structure: merge with free
 * neighbours (boundary tags), fold into top when it borders it, else bin it. */
void imgdump__chunk_release(struct imgdump_heap_header *h, struct chunk *c) {
  struct imgdump_alloc_state *st = alloc_state(h);
  uint64_t size = chunk_size(c);
  struct chunk *next = chunk_at(c, size);
  if (!(c->head & CH_PINUSE)) {
    struct chunk *prev = chunk_at(c, -(int64_t)c->prev_size);
    bin_unlink(st, prev, c->prev_size);
    size += c->prev_size;
    c = prev;
  }
  if ((uint64_t)next == st->top) {
    imgdump__set_top(h, c);
    return;
  }
  if (!(next->head & CH_CINUSE)) {
    uint64_t ns = chunk_size(next);
    bin_unlink(st, next, ns);
    size += ns;
    next = chunk_at(c, size);
  }
  c->head = size | CH_PINUSE;
  next->prev_size = size;
  /* Atomic: next may be in use by a thread pushing it into its cache right now. */
  __atomic_fetch_and(&next->head, ~CH_PINUSE, __ATOMIC_RELAXED);
  bin_insert(st, c, size);
}

/* Shrink in-use chunk c to nb, releasing the tail when it can form a chunk. */
void imgdump__chunk_trim(struct imgdump_heap_header *h, struct chunk *c, uint64_t nb) {
  uint64_t size = chunk_size(c);
  if (size - nb < CH_MIN) return;
  c->head = nb | (c->head & CH_PINUSE) | CH_CINUSE;
  struct chunk *r = chunk_at(c, nb);
  r->head = (size - nb) | CH_PINUSE | CH_CINUSE;
  imgdump__chunk_release(h, r);
}

/* Empty every quick list into the bins (coalescing): before growing the heap and before
 * a large request would otherwise be carved from top, like glibc's malloc_consolidate. */
void imgdump__quick_consolidate(struct imgdump_heap_header *h) {
  struct imgdump_alloc_state *st = alloc_state(h);
  for (unsigned i = 0; i < NQUICK; i++) {
    struct chunk *c = st->quick[i];
    st->quick[i] = NULL;
    while (c) {
      struct chunk *n = c->fd;
      c->head &= ~CH_QUICK;
      imgdump__chunk_release(h, c);
      c = n;
    }
  }
  st->quick_bytes = 0;
}

static struct chunk *take_binned(struct imgdump_heap_header *h, uint64_t nb) {
  struct imgdump_alloc_state *st = alloc_state(h);
  unsigned i = bin_index(nb);
  struct chunk *c = NULL;
  if (nb >= LARGE_MIN) {
    /* Sizes in bin i straddle nb: first fit, a bounded scan. */
    int budget = 32;
    for (struct chunk *x = st->bins[i]; x && budget--; x = x->fd)
      if (chunk_size(x) >= nb) {
        c = x;
        break;
      }
    if (!c) i++;
  }
  if (!c) {
    i = bin_next(st, i);
    if (i == NBINS) return NULL;
    c = st->bins[i]; /* every chunk of a higher bin (or the exact small bin) fits */
  }
  uint64_t size = chunk_size(c);
  bin_unlink(st, c, size);
  c->head |= CH_CINUSE;
  __atomic_fetch_or(&chunk_at(c, size)->head, CH_PINUSE, __ATOMIC_RELAXED);
  imgdump__chunk_trim(h, c, nb);
  return c;
}

static struct chunk *take_top(struct imgdump_heap_header *h, uint64_t nb, uint64_t *need) {
  struct imgdump_alloc_state *st = alloc_state(h);
  struct chunk *c = (struct chunk *)st->top;
  if (st->top + nb + CH_HDR > h->committed) {
    *need = st->top + nb + CH_HDR;
    if (*need < st->top) *need = UINT64_MAX;
    return NULL;
  }
  c->head = nb | CH_PINUSE | CH_CINUSE;
  imgdump__set_top(h, chunk_at(c, nb));
  return c;
}

struct chunk *imgdump__take_chunk(struct imgdump_heap_header *h, uint64_t nb, uint64_t *need) {
  struct imgdump_alloc_state *st = alloc_state(h);
  if (nb <= QUICK_MAX) {
    struct chunk *c = st->quick[nb >> 4];
    if (c) {
      st->quick[nb >> 4] = c->fd;
      c->head &= ~CH_QUICK;
      st->quick_bytes -= nb;
      return c;
    }
  }
  struct chunk *c = take_binned(h, nb);
  if (c) return c;
  /* Parked quick chunks may coalesce into a fit. Not for every small miss (that would
   * scatter the warm LIFO reuse, as glibc keeps fastbins for small requests): for a large
   * request they could serve, when they hold a large share of the heap, or before growing. */
  if (st->quick_bytes &&
      ((nb >= LARGE_MIN && st->quick_bytes >= nb) || st->quick_bytes > (st->in_use_bytes >> 2) + (256u << 10) ||
       st->top + nb + CH_HDR > h->committed)) {
    imgdump__quick_consolidate(h);
    c = take_binned(h, nb);
    if (c) return c;
  }
  return take_top(h, nb, need);
}

/* Park a freed small chunk in its quick list, or release it. Lock held. */
void imgdump__chunk_free(struct imgdump_heap_header *h, struct chunk *c) {
  struct imgdump_alloc_state *st = alloc_state(h);
  uint64_t size = chunk_size(c);
  st->in_use_bytes -= size;
  st->n_free++;
  if (size <= QUICK_MAX) {
    c->fd = st->quick[size >> 4];
    st->quick[size >> 4] = c;
    c->head |= CH_QUICK;
    st->quick_bytes += size;
    return;
  }
  imgdump__chunk_release(h, c);
}

/* realloc in place (lock held): 1 done, 0 the caller must move the block, -1 top must
 * first be committed up to *need. */
int imgdump__chunk_resize(struct imgdump_heap_header *h, struct chunk *c, uint64_t nb, uint64_t *need) {
  struct imgdump_alloc_state *st = alloc_state(h);
  uint64_t size = chunk_size(c);
  if (nb <= size) {
    imgdump__chunk_trim(h, c, nb);
    st->in_use_bytes -= size - chunk_size(c);
    return 1;
  }
  struct chunk *next = chunk_at(c, size);
  if ((uint64_t)next == st->top) {
    if (st->top + (nb - size) + CH_HDR > h->committed) {
      *need = st->top + (nb - size) + CH_HDR;
      return -1;
    }
    c->head = nb | (c->head & CH_FLAGS);
    imgdump__set_top(h, chunk_at(c, nb));
  } else if (!(next->head & CH_CINUSE) && size + chunk_size(next) >= nb) {
    uint64_t ns = chunk_size(next);
    bin_unlink(st, next, ns); /* binned (free, not quick): absorb it, give back the excess */
    c->head = (size + ns) | (c->head & CH_FLAGS);
    __atomic_fetch_or(&chunk_at(c, size + ns)->head, CH_PINUSE, __ATOMIC_RELAXED);
    imgdump__chunk_trim(h, c, nb);
  } else {
    return 0;
  }
  st->in_use_bytes += chunk_size(c) - size;
  if (st->in_use_bytes > st->peak_in_use) st->peak_in_use = st->in_use_bytes;
  return 1;
}

/* Publish a grown writable end (lock held): committed only increases; top spans to it. */
void imgdump__alloc_committed(struct imgdump_heap_header *h, uint64_t to) {
  struct imgdump_alloc_state *st = alloc_state(h);
  if (to > h->committed) {
    h->committed = to;
    st->n_grow++;
    ((struct chunk *)st->top)->head = (to - st->top) | CH_PINUSE;
  }
}

void imgdump__alloc_init(struct imgdump_heap_header *h) {
  struct imgdump_alloc_state *st = alloc_state(h);
  memset(st, 0, sizeof *st); /* fresh pages are zero already; explicit for clarity */
  st->version = IMGDUMP_ALLOC_STATE_VERSION;
  st->first_chunk = h->base + h->header_size;
  st->clean_from = st->first_chunk;
  imgdump__set_top(h, (struct chunk *)st->first_chunk);
}

void imgdump__alloc_adopt(struct imgdump_heap_header *h, uint64_t mapped_end) {
  struct imgdump_alloc_state *st = alloc_state(h);
  /* Bytes between the break and the end of the file mapping come from the file: not known
   * to be zero. Everything above is a fresh anonymous reservation. */
  st->clean_from = mapped_end;
  st->adopted_end = mapped_end;
  ((struct chunk *)st->top)->head = (h->committed - st->top) | CH_PINUSE;
}
