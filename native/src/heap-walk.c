/*
 * heap-walk.c — enumerate every chunk from the header and check the boundary tags: the
 * same walk src/heap/ does on a saved image (docs/heap-layout.md), used by the C tests and
 * the koffi bindings to compare against.
 */
#include <errno.h>

#include "alloc-core.h"

struct walk_ctx {
  uint64_t free_binned, free_quick, used;
};

static int check_quick(struct chunk *c, unsigned i, uint64_t lo, uint64_t hi, uint64_t *quick,
                       struct walk_ctx *w) {
  for (; c; c = c->fd) {
    if ((uint64_t)c < lo || (uint64_t)c >= hi || chunk_size(c) != (uint64_t)i << 4) return -EINVAL;
    if ((c->head & (CH_CINUSE | CH_QUICK)) != (CH_CINUSE | CH_QUICK)) return -EINVAL;
    if (++*quick > w->free_quick) return -EINVAL;
  }
  return 0;
}

/* Checks one bin list: every member free, not quick, of a size belonging to this bin. */
static int check_lists(struct imgdump_heap_header *h, struct walk_ctx *w) {
  struct imgdump_alloc_state *st = alloc_state(h);
  uint64_t binned = 0, quick = 0, lo = st->first_chunk, hi = st->top;
  for (unsigned i = 0; i < NBINS; i++) {
    int set = (st->bitmap[i >> 6] >> (i & 63)) & 1;
    if (set != (st->bins[i] != NULL)) return -EINVAL;
    struct chunk *prev = NULL;
    for (struct chunk *c = st->bins[i]; c; prev = c, c = c->fd) {
      if ((uint64_t)c < lo || (uint64_t)c >= hi || c->bk != prev) return -EINVAL;
      if (c->head & (CH_CINUSE | CH_QUICK)) return -EINVAL;
      if (++binned > w->free_binned) return -EINVAL;
    }
  }
  for (unsigned i = 0; i < NQUICK; i++)
    if (check_quick(st->quick[i], i, lo, hi, &quick, w) < 0) return -EINVAL;
  for (struct imgdump_tcache *tc = st->tcaches; tc; tc = tc->next) /* other threads' caches */
    for (unsigned i = 0; i < TC_CLASSES; i++)
      for (struct chunk *c = tc->head[i]; c; c = c->fd)
        if ((uint64_t)c < lo || (uint64_t)c >= hi || chunk_size(c) != (uint64_t)i << 4 ||
            (c->head & (CH_CINUSE | CH_QUICK)) != CH_CINUSE)
          return -EINVAL;
  return binned == w->free_binned && quick == w->free_quick ? 0 : -EINVAL;
}

int imgdump__heap_walk(int (*fn)(void *payload, size_t usable, int used, void *arg), void *arg) {
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return -ENOMEM;
  imgdump__alloc_lock();
  struct imgdump_alloc_state *st = alloc_state(h);
  struct walk_ctx w = {0, 0, 0};
  int rc = 0, prev_inuse = 1;
  uint64_t a = st->first_chunk;
  while (a < st->top && rc == 0) {
    struct chunk *c = (struct chunk *)a;
    uint64_t size = chunk_size(c);
    int inuse = (c->head & CH_CINUSE) != 0, quick = (c->head & CH_QUICK) != 0;
    if (size < CH_MIN || a + size > st->top || ((c->head & CH_PINUSE) != 0) != prev_inuse ||
        (quick && !inuse) || (!inuse && !prev_inuse)) {
      rc = -EINVAL;
      break;
    }
    if (!inuse && chunk_at(c, size)->prev_size != size) rc = -EINVAL;
    if (quick) w.free_quick++;
    else if (inuse) w.used++;
    else w.free_binned++;
    if (rc == 0 && fn) rc = fn(chunk_to_mem(c), size - CH_OVERHEAD, inuse && !quick, arg);
    prev_inuse = inuse;
    a += size;
  }
  if (rc == 0 && (a != st->top || h->brk != st->top + CH_HDR || h->committed < h->brk)) rc = -EINVAL;
  if (rc == 0 && (((struct chunk *)a)->head & CH_PINUSE) != (uint64_t)prev_inuse) rc = -EINVAL;
  if (rc == 0) rc = check_lists(h, &w);
  imgdump__alloc_unlock();
  return rc;
}
