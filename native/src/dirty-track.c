/*
 * dirty-track.c — written-page tracking for incremental saves (dirty-track.h).
 *
 * Kernel facts relied on (Documentation/admin-guide/mm/pagemap.rst, userfaultfd.rst):
 * - pagemap entry bit 63 present, 62 swapped, 61 "file-page or shared-anon": a private file
 *   mapping's page that was written has been copied to an anonymous page (bit 61 clear); a
 *   page never faulted in is neither present nor swapped and still reads from the file.
 * - UFFD_FEATURE_WP_ASYNC resolves write-protect faults in the kernel (no handler thread),
 *   also for writes the kernel does on the process's behalf (read(2) into the range);
 *   UFFD_FEATURE_WP_UNPOPULATED protects pages not yet populated; a forked child's mappings
 *   are not registered, so its writes do not count for the parent.
 * - PAGEMAP_SCAN with PM_SCAN_WP_MATCHING reports the written pages and write-protects them
 *   again in the same walk, so no write can fall between harvest and re-arm.
 * Debian 12's headers predate these (Linux 6.1): the ABI is declared here.
 */
#include "dirty-track.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "internal.h"
#include "os.h"
#include "process-facts.h"
#include "startup.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define FEATURE_WP_UNPOPULATED (1ull << 13)
#define FEATURE_WP_ASYNC (1ull << 15)

struct pm_page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PM_IOCTL_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1ull << 0)
#define PM_SCAN_CHECK_WPASYNC (1ull << 1)
#define PM_PAGE_IS_WRITTEN (1ull << 1)

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)

#define MAX_ARMED 72
#define SCAN_VEC 1024

/* Tracking outlives one save but not an exec: process-local (zero in every image). File
 * descriptors are stored plus one so that zero means "none". */
IMGDUMP_PROCESS_LOCAL static struct {
  int uffd1;
  int base1;              /* the previous image written by this process (CONTINUE), + 1 */
  int base_valid;
  uint64_t base_generation;
  pid_t pid;
  struct dirty_range armed[MAX_ARMED];
  size_t n_armed;
} track;

const char *imgdump__dirty_method_name(enum dirty_method m) {
  return m == DIRTY_UFFD ? "uffd" : m == DIRTY_PAGEMAP ? "pagemap" : "none";
}

static int env_off(const char *name) {
  const char *v = getenv(name);
  return v && !strcmp(v, "0");
}

static int uffd_open(void) {
  if (env_off("IMGDUMP_UFFD")) return -1;
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -1;
  struct uffdio_api api = {.api = UFFD_API, .features = FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    close(fd);
    return -1;
  }
  int high = imgdump__os_dup_high(fd); /* out of the runtime's way, like the control socket */
  if (high >= 0) { close(fd); fd = high; }
  return fd;
}

/* The written ranges of a harvest, in one array in address order (the armed ranges are
 * scanned sorted, and each scan reports in address order). */
struct harvest {
  struct pm_page_region *vec;
  struct dirty_range *out; /* NULL: re-arm only */
  size_t n, cap;
};

/* One PAGEMAP_SCAN pass over [start, end): write-protects again what was written, and
 * appends the written ranges to h->out (when given). 0, or -1 (also when h->out is full). */
static int scan_rearm(int pm, uint64_t start, uint64_t end, struct harvest *h) {
  while (start < end) {
    struct pm_scan_arg a = {.size = sizeof a, .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, .start = start,
                            .end = end, .vec = (uint64_t)(uintptr_t)h->vec, .vec_len = SCAN_VEC,
                            .category_mask = PM_PAGE_IS_WRITTEN, .return_mask = PM_PAGE_IS_WRITTEN};
    long n = ioctl(pm, PM_IOCTL_SCAN, &a);
    if (n < 0) return -1;
    for (long i = 0; h->out && i < n; i++) {
      if (h->n && h->out[h->n - 1].end == h->vec[i].start) { h->out[h->n - 1].end = h->vec[i].end; continue; }
      if (h->n == h->cap) return -1; /* more scattered than we can hold: unknown, so full */
      h->out[h->n++] = (struct dirty_range){h->vec[i].start, h->vec[i].end};
    }
    if (a.walk_end <= start) return -1;
    start = a.walk_end;
  }
  return 0;
}

static void sort_ranges(struct dirty_range *r, size_t n) { /* insertion sort: at most MAX_ARMED */
  for (size_t i = 1; i < n; i++)
    for (size_t k = i; k > 0 && r[k].start < r[k - 1].start; k--) {
      struct dirty_range t = r[k];
      r[k] = r[k - 1], r[k - 1] = t;
    }
}

static int covered(const struct dirty_range *set, size_t n, uint64_t start, uint64_t end) {
  for (size_t i = 0; i < n; i++)
    if (start >= set[i].start && end <= set[i].end) return 1;
  return 0;
}

/* Register and write-protect the ranges not armed yet (their pages count as dirty this time). */
static void arm_new(int pm, struct harvest *h, const struct dirty_range *ranges, size_t n) {
  struct harvest rearm = {h->vec, NULL, 0, 0};
  for (size_t i = 0; i < n && track.n_armed < MAX_ARMED; i++) {
    const struct dirty_range *r = &ranges[i];
    if (r->end <= r->start || covered(track.armed, track.n_armed, r->start, r->end)) continue;
    struct uffdio_register reg = {.range = {r->start, r->end - r->start}, .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(track.uffd1 - 1, UFFDIO_REGISTER, &reg) < 0) continue;
    if (scan_rearm(pm, r->start, r->end, &rearm) < 0) continue;
    track.armed[track.n_armed++] = *r;
  }
  sort_ranges(track.armed, track.n_armed);
}

/* An image this process wrote with CONTINUE, and tracking armed since: the best previous image. */
static int uffd_base_usable(void) {
  return track.uffd1 && track.pid == getpid() && track.base_valid && track.base1;
}

/* Harvest and re-arm the armed ranges, arm new ones. `use`: the harvest is this save's
 * knowledge of written pages (otherwise it only re-arms, for the saves after this one). */
static void uffd_begin(struct dirty_snapshot *d, struct scratch *s, const struct dirty_range *ranges, size_t n, int use) {
  if (track.uffd1 && track.pid != getpid()) { /* a forked child: nothing of it is registered */
    track.uffd1 = 0, track.base1 = 0, track.base_valid = 0, track.n_armed = 0;
  }
  if (!track.uffd1) {
    int fd = uffd_open();
    if (fd < 0) return;
    track.uffd1 = fd + 1, track.pid = getpid(), track.n_armed = 0;
  }
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pm < 0) return;
  struct dirty_range *armed = imgdump__scratch_alloc(s, (track.n_armed + 1) * sizeof *armed);
  struct harvest h = {imgdump__scratch_alloc(s, SCAN_VEC * sizeof(struct pm_page_region)), NULL, 0, 0};
  if (use) { /* the rest of the arena holds the result (MAP_NORESERVE: only what is used is touched) */
    h.cap = (s->size - s->used) / sizeof *h.out - 1;
    h.out = imgdump__scratch_alloc(s, h.cap * sizeof *h.out);
  }
  int ok = armed && h.vec && (!use || h.out);
  if (ok) memcpy(armed, track.armed, track.n_armed * sizeof *armed);
  size_t n_armed = track.n_armed;
  /* Harvest every armed range (sorted), also when the result is not used: the scan re-arms. */
  for (size_t i = 0; ok && i < track.n_armed; i++) ok = scan_rearm(pm, track.armed[i].start, track.armed[i].end, &h) == 0;
  if (h.vec) arm_new(pm, &h, ranges, n);
  close(pm);
  if (!ok) { /* unknown: this save is full, and so is the next until a save succeeds */
    track.base_valid = 0;
    if (use) d->why_full = "the write-protect scan failed";
    return;
  }
  if (!use) return;
  d->method = DIRTY_UFFD;
  d->prev_fd = track.base1 - 1;
  d->prev_generation = track.base_generation;
  d->written = h.out, d->n_written = h.n;
  d->armed = armed, d->n_armed = n_armed;
}

/* The exe image's file mappings from /proc/self/maps (inode and device of /proc/self/exe). */
static int read_exe_maps(struct dirty_snapshot *d, struct scratch *s, const struct stat *exe) {
  size_t len;
  char *text = imgdump__read_proc_file(s, "/proc/self/maps", &len);
  if (!text) return -1;
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  d->maps = imgdump__scratch_alloc(s, lines * sizeof *d->maps);
  d->map_offsets = imgdump__scratch_alloc(s, lines * sizeof *d->map_offsets);
  if (!d->maps || !d->map_offsets) return -1;
  for (char *line = text; line && *line;) {
    char *next = strchr(line, '\n');
    if (next) *next++ = 0;
    unsigned long long start, end, off, ino;
    unsigned maj, min;
    char perms[8];
    if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &off, &maj, &min, &ino) == 7 &&
        ino == (unsigned long long)exe->st_ino && maj == major(exe->st_dev) && min == minor(exe->st_dev)) {
      d->maps[d->n_maps] = (struct dirty_range){start, end};
      d->map_offsets[d->n_maps++] = off;
    }
    line = next;
  }
  return 0;
}

/* One byte per page of the exe's mappings: 1 while the page is still the file's. */
static int read_page_states(struct dirty_snapshot *d, struct scratch *s) {
  uint64_t total = 0;
  d->map_first = imgdump__scratch_alloc(s, (d->n_maps + 1) * sizeof *d->map_first);
  if (!d->map_first) return -1;
  for (size_t m = 0; m < d->n_maps; m++) d->map_first[m] = total, total += (d->maps[m].end - d->maps[m].start) / IMGDUMP_PAGE;
  d->page_clean = imgdump__scratch_alloc(s, total + 1);
  uint64_t *buf = imgdump__scratch_alloc(s, 4096 * sizeof *buf);
  if (!d->page_clean || !buf) return -1;
  for (size_t m = 0; m < d->n_maps; m++) {
    uint64_t first = d->maps[m].start / IMGDUMP_PAGE, n = (d->maps[m].end - d->maps[m].start) / IMGDUMP_PAGE;
    for (uint64_t done = 0; done < n;) {
      uint64_t k = n - done < 4096 ? n - done : 4096;
      ssize_t r = pread(d->pagemap_fd, buf, k * 8, (off_t)((first + done) * 8));
      if (r != (ssize_t)(k * 8)) return -1;
      for (uint64_t i = 0; i < k; i++) {
        uint64_t e = buf[i];
        /* Untouched (neither present nor swapped), or the page-cache page itself. A swapped
         * page is an anonymous (written) one. */
        d->page_clean[d->map_first[m] + done + i] = !(e & PM_SWAPPED) && (!(e & PM_PRESENT) || (e & PM_FILE));
      }
      done += k;
    }
  }
  return 0;
}

static void pagemap_begin(struct dirty_snapshot *d, struct scratch *s) {
  const struct startup_facts *f = imgdump__facts();
  if (!f->is_image) {
    d->why_full = "the process started fresh: no previous image yet";
    return;
  }
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    if (fd >= 0) close(fd);
    d->why_full = "the image this process runs from cannot be opened";
    return;
  }
  d->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (d->pagemap_fd < 0 || read_exe_maps(d, s, &st) < 0 || read_page_states(d, s) < 0) {
    close(fd);
    if (d->pagemap_fd >= 0) close(d->pagemap_fd);
    d->pagemap_fd = -1;
    d->why_full = "/proc/self/pagemap or /proc/self/maps cannot be read";
    return;
  }
  d->method = DIRTY_PAGEMAP;
  d->prev_fd = fd;
  d->prev_is_exe = 1;
  d->prev_generation = f->generation;
}

#define ARENA (64u << 20) /* up to ~4M written ranges */

void imgdump__dirty_begin(struct dirty_snapshot *d, const struct dirty_range *ranges, size_t n) {
  memset(d, 0, sizeof *d);
  d->prev_fd = -1;
  d->pagemap_fd = -1;
  struct scratch *s = &d->arena;
  if (imgdump__scratch_open(s, ARENA)) { s->base = NULL; d->why_full = "no memory for the write tracking"; return; }
  /* A previous image this process wrote (CONTINUE) is newer than the one it runs from. The
   * page states of the image mapping are read before uffd arms anything (its markers read as
   * swap entries); the harvest runs even for a full save: it re-arms for the saves after it. */
  int incremental = !env_off("IMGDUMP_INCREMENTAL");
  int use_uffd = incremental && uffd_base_usable();
  if (incremental && !use_uffd) pagemap_begin(d, s);
  uffd_begin(d, s, ranges, n, use_uffd);
  if (!incremental) d->why_full = "IMGDUMP_INCREMENTAL=0";
}

static int find_range(const struct dirty_range *r, size_t n, uint64_t addr) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (addr < r[mid].start) hi = mid;
    else if (addr >= r[mid].end) lo = mid + 1;
    else return (int)mid;
  }
  return -1;
}

int imgdump__dirty_page_clean(struct dirty_snapshot *d, uint64_t addr, uint64_t prev_off) {
  if (d->method == DIRTY_UFFD) {
    int a = find_range(d->armed, d->n_armed, addr);
    if (a < 0 || addr + IMGDUMP_PAGE > d->armed[a].end) return 0;
    return find_range(d->written, d->n_written, addr) < 0;
  }
  if (d->method == DIRTY_PAGEMAP) {
    /* Clean only where the page is mapped from the image at exactly the planned offset. */
    int m = find_range(d->maps, d->n_maps, addr);
    if (m < 0 || addr + IMGDUMP_PAGE > d->maps[m].end) return 0;
    if (d->map_offsets[m] + (addr - d->maps[m].start) != prev_off) return 0;
    return d->page_clean[d->map_first[m] + (addr - d->maps[m].start) / IMGDUMP_PAGE];
  }
  return 0;
}

void imgdump__dirty_end(struct dirty_snapshot *d, int ok, int continues, int image_fd, uint64_t generation) {
  if (d->pagemap_fd >= 0) close(d->pagemap_fd);
  if (d->prev_is_exe && d->prev_fd >= 0) close(d->prev_fd);
  d->pagemap_fd = d->prev_fd = -1;
  if (d->arena.base) imgdump__scratch_close(&d->arena);
  d->arena.base = NULL;
  d->method = DIRTY_NONE;
  if (!track.uffd1 || !ok || !continues || image_fd < 0) {
    if (!ok) track.base_valid = 0;
    if (image_fd >= 0) close(image_fd);
    return;
  }
  int keep = imgdump__os_dup_high(image_fd);
  close(image_fd);
  if (track.base1) close(track.base1 - 1);
  track.base1 = keep >= 0 ? keep + 1 : 0;
  track.base_valid = keep >= 0;
  track.base_generation = generation;
}
