/*
 * write-ranges.c — the writing half of imgdump_save: copy ranges of this process's memory
 * to their planned file offsets with large pwrite calls, checksumming (CRC32C) exactly the
 * bytes written. The heap header page(s) are written from a sanitised copy — lock and
 * save_in_progress cleared, generation set — so the process's own header is never altered
 * (the caller still holds the lock while this runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
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

/* Write [a, end) at off, taking substituted ranges from their sources; CRC continues *crc. */
static int write_span(int fd, uint64_t a, uint64_t end, uint64_t off, const struct substitute *subs, int nsubs,
                      unsigned flags, uint32_t *crc, uint64_t *written) {
  uint32_t c = *crc;
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

#define PAGE 4096ull
#define COPY_PIECE (64ull << 20)

/* Put [src_off, +len) of the previous image at dst_off: shared extents, else an in-kernel
 * copy. 0, or 1 when neither works here (the caller writes the bytes from memory). Writeback
 * is the caller's (write_one). */
static int copy_from_prev(int out, struct imgdump_copy_source *src, uint64_t src_off, uint64_t dst_off, uint64_t len,
                          uint64_t *written) {
  if (!src->no_reflink) {
    struct file_clone_range r = {.src_fd = src->fd, .src_offset = src_off, .src_length = len, .dest_offset = dst_off};
    if (ioctl(out, FICLONERANGE, &r) == 0) {
      src->reflinked += len / PAGE;
      *written += len;
      return 0;
    }
    src->no_reflink = 1; /* EOPNOTSUPP, EXDEV, EINVAL (ext4, tmpfs, other filesystems): copy */
  }
  if (src->no_copy) return 1;
  off64_t in = (off64_t)src_off, o = (off64_t)dst_off;
  uint64_t left = len;
  while (left) {
    ssize_t k = copy_file_range(src->fd, &in, out, &o, left < COPY_PIECE ? left : COPY_PIECE, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (left == len && k < 0 && errno != EFBIG && errno != ENOSPC && errno != EIO) { src->no_copy = 1; return 1; }
      return k < 0 ? -errno : -EIO;
    }
    left -= (uint64_t)k, *written += (uint64_t)k;
  }
  src->copied += len / PAGE;
  return 0;
}

static int in_substitute(uint64_t a, uint64_t end, const struct substitute *subs, int nsubs) {
  for (int i = 0; i < nsubs; i++)
    if (a < subs[i].end && subs[i].start < end) return 1;
  return 0;
}

static int page_is_zero(uint64_t a) {
  const uint64_t *p = (const uint64_t *)a;
  for (size_t i = 0; i < PAGE / sizeof *p; i++)
    if (p[i]) return 0; /* most pages end here, at their first word */
  return 1;
}

/* How a page reaches the file: a hole (all zero: a fresh output file reads zero there),
 * shared or copied from the previous image (unchanged since), or written from memory. Only
 * whole pages that are not substituted can be anything but written. */
enum page_way { PAGE_WRITE, PAGE_HOLE, PAGE_PREV };

static enum page_way page_way(const struct imgdump_write *w, struct imgdump_copy_source *src, uint64_t a,
                              const struct substitute *subs, int nsubs) {
  if (a % PAGE || a + PAGE > w->addr + w->size || in_substitute(a, a + PAGE, subs, nsubs)) return PAGE_WRITE;
  if (page_is_zero(a)) return PAGE_HOLE;
  if (!src || w->prev == IMGDUMP__NO_PREV) return PAGE_WRITE;
  uint64_t prev_end = w->addr + (w->prev_len < w->size ? w->prev_len : w->size);
  if (a + PAGE > prev_end) return PAGE_WRITE;
  return src->page_clean(src->ctx, a, w->prev + (a - w->addr)) ? PAGE_PREV : PAGE_WRITE;
}

/* Write one planned range as runs of pages that reach the file the same way (page_way). The
 * CRC is always over memory, in address order, so the previous image's pages are checked by
 * it too. *holes and *from_prev count the pages not written. */
static int write_one(int fd, const struct imgdump_write *w, const struct substitute *subs, int nsubs,
                     unsigned flags, uint32_t *crc, uint64_t *written, struct imgdump_copy_source *src,
                     uint64_t *from_prev, uint64_t *holes) {
  uint32_t c = 0;
  uint64_t end = w->addr + w->size;
  *from_prev = 0;
  /* Writeback (the plan's flush) per WRITE_PIECE of progress, not per run: scattered dirty
   * pages make thousands of short runs, and one sync_file_range each cost more than the copy
   * saved (measured with bench/incremental). */
  unsigned piece_flags = flags & ~IMGDUMP__WRITE_FLUSH;
  uint64_t flushed = w->offset;
  uint64_t a = w->addr;
  while (a < end) {
    enum page_way way = page_way(w, src, a, subs, nsubs);
    uint64_t run = a, next = (a | (PAGE - 1)) + 1;
    if (next > end) next = end;
    while (next < end && next - run < COPY_PIECE && page_way(w, src, next, subs, nsubs) == way) {
      next += PAGE;
      if (next > end) next = end;
    }
    uint64_t off = w->offset + (run - w->addr), len = next - run;
    int rc = 1;
    if (way == PAGE_HOLE) {
      rc = 0, *holes += len / PAGE, *written += len;
    } else if (way == PAGE_PREV) {
      rc = copy_from_prev(fd, src, w->prev + (run - w->addr), off, len, written);
      if (rc == 0) *from_prev += len / PAGE;
    }
    if (rc == 0) c = imgdump__crc32c(c, (const void *)run, (size_t)len);
    else if (rc == 1) rc = write_span(fd, run, next, off, subs, nsubs, piece_flags, &c, written);
    if (rc < 0) return rc;
    a = next;
    uint64_t done_to = w->offset + (a - w->addr);
    if ((flags & IMGDUMP__WRITE_FLUSH) && (done_to - flushed >= WRITE_PIECE || a == end)) {
      sync_file_range(fd, (off_t)flushed, (off_t)(done_to - flushed), SYNC_FILE_RANGE_WRITE);
      flushed = done_to;
    }
  }
  *crc = c;
  return 0;
}

int imgdump__write_ranges(int fd, const struct imgdump_write *w, size_t n, uint32_t *crc_out,
                          uint64_t generation, unsigned flags, uint64_t *written) {
  return imgdump__write_ranges_from(fd, w, n, crc_out, generation, flags, written, NULL, NULL, NULL);
}

int imgdump__write_ranges_from(int fd, const struct imgdump_write *w, size_t n, uint32_t *crc_out,
                               uint64_t generation, unsigned flags, uint64_t *written,
                               struct imgdump_copy_source *src, uint64_t *from_prev, uint64_t *holes) {
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
    uint64_t pages = 0, zero = 0;
    rc = write_one(fd, &w[i], subs, nsubs, flags, &crc, &total, src, &pages, &zero);
    if (crc_out) crc_out[i] = crc;
    if (from_prev) from_prev[i] = pages;
    if (holes) *holes += zero;
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
