/*
 * internal.h — the seams between libimgdump's parts. Names with a double underscore are
 * internal (exported from the .so only because the parts live in separate objects).
 *
 *   heap / allocator side (heap-segment.c, alloc*.c, write-ranges.c, crc32c.c, api-*.c)
 *   image / cycle side    (startup.c, pin.c, manifest-read.c, save.c, control.c)
 */
#ifndef IMGDUMP_INTERNAL_H
#define IMGDUMP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "heap-header.h"

/* Process-local statics of the library (an "initialised" flag, a cached pointer) are part
 * of the executable's data and so would be saved and come back stale in an image. Marked
 * with this attribute they share one section, which the save writes as zeros: the image
 * starts them fresh. (GNU ld and lld define __start_/__stop_ symbols for such sections.) */
#define IMGDUMP_PROCESS_LOCAL __attribute__((section("imgdump_local"), used))
extern char __start_imgdump_local[] __attribute__((weak, visibility("hidden")));
extern char __stop_imgdump_local[] __attribute__((weak, visibility("hidden")));

/* ---- provided by the heap / allocator side ---- */

/* The initialised heap header: reserves the range in a fresh process or adopts the part
 * the kernel mapped from the image (imgdump__startup() tells which). NULL with errno set
 * (ENOMEM, EEXIST when the address is taken) on failure. Idempotent and thread-safe. */
struct imgdump_heap_header *imgdump__heap(void);

/* Take / release the allocator lock (save holds it while writing, fork handlers too). */
void imgdump__alloc_lock(void);
void imgdump__alloc_unlock(void);

/* One range of this process's memory to copy into the image file. */
struct imgdump_write {
  uint64_t addr;     /* start address in this process */
  uint64_t size;     /* bytes */
  uint64_t offset;   /* file offset in the output */
  uint64_t prev;     /* where the same bytes lie in the previous image, or IMGDUMP__NO_PREV */
  uint64_t prev_len; /* how many of them the previous image holds (from addr on) */
};
#define IMGDUMP__NO_PREV UINT64_MAX

/* Incremental saves: clean pages are copied from the previous image (reflink where the
 * filesystem shares extents, copy_file_range elsewhere) instead of written from memory. */
struct imgdump_copy_source {
  int fd;                                                    /* the previous image */
  int (*page_clean)(void *ctx, uint64_t addr, uint64_t prev_off);
  void *ctx;
  int no_reflink;        /* FICLONERANGE failed once: do not try again this save */
  int no_copy;           /* copy_file_range failed once: write from memory */
  uint64_t reflinked;    /* pages shared with the previous image (out) */
  uint64_t copied;       /* pages copied by copy_file_range (out) */
};

/* pwrite each range at its offset (large writes), CRC32C of the bytes as written into
 * crc_out[i]; all-zero pages are not written (holes in the fresh output). The bytes of the heap header page(s) are written from a sanitised copy: lock
 * and save_in_progress cleared, generation set to `generation`. SIGXFSZ is blocked while
 * writing (EFBIG instead of death). Returns 0 or -errno; *written gets the byte count.
 * IMGDUMP__WRITE_FLUSH (the plan's `flush`: the planner will fsync) starts writeback of each
 * piece as soon as it is written, so the disk works while the rest is copied. */
#define IMGDUMP__WRITE_FLUSH 1u
int imgdump__write_ranges(int fd, const struct imgdump_write *w, size_t n, uint32_t *crc_out,
                          uint64_t generation, unsigned flags, uint64_t *written);
/* The same with clean pages taken from `src` (may be NULL); from_prev[i] (may be NULL) gets
 * the pages of write i that came from the previous image, *holes (may be NULL) the all-zero
 * pages left as holes (the output is a fresh file: holes read as zero). Both count as written
 * in *written. */
int imgdump__write_ranges_from(int fd, const struct imgdump_write *w, size_t n, uint32_t *crc_out,
                               uint64_t generation, unsigned flags, uint64_t *written,
                               struct imgdump_copy_source *src, uint64_t *from_prev, uint64_t *holes);

/* CRC32C (Castagnoli), hardware instruction where available, table otherwise. Start with 0. */
uint32_t imgdump__crc32c(uint32_t crc, const void *p, size_t n);

/* Run the registered hooks (IMGDUMP_HOOK_SAVE / IMGDUMP_HOOK_RESTORE) in registration order. */
#define IMGDUMP_HOOK_SAVE 0
#define IMGDUMP_HOOK_RESTORE 1
void imgdump__run_hooks(int which);

/* Re-resolve every imgdump_extern slot with dlsym (restored process). Returns the number of
 * slots that could not be resolved (their value is set to NULL). */
int imgdump__externs_resolve(void);

/* ---- provided by the image / cycle side ---- */

struct imgdump_image_info {
  uint64_t generation;      /* generation recorded in the manifest */
  uint64_t heap_base;       /* heap header address recorded in the manifest */
  uint64_t heap_mapped_end; /* end of the heap bytes the kernel mapped from the image */
};

/* Called by imgdump__heap() before it touches the range, and by the library's earliest
 * constructor: in a fresh process, pins the layout (may re-exec; raw syscalls only, safe
 * inside malloc); in an image, finds the manifest, re-execs once when the layout is not the
 * saved one, and returns what the kernel mapped. NULL in a fresh process. Never calls into
 * ld.so or malloc. */
const struct imgdump_image_info *imgdump__startup(void);

/* Set the last error text returned by imgdump_last_error(). */
void imgdump__set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
