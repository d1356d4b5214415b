/*
 * dirty-track.h — which pages of the saved ranges were written since the previous image, so
 * a save copies the clean ones from that image instead of writing them from memory
 * (DESIGN §5, incremental images). Two methods:
 *
 *   pagemap — the process runs from an image: a page still mapped from the image file is
 *             clean, a written page has become anonymous (copy on write). /proc/self/pagemap
 *             and /proc/self/maps tell them apart on any kernel, without privileges.
 *   uffd    — after a save with IMGDUMP_CONTINUE: userfaultfd write-protect in async mode
 *             (UFFD_USER_MODE_ONLY, unprivileged), harvested and re-armed atomically by the
 *             PAGEMAP_SCAN ioctl (Linux >= 6.7). The previous image is the file that save
 *             wrote, kept open.
 *
 * A wrong "clean" is data loss, so every doubt answers "dirty": a page outside what was
 * armed, a page whose mapping is not the previous image at the planned offset, any error.
 */
#ifndef IMGDUMP_DIRTY_TRACK_H
#define IMGDUMP_DIRTY_TRACK_H

#include <stdint.h>
#include "scratch.h"

enum dirty_method { DIRTY_NONE = 0, DIRTY_PAGEMAP = 1, DIRTY_UFFD = 2 };

struct dirty_range {
  uint64_t start, end;
};

/* The dirty knowledge of one save, taken at its snapshot point (imgdump__dirty_begin). */
struct dirty_snapshot {
  struct scratch arena;     /* its own: the written list may be large (MAP_NORESERVE) */
  enum dirty_method method;
  int prev_fd;              /* the previous image, readable; -1 with DIRTY_NONE */
  int prev_is_exe;          /* prev_fd is /proc/self/exe (the image this process runs from) */
  uint64_t prev_generation; /* generation recorded in that image */
  const char *why_full;     /* with DIRTY_NONE: why no previous image could be used */
  /* uffd: the written pages, sorted, and the ranges that were armed before this save. */
  struct dirty_range *written;
  size_t n_written;
  struct dirty_range *armed;
  size_t n_armed;
  /* pagemap: the exe image's file mappings ([start,end) at file offset), sorted, and one
   * byte per page of them: still the file's page. Read before uffd arming, whose markers
   * pagemap would show as swap entries. */
  struct dirty_range *maps;
  uint64_t *map_offsets;
  uint64_t *map_first; /* index of each map's first page in page_clean */
  uint8_t *page_clean;
  size_t n_maps;
  int pagemap_fd;
};

/* At the save's snapshot point (single-threaded, nothing written yet): decide the method,
 * harvest and re-arm (uffd), arm the ranges not yet armed. `ranges` are the saved ranges of
 * this process (data segment, heap reservation, regions). Never fails: at worst DIRTY_NONE. */
void imgdump__dirty_begin(struct dirty_snapshot *d, const struct dirty_range *ranges, size_t n);

/* 1 when the page at `addr` (page-aligned) holds the same bytes as the previous image at file
 * offset `prev_off`; 0 when it may not (dirty, unknown). */
int imgdump__dirty_page_clean(struct dirty_snapshot *d, uint64_t addr, uint64_t prev_off);

/* After the save: `ok` and the mode tell whether the new image becomes the next previous
 * image (CONTINUE). `image_fd` is a read-only descriptor of it (or -1); it is taken over
 * (kept or closed). A read-only one: a writer would make exec of the image fail (ETXTBSY).
 * Closes what the snapshot opened. */
void imgdump__dirty_end(struct dirty_snapshot *d, int ok, int continues, int image_fd, uint64_t generation);

/* "none", "pagemap", "uffd". */
const char *imgdump__dirty_method_name(enum dirty_method m);

#endif
