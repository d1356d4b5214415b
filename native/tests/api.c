/*
 * api.c — the C API of the heap side: roots, hooks, extern slots, regions, strerror, and the
 * save writer (imgdump__write_ranges: offsets, sanitised header, CRC32C, EFBIG).
 * usage: api TMPDIR
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../include/imgdump.h"
#include "../src/alloc-state.h"
#include "../src/internal.h"
#include "test-support.h"

uint32_t imgdump__crc32c_sw(uint32_t crc, const void *p, size_t n);

static int order[8], norder;
static void hook(void *arg) { order[norder++] = (int)(intptr_t)arg; }

static void test_roots(void) {
  int x;
  CHECK(imgdump_set_root(0, &x) == 0 && imgdump_root(0) == &x, "root 0");
  CHECK(imgdump_set_root(IMGDUMP_ROOTS - 1, &x) == 0, "last root");
  CHECK(imgdump_set_root(IMGDUMP_ROOTS, &x) == IMGDUMP_EINVAL, "root out of range");
  CHECK(imgdump_root(IMGDUMP_ROOTS) == NULL && imgdump_root(5) == NULL, "unset roots");
  CHECK(imgdump__heap()->roots[0] == &x, "root stored in the header");
}

static void test_hooks(void) {
  CHECK(imgdump_on_save(hook, (void *)1) == 0 && imgdump_on_save(hook, (void *)2) == 0, "on_save");
  CHECK(imgdump_on_restore(hook, (void *)3) == 0, "on_restore");
  CHECK(imgdump_on_save(NULL, NULL) == IMGDUMP_EINVAL, "NULL hook");
  imgdump__run_hooks(IMGDUMP_HOOK_SAVE);
  CHECK(norder == 2 && order[0] == 1 && order[1] == 2, "save hooks in order (%d ran)", norder);
  imgdump__run_hooks(IMGDUMP_HOOK_RESTORE);
  CHECK(norder == 3 && order[2] == 3, "restore hook");
  int rc = 0, n = 2;
  while ((rc = imgdump_on_save(hook, NULL)) == 0) n++;
  CHECK(rc == IMGDUMP_ENOMEM && n == IMGDUMP_MAX_HOOKS, "hook table full after %d: %d", n, rc);
}

static void test_externs(void) {
  void **slot = imgdump_extern("puts");
  CHECK(slot && *slot == dlsym(RTLD_DEFAULT, "puts"), "extern puts");
  struct imgdump_heap_header *h = imgdump__heap();
  CHECK(in_heap(slot, h->base, h->reserve), "slot in the header");
  CHECK(in_heap(h->externs[0].symbol, h->base, h->reserve) && !strcmp(h->externs[0].symbol, "puts"),
        "symbol copied into the heap");
  CHECK(imgdump_extern("puts") == slot, "same symbol, same slot");
  CHECK(imgdump_extern("no_such_symbol_imgdump") == NULL, "unknown symbol");
  *slot = NULL;
  CHECK(imgdump__externs_resolve() == 0 && *slot == dlsym(RTLD_DEFAULT, "puts"), "re-resolved");
}

static void test_regions(void) {
  struct imgdump_heap_header *h = imgdump__heap();
  char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED, "mmap");
  CHECK(imgdump_region(m + 1, 4096) == IMGDUMP_EINVAL, "unaligned address");
  CHECK(imgdump_region(m, 100) == IMGDUMP_EINVAL, "unaligned length");
  CHECK(imgdump_region(m, 0) == IMGDUMP_EINVAL, "empty");
  CHECK(imgdump_region((void *)(h->base + 4096), 4096) == IMGDUMP_EINVAL, "inside the heap");
  CHECK(imgdump_region((void *)(h->base - 4096), 8192) == IMGDUMP_EINVAL, "straddling the heap");
  CHECK(imgdump_region(m, 65536) == 0 && imgdump_region(m, 65536) == 0, "register (twice)");
  CHECK(imgdump_region(m + 4096, 4096) == IMGDUMP_EINVAL, "overlapping a region");
  CHECK(h->n_regions == 1 && h->regions[0].addr == (uint64_t)m && h->regions[0].len == 65536, "recorded");
  int i = 1;
  while (imgdump_region(m + 65536 * i, 4096) == 0) i++;
  CHECK(i == IMGDUMP_MAX_REGIONS && imgdump_region(m + 65536 * 15 + 8192, 4096) == IMGDUMP_ENOMEM, "full at %d", i);
}

static void test_strerror(void) {
  for (int c = 0; c >= IMGDUMP_ECANCELED; c--)
    CHECK(strcmp(imgdump_strerror(c), "unknown error") != 0, "code %d has a message", c);
  CHECK(!strcmp(imgdump_strerror(-99), "unknown error") && !strcmp(imgdump_strerror(3), "unknown error"), "unknown");
}

static void test_crc(void) {
  CHECK(imgdump__crc32c(0, "123456789", 9) == 0xe3069283u, "check value");
  CHECK(imgdump__crc32c_sw(0, "123456789", 9) == 0xe3069283u, "table check value");
  unsigned char buf[5000];
  uint64_t s = 99;
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)rnd(&s);
  for (size_t off = 0; off < 9; off++)
    for (size_t n = 0; n < 300; n += 7) {
      uint32_t a = imgdump__crc32c(0, buf + off, n), b = imgdump__crc32c_sw(0, buf + off, n);
      CHECK(a == b, "hw %08x != table %08x at %zu+%zu", a, b, off, n);
      CHECK(imgdump__crc32c(imgdump__crc32c(0, buf + off, n / 3), buf + off + n / 3, n - n / 3) == a, "chaining");
    }
}

static void test_write_ranges(const char *dir) {
  struct imgdump_heap_header *h = imgdump__heap();
  char path[4096];
  snprintf(path, sizeof path, "%s/ranges.bin", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0, "open %s", path);
  char *blob = malloc(100000);
  for (int i = 0; i < 100000; i++) blob[i] = (char)(i * 13);
  char *b2 = malloc(100000), *back = malloc(h->brk - h->base); /* before: the heap must not move */
  struct imgdump_write w[2] = {{h->base, h->brk - h->base, 8192}, {(uint64_t)blob, 100000, 4096}};
  w[0].offset = 4096 + 102400;
  uint32_t crc[2];
  uint64_t written = 0;
  imgdump__alloc_lock(); /* as save does: the writer must clear the lock in the copy only */
  uint32_t lock_before = h->lock;
  int rc = imgdump__write_ranges(fd, w, 2, crc, 7, IMGDUMP__WRITE_FLUSH, &written);
  uint32_t lock_after = h->lock;
  imgdump__alloc_unlock();
  CHECK(rc == 0 && written == w[0].size + w[1].size, "write_ranges %d %llu", rc, (unsigned long long)written);
  CHECK(lock_before && lock_after == lock_before && h->generation == 0, "process header untouched");
  size_t n0 = (size_t)w[0].size;
  CHECK(pread(fd, back, n0, (off_t)w[0].offset) == (ssize_t)n0, "read back heap");
  struct imgdump_heap_header *c = (struct imgdump_heap_header *)back;
  CHECK(c->magic == IMGDUMP_HEAP_MAGIC && c->lock == 0 && c->save_in_progress == 0 && c->generation == 7,
        "sanitised header: lock %u gen %llu", c->lock, (unsigned long long)c->generation);
  CHECK(!memcmp(back + 64, (char *)h->base + 64, n0 - 64), "heap bytes after the lock word equal");
  CHECK(imgdump__crc32c(0, back, n0) == crc[0], "crc of the written heap");
  CHECK(pread(fd, b2, 100000, 4096) == 100000 && !memcmp(b2, blob, 100000), "blob at its offset");
  CHECK(imgdump__crc32c(0, b2, 100000) == crc[1], "crc of the blob");
  /* EFBIG instead of SIGXFSZ death. */
  struct rlimit old, small = {65536, 65536};
  getrlimit(RLIMIT_FSIZE, &old);
  small.rlim_max = old.rlim_max;
  CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit");
  struct imgdump_write big = {(uint64_t)blob, 100000, 0};
  rc = imgdump__write_ranges(fd, &big, 1, crc, 1, 0, &written);
  CHECK(rc == -EFBIG, "file size limit gives %d, not -EFBIG", rc);
  setrlimit(RLIMIT_FSIZE, &old);
  CHECK(imgdump__write_ranges(-1, &big, 1, crc, 1, 0, &written) == -EINVAL, "bad fd");
  close(fd);
  unlink(path);
  free(back), free(b2), free(blob);
}

int main(int argc, char **argv) {
  CHECK(argc > 1, "usage: api TMPDIR");
  test_roots();
  test_hooks();
  test_externs();
  test_regions();
  test_strerror();
  test_crc();
  test_write_ranges(argv[1]);
  printf("ok api\n");
  return 0;
}
