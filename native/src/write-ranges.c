/*
 * write-ranges.c — the writing half of imgdump_save: copy ranges of this process's memory
 * to their planned file offsets with large pwrite calls, checksumming (CRC32C) exactly the
 * bytes written. The heap header page(s) are written from a sanitised copy — lock and
 * save_in_progress cleared, generation set — so the process's own header is never altered
 * (the caller still holds the lock while this runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc-state.h"
#include "internal.h"

#define WRITE_PIECE (8ull << 20) /* large writes: read back via mmap much faster (DESIGN §8) */

static int write_all(int fd, const void *p, uint64_t n, uint64_t off, unsigned flags, uint64_t *written) {
  const char *c = p;
  while (n) {
    size_t piece = n < WRITE_PIECE ? (size_t)n : (size_t)WRITE_PIECE;
    ssize_t w = pwrite(fd, c, piece, (off_t)off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (w == 0) return -EIO;
    /* Advisory: a filesystem without it (EINVAL, ESPIPE) still gets the planner's fsync. Without
     * it a large image sits dirty in the page cache (below the background writeback threshold)
     * until that fsync, and the save takes copy time plus disk time instead of the larger. */
    if (flags & IMGDUMP__WRITE_FLUSH) sync_file_range(fd, (off_t)off, w, SYNC_FILE_RANGE_WRITE);
    c += w, n -= (uint64_t)w, off += (uint64_t)w, *written += (uint64_t)w;
  }
  return 0;
}

/* Bytes written from elsewhere than the process's memory: the sanitised header copy, and
 * zeros for the library's process-local statics (IMGDUMP_PROCESS_LOCAL). */
struct substitute {
  uint64_t start, end;
  const unsigned char *src; /* NULL: zeros */
};

static const unsigned char zeros[4096];

/* Write [addr, addr+size) at off, taking substituted ranges from their sources. */
static int write_one(int fd, const struct imgdump_write *w, const struct substitute *subs, int nsubs,
                     unsigned flags, uint32_t *crc, uint64_t *written) {
  uint64_t a = w->addr, end = w->addr + w->size, off = w->offset;
  uint32_t c = 0;
  while (a < end) {
    const void *src = (const void *)a;
    uint64_t n = end - a;
    for (int i = 0; i < nsubs; i++) {
      const struct substitute *s = &subs[i];
      if (a >= s->start && a < s->end) { /* inside: from the substitute */
        n = s->end - a < n ? s->end - a : n;
        if (!s->src && n > sizeof zeros) n = sizeof zeros;
        src = s->src ? s->src + (a - s->start) : zeros;
        break;
      }
      if (a < s->start && s->start < a + n) n = s->start - a; /* stop before it */
    }
    for (uint64_t done = 0; done < n;) { /* checksum in cache-sized pieces, then write */
      uint64_t k = n - done < WRITE_PIECE ? n - done : WRITE_PIECE;
      c = imgdump__crc32c(c, (const char *)src + done, (size_t)k);
      int rc = write_all(fd, (const char *)src + done, k, off, flags, written);
      if (rc < 0) return rc;
      done += k, off += k;
    }
    a += n;
  }
  *crc = c;
  return 0;
}

int imgdump__write_ranges(int fd, const struct imgdump_write *w, size_t n, uint32_t *crc_out,
                          uint64_t generation, unsigned flags, uint64_t *written) {
  uint64_t total = 0;
  if (written) *written = 0;
  if (fd < 0 || (n && !w)) return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (w[i].addr + w[i].size < w[i].addr || w[i].offset + w[i].size < w[i].offset) return -EINVAL;
  struct imgdump_heap_header *h = imgdump__heap_ptr;
  unsigned char copy[IMGDUMP_HEADER_SIZE] __attribute__((aligned(16))); /* 8 KiB of stack */
  if (h) {
    memcpy(copy, h, h->header_size);
    struct imgdump_heap_header *c = (struct imgdump_heap_header *)copy;
    c->lock = 0;
    c->save_in_progress = 0;
    c->generation = generation;
  }
  struct substitute subs[2];
  int nsubs = 0;
  if (h) subs[nsubs++] = (struct substitute){h->base, h->base + h->header_size, copy};
  if (__start_imgdump_local && (uintptr_t)__stop_imgdump_local > (uintptr_t)__start_imgdump_local)
    subs[nsubs++] = (struct substitute){(uint64_t)(uintptr_t)__start_imgdump_local,
                                        (uint64_t)(uintptr_t)__stop_imgdump_local, NULL};
  /* A write past RLIMIT_FSIZE raises SIGXFSZ (default: die) besides failing with EFBIG:
   * block it, and consume the one our write raised before unblocking. */
  sigset_t block, old, pending;
  sigemptyset(&block);
  sigaddset(&block, SIGXFSZ);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  sigpending(&pending);
  int was_pending = sigismember(&pending, SIGXFSZ);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    uint32_t crc = 0;
    rc = write_one(fd, &w[i], subs, nsubs, flags, &crc, &total);
    if (crc_out) crc_out[i] = crc;
  }
  sigpending(&pending);
  if (!was_pending && sigismember(&pending, SIGXFSZ)) {
    struct timespec zero = {0, 0};
    sigtimedwait(&block, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (written) *written = total;
  return rc;
}
