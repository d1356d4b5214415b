/*
 * alloc-api.c — the malloc family, replacing the C library's as glibc's manual describes
 * ("Replacing malloc": malloc, free, calloc, realloc, plus aligned_alloc,
 * malloc_usable_size, memalign, posix_memalign, pvalloc, valloc), for both ways of linking:
 * libimgdump.a in the executable (config --libs forces this object in) and libimgdump.so
 * preloaded. Also the fork handlers and the IMGDUMP_DEBUG exit report.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>

#include "alloc-core.h"
#include "os.h"

#define EXPORT __attribute__((visibility("default")))

static void diag_enomem(struct imgdump_heap_header *h, uint64_t need) {
  if (!alloc_state(h)->debug) return;
  char a[24], b[24];
  imgdump__os_stderr("imgdump: heap exhausted: need up to ");
  imgdump__os_stderr(imgdump__os_fmt_hex(a, need));
  imgdump__os_stderr(", reservation ends at ");
  imgdump__os_stderr(imgdump__os_fmt_hex(b, h->base + h->reserve));
  imgdump__os_stderr("\n");
}

/* Grow the writable part to `need` outside the lock, then publish it. */
static int grow(struct imgdump_heap_header *h, uint64_t need) {
  uint64_t to;
  if (imgdump__heap_commit(h, need, &to) < 0) {
    diag_enomem(h, need);
    return -ENOMEM;
  }
  imgdump__lock_word(&h->lock);
  imgdump__alloc_committed(h, to);
  imgdump__unlock_word(&h->lock);
  return 0;
}

/* Carve an aligned chunk out of a larger one (lock held): free the lead and the tail. */
static struct chunk *align_chunk(struct imgdump_heap_header *h, struct chunk *c, uint64_t nb,
                                 size_t align) {
  uint64_t mem = (uint64_t)chunk_to_mem(c);
  if (mem & (align - 1)) {
    uint64_t a = (mem + align - 1) & ~((uint64_t)align - 1);
    if (a - mem < CH_MIN) a += align;
    struct chunk *n = mem_to_chunk((void *)a);
    uint64_t lead = (uint64_t)n - (uint64_t)c;
    uint64_t size = chunk_size(c) - lead;
    c->head = lead | (c->head & CH_PINUSE) | CH_CINUSE;
    n->head = size | CH_PINUSE | CH_CINUSE;
    imgdump__chunk_release(h, c); /* clears n's PINUSE, writes the footer */
    c = n;
  }
  imgdump__chunk_trim(h, c, nb);
  return c;
}

/* The one allocation path: n bytes aligned to `align` (a power of two >= 16); zeroed when
 * `zero`, memset only over the bytes not known to be zero (below clean_from). */
static void *allocate(size_t n, size_t align, int zero) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (__builtin_expect(!h, 0) && !(h = imgdump__heap())) {
    errno = ENOMEM;
    return NULL;
  }
  uint64_t nb = request_size(n);
  uint64_t want = align > 16 ? nb + align + CH_MIN : nb;
  if (!nb || want < nb) {
    errno = ENOMEM;
    return NULL;
  }
  struct imgdump_alloc_state *st = alloc_state(h);
  if (nb <= QUICK_MAX && align <= 16) {
    /* The quick-list pop reads the head chunk's link: fetch that line before taking the
     * lock so the miss is not paid inside the critical section (a racy peek: a hint). */
    __builtin_prefetch(__atomic_load_n(&st->quick[nb >> 4], __ATOMIC_RELAXED));
    imgdump__lock_word(&h->lock);
    struct chunk *c = st->quick[nb >> 4];
    if (c) { /* the common case, inline */
      st->quick[nb >> 4] = c->fd;
      c->head &= ~CH_QUICK;
      st->quick_bytes -= nb;
      st->in_use_bytes += nb;
      st->n_malloc++;
      if (st->in_use_bytes > st->peak_in_use) st->peak_in_use = st->in_use_bytes;
      imgdump__unlock_word(&h->lock);
      return zero ? memset(chunk_to_mem(c), 0, n) : chunk_to_mem(c);
    }
    imgdump__unlock_word(&h->lock);
  }
  for (;;) {
    uint64_t need = 0;
    imgdump__lock_word(&h->lock);
    uint64_t clean = st->clean_from;
    struct chunk *c = imgdump__take_chunk(h, want, &need);
    if (c) {
      if (align > 16) c = align_chunk(h, c, nb, align);
      uint64_t size = chunk_size(c);
      st->in_use_bytes += size;
      st->n_malloc++;
      if (st->in_use_bytes > st->peak_in_use) st->peak_in_use = st->in_use_bytes;
      imgdump__unlock_word(&h->lock);
      void *p = chunk_to_mem(c);
      if (zero && (uint64_t)p < clean) {
        uint64_t dirty = clean - (uint64_t)p;
        memset(p, 0, dirty < n ? dirty : n);
      }
      return p;
    }
    imgdump__unlock_word(&h->lock);
    if (grow(h, need) < 0) {
      errno = ENOMEM;
      return NULL;
    }
  }
}

static inline int owned(struct imgdump_heap_header *h, const void *p) {
  return h && (uint64_t)p - h->base - h->header_size < h->reserve - h->header_size;
}

static __attribute__((noreturn)) void corrupt(const char *what) {
  imgdump__os_stderr("imgdump: ");
  imgdump__os_stderr(what);
  imgdump__os_stderr(": invalid pointer or heap corruption\n");
  __builtin_trap();
}

/* Internal callers use these, never the exported names: when libimgdump.so is loaded
 * without being preloaded (koffi in tests) the exported names resolve to libc's. */
static void release(void *p) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!p || !owned(h, p)) return; /* not ours (e.g. from before the heap existed): keep it */
  if (!__libc_single_threaded && !((uint64_t)p & 15) && imgdump__tcache_defer(h, p)) return;
  struct chunk *c = mem_to_chunk(p);
  uint64_t head = c->head;
  if ((head & (CH_CINUSE | CH_QUICK)) != CH_CINUSE || ((uint64_t)p & 15)) corrupt("free");
  if (!__libc_single_threaded && (head & ~CH_FLAGS) <= TC_MAX_SIZE && imgdump__tcache_free(h, c, head & ~CH_FLAGS))
    return;
  uint64_t size = head & ~CH_FLAGS;
  struct imgdump_alloc_state *st = alloc_state(h);
  imgdump__lock_word(&h->lock);
  if (size <= QUICK_MAX) { /* the common case, inline (as imgdump__chunk_free) */
    c->fd = st->quick[size >> 4];
    st->quick[size >> 4] = c;
    c->head |= CH_QUICK;
    st->quick_bytes += size;
    st->in_use_bytes -= size;
    st->n_free++;
  } else {
    imgdump__chunk_free(h, c);
  }
  imgdump__unlock_word(&h->lock);
}

void *imgdump__malloc(size_t n) { return allocate(n, 16, 0); }
void imgdump__free(void *p) { release(p); }

void *imgdump__alloc_aligned_nocache(size_t n, size_t align) { return allocate(n, align, 0); }

/* malloc/calloc: the thread's cache first while multi-threaded. */
static inline void *allocate_small(size_t n, int zero) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!__libc_single_threaded && h && n <= TC_MAX_SIZE - CH_OVERHEAD) {
    void *p = imgdump__tcache_alloc(h, request_size(n));
    if (p) return zero ? memset(p, 0, n) : p;
  }
  return allocate(n, 16, zero);
}

EXPORT void *malloc(size_t n) { return allocate_small(n, 0); }
EXPORT void free(void *p) { release(p); }

EXPORT void *calloc(size_t n, size_t m) {
  size_t total;
  if (__builtin_mul_overflow(n, m, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return allocate_small(total, 1);
}

static void *resize(void *p, size_t n) {
  if (!p) return allocate(n, 16, 0);
  if (n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
    release(p);
    return NULL;
  }
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!owned(h, p)) corrupt("realloc");
  struct chunk *c = mem_to_chunk(p);
  if ((c->head & (CH_CINUSE | CH_QUICK)) != CH_CINUSE) corrupt("realloc");
  uint64_t nb = request_size(n);
  if (!nb) {
    errno = ENOMEM;
    return NULL;
  }
  for (;;) {
    uint64_t need = 0;
    imgdump__lock_word(&h->lock);
    uint64_t old = chunk_size(c);
    int r = imgdump__chunk_resize(h, c, nb, &need);
    imgdump__unlock_word(&h->lock);
    if (r > 0) return p;
    if (r < 0) {
      /* Bordering top: commit and retry; if the reservation is exhausted, moving cannot
       * help either. */
      if (grow(h, need) == 0) continue;
      errno = ENOMEM;
      return NULL;
    }
    void *q = allocate(n, 16, 0);
    if (!q) return NULL;
    memcpy(q, p, old - CH_OVERHEAD < n ? old - CH_OVERHEAD : n);
    release(p);
    return q;
  }
}

static void *resize(void *p, size_t n);
EXPORT void *realloc(void *p, size_t n) { return resize(p, n); }

EXPORT void *reallocarray(void *p, size_t n, size_t m) {
  size_t total;
  if (__builtin_mul_overflow(n, m, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return resize(p, total);
}

static int valid_align(size_t a) { return a && !(a & (a - 1)); }

static void *aligned(size_t align, size_t n) {
  if (align <= 16) return allocate(n, 16, 0);
  if (align > (1ull << 40)) {
    errno = EINVAL;
    return NULL;
  }
  if (!valid_align(align)) align = 1ull << (64 - __builtin_clzll(align)); /* glibc rounds up */
  return allocate(n, align, 0);
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
  if (!valid_align(align)) { /* glibc 2.38+ and C17 DR 460: EINVAL */
    errno = EINVAL;
    return NULL;
  }
  return aligned(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  if (!valid_align(align) || align % sizeof(void *)) return EINVAL;
  int saved = errno;
  void *p = aligned(align, n);
  if (!p) return errno = saved, ENOMEM;
  *out = p;
  return 0;
}

EXPORT void *memalign(size_t align, size_t n) { return aligned(align, n); }
EXPORT void *valloc(size_t n) { return aligned(IMGDUMP_PAGE, n); }

EXPORT void *pvalloc(size_t n) {
  size_t r = (n + IMGDUMP_PAGE - 1) & ~(IMGDUMP_PAGE - 1);
  if (r < n) {
    errno = ENOMEM;
    return NULL;
  }
  return aligned(IMGDUMP_PAGE, r ? r : IMGDUMP_PAGE);
}

EXPORT size_t malloc_usable_size(void *p) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!p || !owned(h, p)) return 0;
  struct chunk *c = mem_to_chunk(p);
  return (c->head & (CH_CINUSE | CH_QUICK)) == CH_CINUSE ? chunk_size(c) - CH_OVERHEAD : 0;
}

/* C23 sized deallocation: the size is only a hint here. */
EXPORT void free_sized(void *p, size_t n) { (void)n, release(p); }
EXPORT void free_aligned_sized(void *p, size_t a, size_t n) { (void)a, (void)n, release(p); }

/* glibc's malloc.o also defines these; a static link that names them must not pull it in
 * (its malloc would clash with ours). */
EXPORT int mallopt(int param, int value) { (void)param, (void)value; return 1; }
EXPORT int malloc_trim(size_t pad) { (void)pad; return 0; }
static struct mallinfo2 info(void) {
  struct mallinfo2 mi;
  memset(&mi, 0, sizeof mi);
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!h) return mi;
  imgdump__lock_word(&h->lock);
  struct imgdump_alloc_state *st = alloc_state(h);
  mi.arena = h->brk - st->first_chunk;
  mi.uordblks = st->in_use_bytes;
  mi.fordblks = mi.arena - st->in_use_bytes;
  mi.fsmblks = st->quick_bytes;
  mi.keepcost = h->committed - st->top;
  imgdump__unlock_word(&h->lock);
  return mi;
}
EXPORT struct mallinfo2 mallinfo2(void) { return info(); }
EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = info();
  struct mallinfo mi;
  memset(&mi, 0, sizeof mi);
  mi.arena = (int)m2.arena, mi.uordblks = (int)m2.uordblks, mi.fordblks = (int)m2.fordblks;
  mi.fsmblks = (int)m2.fsmblks, mi.keepcost = (int)m2.keepcost;
  return mi;
}

static void report(int fd, const char *prefix) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!h) return;
  struct imgdump_alloc_state *st = alloc_state(h);
  char b[24];
#define imgdump__os_stderr(s) imgdump__os_write(fd, s)
  imgdump__os_stderr(prefix);
  imgdump__os_stderr(" base=");
  imgdump__os_stderr(imgdump__os_fmt_hex(b, h->base));
  imgdump__os_stderr(" brk=");
  imgdump__os_stderr(imgdump__os_fmt_hex(b, h->brk));
  imgdump__os_stderr(" committed=");
  imgdump__os_stderr(imgdump__os_fmt_hex(b, h->committed));
  imgdump__os_stderr(" mallocs=");
  imgdump__os_stderr(imgdump__os_fmt_dec(b, st->n_malloc));
  imgdump__os_stderr(" frees=");
  imgdump__os_stderr(imgdump__os_fmt_dec(b, st->n_free));
  imgdump__os_stderr(" in_use=");
  imgdump__os_stderr(imgdump__os_fmt_dec(b, st->in_use_bytes));
  imgdump__os_stderr(" peak=");
  imgdump__os_stderr(imgdump__os_fmt_dec(b, st->peak_in_use));
  imgdump__os_stderr("\n");
#undef imgdump__os_stderr
}

EXPORT void malloc_stats(void) { report(2, "imgdump: stats"); }

/* ---- fork: hold the lock across fork so the child's heap is consistent ---- */

static void fork_prepare(void) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (h) imgdump__lock_word(&h->lock);
}
static void fork_parent(void) { imgdump__alloc_unlock(); }
static void fork_child(void) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (!h) return;
  imgdump__tcache_fork_child(h); /* under the lock taken in fork_prepare */
  __atomic_store_n(&h->lock, 0, __ATOMIC_RELEASE); /* the only thread now */
}

__attribute__((constructor(101))) static void alloc_constructor(void) {
  imgdump__tcache_init();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

__attribute__((destructor)) static void alloc_destructor(void) {
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  if (h && alloc_state(h)->debug) report((int)alloc_state(h)->debug - 1, "imgdump: exit");
}
