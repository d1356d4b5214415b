/*
 * alloc-tcache.c — per-thread caches of small free chunks (see alloc-state.h), used only
 * while the process is multi-threaded: with one lock for everything, threads serialise,
 * and on a loaded 2-core machine a preempted lock holder stalls them all.
 *
 * Concurrency rule: without the lock a thread touches only the payload words (fd, bk) of
 * chunks it owns, never a chunk head; heads change only under the lock. A cached chunk
 * keeps CINUSE and gets QUICK when it moves to a quick list (under the lock), like
 * glibc's tcache. bk holds the owning cache as a double-free key (glibc's tcache key).
 */
#include <pthread.h>
#include <string.h>

#include "alloc-core.h"
#include "os.h"

static __thread struct imgdump_tcache *tc_self __attribute__((tls_model("initial-exec")));
IMGDUMP_PROCESS_LOCAL static pthread_key_t tc_key; /* runs the flush at thread exit */
IMGDUMP_PROCESS_LOCAL static int tc_key_ok;

static void merge_counters(struct imgdump_alloc_state *st, struct imgdump_tcache *tc) {
  st->n_malloc += tc->n_malloc;
  st->n_free += tc->n_free;
  tc->n_malloc = 0, tc->n_free = 0;
}

/* Move up to n chunks of class i from the cache to the quick list (lock held). */
static void spill(struct imgdump_alloc_state *st, struct imgdump_tcache *tc, unsigned i, uint32_t n) {
  uint64_t size = (uint64_t)i << 4;
  while (n-- && tc->head[i]) {
    struct chunk *c = tc->head[i];
    tc->head[i] = c->fd;
    tc->count[i]--;
    tc->bytes -= size;
    c->head |= CH_QUICK;
    c->fd = st->quick[i];
    c->bk = NULL;
    st->quick[i] = c;
    st->quick_bytes += size;
    st->in_use_bytes -= size;
  }
}

static __attribute__((noreturn)) void bad_free(void) {
  imgdump__os_stderr("imgdump: free: invalid pointer or heap corruption\n");
  __builtin_trap();
}

/* Free the deferred chunks straight to the core (lock held). */
static void drain_locked(struct imgdump_heap_header *h, struct imgdump_tcache *tc) {
  for (unsigned k = 0; k < TC_PEND; k++) {
    void *p = tc->pend[k];
    if (!p) continue;
    tc->pend[k] = NULL;
    struct chunk *c = mem_to_chunk(p);
    if ((c->head & (CH_CINUSE | CH_QUICK)) != CH_CINUSE) bad_free();
    imgdump__chunk_free(h, c);
  }
}

/* Move the whole cache to the quick lists, unregister and free it (lock held). */
static void flush_locked(struct imgdump_heap_header *h, struct imgdump_tcache *tc) {
  struct imgdump_alloc_state *st = alloc_state(h);
  drain_locked(h, tc);
  for (unsigned i = 0; i < TC_CLASSES; i++) spill(st, tc, i, UINT32_MAX);
  merge_counters(st, tc);
  for (struct imgdump_tcache **p = &st->tcaches; *p; p = &(*p)->next)
    if (*p == tc) {
      *p = tc->next;
      break;
    }
  imgdump__chunk_free(h, mem_to_chunk(tc));
}

static void on_thread_exit(void *arg) {
  struct imgdump_tcache *tc = arg;
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!tc || !h) return;
  tc_self = NULL;
  imgdump__lock_word(&h->lock);
  flush_locked(h, tc);
  imgdump__unlock_word(&h->lock);
}

void imgdump__tcache_init(void) {
  if (pthread_key_create(&tc_key, on_thread_exit) == 0) tc_key_ok = 1;
}

static struct imgdump_tcache *create(struct imgdump_heap_header *h) {
  /* Whole cache lines: another thread's chunk next to it would bounce them. */
  struct imgdump_tcache *tc = imgdump__alloc_aligned_nocache((sizeof *tc + 63) & ~(size_t)63, 64);
  if (!tc) return NULL;
  memset(tc, 0, sizeof *tc);
  struct imgdump_alloc_state *st = alloc_state(h);
  imgdump__lock_word(&h->lock);
  tc->next = st->tcaches;
  st->tcaches = tc;
  imgdump__unlock_word(&h->lock);
  tc_self = tc; /* before pthread_setspecific, which may calloc */
  pthread_setspecific(tc_key, tc);
  return tc;
}

/* Refill class i with up to TC_BATCH chunks in one lock (lock held): from the quick list
 * first, then carved by the core (bins, top) — so a miss costs one lock, not one per chunk.
 * Stops when the heap would have to grow (that system call is the slow path's job). */
static void refill_locked(struct imgdump_heap_header *h, struct imgdump_tcache *tc, unsigned i, uint64_t nb) {
  struct imgdump_alloc_state *st = alloc_state(h);
  for (uint32_t k = 0; k < TC_BATCH; k++) {
    struct chunk *q = st->quick[i];
    if (q) {
      st->quick[i] = q->fd;
      st->quick_bytes -= nb;
      q->head &= ~CH_QUICK;
    } else {
      uint64_t need;
      if (!(q = imgdump__take_chunk(h, nb, &need))) break;
      if (chunk_size(q) != nb) { /* a remainder too small to split off: leave it to malloc */
        imgdump__chunk_release(h, q);
        break;
      }
    }
    st->in_use_bytes += nb;
    q->fd = tc->head[i];
    q->bk = (struct chunk *)tc;
    tc->head[i] = q;
    tc->count[i]++;
    tc->bytes += nb;
  }
  if (st->in_use_bytes > st->peak_in_use) st->peak_in_use = st->in_use_bytes;
  merge_counters(st, tc);
}

void *imgdump__tcache_alloc(struct imgdump_heap_header *h, uint64_t nb) {
  struct imgdump_tcache *tc = tc_self;
  if (!tc && (!tc_key_ok || !(tc = create(h)))) return NULL;
  unsigned i = (unsigned)(nb >> 4);
  struct chunk *c = tc->head[i];
  if (!c) {
    imgdump__lock_word(&h->lock);
    refill_locked(h, tc, i, nb);
    imgdump__unlock_word(&h->lock);
    if (!(c = tc->head[i])) return NULL;
  }
  tc->head[i] = c->fd;
  tc->count[i]--;
  tc->bytes -= nb;
  c->bk = NULL;
  tc->n_malloc++;
  /* The next malloc of this class takes the new head: fetch its line now (the free that
   * cached it was usually long ago), so that miss is not paid on the critical path. */
  if (tc->head[i]) __builtin_prefetch(tc->head[i], 1);
  return chunk_to_mem(c);
}

int imgdump__tcache_free(struct imgdump_heap_header *h, struct chunk *c, uint64_t size) {
  struct imgdump_tcache *tc = tc_self;
  if (!tc) return 0;
  unsigned i = (unsigned)(size >> 4);
  if (__builtin_expect(c->bk == (struct chunk *)tc, 0)) /* maybe freed twice: confirm */
    for (struct chunk *x = tc->head[i]; x; x = x->fd)
      if (x == c) {
        imgdump__os_stderr("imgdump: free: double free of a small block\n");
        __builtin_trap();
      }
  if (tc->count[i] >= TC_BATCH &&
      ((uint64_t)tc->count[i] * size >= TC_CLASS_BYTES || tc->bytes + size > TC_BYTES)) {
    imgdump__lock_word(&h->lock);
    spill(alloc_state(h), tc, i, TC_BATCH);
    merge_counters(alloc_state(h), tc);
    imgdump__unlock_word(&h->lock);
  }
  c->fd = tc->head[i];
  c->bk = (struct chunk *)tc;
  tc->head[i] = c;
  tc->count[i]++;
  tc->bytes += size;
  tc->n_free++;
  return 1;
}

/* free() while multi-threaded: the chunk's head is usually a cache miss (the block was
 * written long ago), and a load miss stalls. So the pointer goes into a small ring with a
 * prefetch of its head, and the free that was deferred TC_PEND frees ago is done now, its
 * line by then in cache. A deferred chunk stays marked in use (a walk reports it used, as
 * cached ones); it is validated (double free, wild pointer) when it is done. Returns 0 when
 * the thread has no cache (the caller frees directly). */
int imgdump__tcache_defer(struct imgdump_heap_header *h, void *p) {
  struct imgdump_tcache *tc = tc_self;
  if (!tc) return 0;
  __builtin_prefetch((char *)p - CH_HDR, 1);
  void **slot = &tc->pend[tc->npend++ % TC_PEND];
  void *q = *slot;
  *slot = p;
  if (!q) return 1;
  struct chunk *c = mem_to_chunk(q);
  uint64_t head = c->head;
  if ((head & (CH_CINUSE | CH_QUICK)) != CH_CINUSE) bad_free();
  uint64_t size = head & ~CH_FLAGS;
  if (size <= TC_MAX_SIZE && imgdump__tcache_free(h, c, size)) return 1;
  imgdump__lock_word(&h->lock);
  imgdump__chunk_free(h, c);
  imgdump__unlock_word(&h->lock);
  return 1;
}

/* Before a save or a heap walk: give the caller's cache back (lock NOT held). */
void imgdump__tcache_release_self(void) {
  struct imgdump_tcache *tc = tc_self;
  if (!tc) return;
  on_thread_exit(tc);
  if (tc_key_ok) pthread_setspecific(tc_key, NULL);
}

/* Fork child (lock held by the fork handler, the only thread): the other threads' caches
 * are orphans, possibly caught mid-update, so not trusted: unregistered, their chunks stay
 * marked in use (a leak in the child, never a corruption). The caller's cache is
 * consistent: flushed. */
void imgdump__tcache_fork_child(struct imgdump_heap_header *h) {
  struct imgdump_alloc_state *st = alloc_state(h);
  struct imgdump_tcache *mine = tc_self;
  st->tcaches = mine;
  if (mine) {
    mine->next = NULL;
    flush_locked(h, mine);
    tc_self = NULL;
    if (tc_key_ok) pthread_setspecific(tc_key, NULL);
  }
}
