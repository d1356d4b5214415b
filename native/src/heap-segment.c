/*
 * heap-segment.c — the fixed-address heap range: reserve it in a fresh process, adopt it in
 * a process started from an image, grow its writable part (the emulated sbrk).
 *
 * Runs inside the first malloc of the process, possibly before libc is initialised: only
 * raw system calls (os.c), no stdio, no getenv, no locks other than the init word.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "alloc-state.h"
#include "internal.h"
#include "os.h"

#define GROW_STEP (4ull << 20) /* commit in 4 MiB steps: few mprotect calls, few VMAs */

IMGDUMP_PROCESS_LOCAL struct imgdump_heap_header *imgdump__heap_ptr;

/* 0 not started, 1 initialising, 2 ready, 3 failed (errno value kept in init_errno). */
IMGDUMP_PROCESS_LOCAL static uint32_t init_word;
IMGDUMP_PROCESS_LOCAL static int init_errno;

/* ---- configuration ---- */

static int parse_u64(const char *s, uint64_t *out) {
  uint64_t v = 0;
  int base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, s += 2;
  if (!*s) return -EINVAL;
  for (; *s; s++) {
    int d;
    if (*s >= '0' && *s <= '9') d = *s - '0';
    else if (base == 16 && *s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
    else if (base == 16 && *s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
    else break;
    if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return -ERANGE;
    v = v * (uint64_t)base + (uint64_t)d;
  }
  unsigned shift = 0;
  switch (*s) {
  case 0: break;
  case 'k': case 'K': shift = 10; break;
  case 'm': case 'M': shift = 20; break;
  case 'g': case 'G': shift = 30; break;
  case 't': case 'T': shift = 40; break;
  default: return -EINVAL;
  }
  if (shift && (s[1] && !((s[1] == 'i' || s[1] == 'B') ))) return -EINVAL;
  if (shift && v > (UINT64_MAX >> shift)) return -ERANGE;
  *out = v << shift;
  return 0;
}

static int env_u64(const char *name, uint64_t *out) {
  char buf[64];
  if (imgdump__os_getenv(name, buf, sizeof buf) < 0) return 0;
  return parse_u64(buf, out) == 0 ? 1 : -EINVAL;
}

static int env_debug(void) {
  char buf[16];
  int n = imgdump__os_getenv("IMGDUMP_DEBUG", buf, sizeof buf);
  return n > 0 && !(n == 1 && buf[0] == '0');
}

static void diag(int debug, const char *what, uint64_t addr, uint64_t len, int err) {
  if (!debug) return;
  char a[24], l[24], e[24];
  imgdump__os_stderr("imgdump: ");
  imgdump__os_stderr(what);
  imgdump__os_stderr(" at ");
  imgdump__os_stderr(imgdump__os_fmt_hex(a, addr));
  imgdump__os_stderr(" size ");
  imgdump__os_stderr(imgdump__os_fmt_hex(l, len));
  imgdump__os_stderr(" failed: errno ");
  imgdump__os_stderr(imgdump__os_fmt_dec(e, (uint64_t)-err));
  imgdump__os_stderr("\n");
}

/* ---- fresh process ---- */

static int heap_reserve_fresh(int debug, struct imgdump_heap_header **out) {
  uint64_t base = IMGDUMP_DEFAULT_BASE, reserve = IMGDUMP_DEFAULT_RESERVE;
  if (env_u64("IMGDUMP_HEAP_BASE", &base) < 0 || env_u64("IMGDUMP_HEAP_SIZE", &reserve) < 0) {
    diag(debug, "parsing IMGDUMP_HEAP_BASE/IMGDUMP_HEAP_SIZE", base, reserve, -EINVAL);
    return -EINVAL;
  }
  reserve = (reserve + IMGDUMP_PAGE - 1) & ~(IMGDUMP_PAGE - 1);
  if ((base & (IMGDUMP_PAGE - 1)) || reserve < 2 * IMGDUMP_HEADER_SIZE || base + reserve < base) {
    diag(debug, "heap range invalid", base, reserve, -EINVAL);
    return -EINVAL;
  }
  int rc = imgdump__os_reserve(base, reserve);
  if (rc < 0) {
    diag(debug, "reserving the heap range", base, reserve, rc);
    return rc == -EEXIST ? -EEXIST : -ENOMEM;
  }
  uint64_t first = IMGDUMP_HEADER_SIZE + GROW_STEP <= reserve ? IMGDUMP_HEADER_SIZE + GROW_STEP : reserve;
  rc = imgdump__os_commit(base, first);
  if (rc < 0) {
    diag(debug, "committing the heap header", base, first, rc);
    return -ENOMEM;
  }
  struct imgdump_heap_header *h = (struct imgdump_heap_header *)base;
  h->magic = IMGDUMP_HEAP_MAGIC;
  h->layout_version = IMGDUMP_HEAP_LAYOUT_VERSION;
  h->header_size = IMGDUMP_HEADER_SIZE;
  h->base = base;
  h->reserve = reserve;
  h->committed = base + first;
  h->generation = 0;
  h->alloc_state_offset = IMGDUMP_ALLOC_STATE_OFFSET;
  h->alloc_state_size = sizeof(struct imgdump_alloc_state);
  imgdump__alloc_init(h);
  alloc_state(h)->debug = (uint32_t)debug;
  *out = h;
  return 0;
}

/* ---- process started from an image ---- */

static int heap_adopt(int debug, const struct imgdump_image_info *info,
                      struct imgdump_heap_header **out) {
  struct imgdump_heap_header *h = (struct imgdump_heap_header *)info->heap_base;
  uint64_t mapped_end = (info->heap_mapped_end + IMGDUMP_PAGE - 1) & ~(IMGDUMP_PAGE - 1);
  if (h->magic != IMGDUMP_HEAP_MAGIC || h->layout_version != IMGDUMP_HEAP_LAYOUT_VERSION ||
      h->base != info->heap_base || h->alloc_state_offset != IMGDUMP_ALLOC_STATE_OFFSET ||
      alloc_state(h)->version != IMGDUMP_ALLOC_STATE_VERSION ||
      mapped_end < h->brk || mapped_end > h->base + h->reserve) {
    diag(debug, "adopting the saved heap (bad header)", info->heap_base, mapped_end, -EINVAL);
    imgdump__set_error("saved heap header at 0x%llx is not a layout-%u heap",
                       (unsigned long long)info->heap_base, IMGDUMP_HEAP_LAYOUT_VERSION);
    return -EINVAL;
  }
  /* Replace the image's placeholder for the rest of the range with a fresh reservation:
   * mprotect on a file-backed placeholder would expose pages past EOF (SIGBUS). */
  uint64_t end = h->base + h->reserve;
  if (mapped_end < end) {
    int rc = imgdump__os_reserve_over(mapped_end, end - mapped_end);
    if (rc < 0) {
      diag(debug, "reserving the heap tail", mapped_end, end - mapped_end, rc);
      return -ENOMEM;
    }
  }
  /* The saved copy has lock and save_in_progress cleared by the writer; the per-run
   * fields are ours to reset. */
  h->committed = mapped_end;
  h->generation = info->generation;
  imgdump__alloc_adopt(h, mapped_end);
  alloc_state(h)->debug = (uint32_t)debug;
  *out = h;
  return 0;
}

static void heap_init(void) {
  int debug = env_debug();
  if (debug) {
    /* Programs may close stderr before exit (coreutils' close_stdout): keep our own copy
     * for the exit report. */
    int fd = imgdump__os_dup_high(2);
    debug = 1 + (fd >= 0 ? fd : 2);
  }
  struct imgdump_heap_header *h = NULL;
  const struct imgdump_image_info *info = imgdump__startup();
  int rc = info ? heap_adopt(debug, info, &h) : heap_reserve_fresh(debug, &h);
  if (rc < 0) {
    init_errno = -rc;
    __atomic_store_n(&init_word, 3, __ATOMIC_RELEASE);
    return;
  }
  __atomic_store_n(&imgdump__heap_ptr, h, __ATOMIC_RELEASE);
  __atomic_store_n(&init_word, 2, __ATOMIC_RELEASE);
}

struct imgdump_heap_header *imgdump__heap(void) {
  struct imgdump_heap_header *h = __atomic_load_n(&imgdump__heap_ptr, __ATOMIC_ACQUIRE);
  if (h) return h;
  uint32_t expected = 0;
  if (__atomic_compare_exchange_n(&init_word, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    heap_init();
  while (__atomic_load_n(&init_word, __ATOMIC_ACQUIRE) == 1) imgdump__os_yield();
  h = __atomic_load_n(&imgdump__heap_ptr, __ATOMIC_ACQUIRE);
  if (!h) errno = init_errno;
  return h;
}

int imgdump__heap_commit(struct imgdump_heap_header *h, uint64_t end, uint64_t *new_committed) {
  uint64_t limit = h->base + h->reserve;
  if (end > limit || end < h->base) return -ENOMEM;
  uint64_t from = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
  *new_committed = from;
  if (end <= from) return 0;
  uint64_t to = (end + GROW_STEP - 1) & ~(GROW_STEP - 1);
  if (to > limit || to < end) to = limit;
  /* Two threads may commit overlapping ranges at once: mprotect of an already writable
   * range is harmless, and the caller publishes max(committed, to) under the lock. */
  int rc = imgdump__os_commit(from, to - from);
  if (rc < 0) {
    diag((int)alloc_state(h)->debug, "committing heap memory", from, to - from, rc);
    return -ENOMEM;
  }
  *new_committed = to;
  return 0;
}
