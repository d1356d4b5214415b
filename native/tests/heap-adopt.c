/*
 * heap-adopt.c — adoption of a heap mapped from a file, as in a process started from an
 * image. Linked with -Wl,--wrap=imgdump__startup: the wrapper below plays the image side.
 *   heap-adopt create FILE   build a heap (blocks with patterns, roots), write [base, brk)
 *                            to FILE with imgdump__write_ranges (generation 3)
 *   heap-adopt adopt FILE    (ADOPT_FILE=FILE ADOPT_BASE=…) the wrapper maps FILE at the
 *                            base MAP_PRIVATE plus a file-backed placeholder past EOF; the
 *                            library must adopt it, keep every block, zero calloc'd reused
 *                            memory, and grow past the mapped part.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/imgdump.h"
#include "../src/alloc-state.h"
#include "../src/internal.h"
#include "test-support.h"

#define NBLK 500

const struct imgdump_image_info *__real_imgdump__startup(void);

/* The image side: in adopt mode, map the saved heap like the kernel maps an image's heap
 * PT_LOAD (file-backed, private) and a placeholder after it (file-backed, past EOF). */
const struct imgdump_image_info *__wrap_imgdump__startup(void) {
  static struct imgdump_image_info info;
  static int done;
  const char *file = getenv("ADOPT_FILE"), *base_s = getenv("ADOPT_BASE");
  if (!file || !base_s) return __real_imgdump__startup();
  if (done) return &info;
  done = 1;
  uint64_t base = strtoull(base_s, NULL, 0);
  int fd = open(file, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) abort();
  uint64_t len = ((uint64_t)st.st_size + 4095) & ~4095ull;
  if (mmap((void *)base, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) != (void *)base) abort();
  /* Placeholder: 1 GiB of the same file, all past EOF (touching it would SIGBUS). */
  if (mmap((void *)(base + len), 1ull << 30, PROT_NONE, MAP_PRIVATE | MAP_FIXED, fd, (off_t)len) == MAP_FAILED) abort();
  close(fd);
  info.generation = 3;
  info.heap_base = base;
  info.heap_mapped_end = base + (uint64_t)st.st_size;
  return &info;
}

static unsigned char fill_byte(int i) { return (unsigned char)(i * 37 + 1); }

static int create(const char *file) {
  struct imgdump_heap_header *h = imgdump__heap();
  CHECK(h, "no heap");
  unsigned char **tab = malloc(NBLK * sizeof *tab);
  for (int i = 0; i < NBLK; i++) {
    size_t n = 16 + (size_t)(i * 97) % 3000;
    tab[i] = malloc(n);
    memset(tab[i], fill_byte(i), n);
  }
  for (int i = 0; i < NBLK; i += 3) free(tab[i]), tab[i] = NULL; /* leave free chunks around */
  CHECK(imgdump_set_root(0, tab) == 0, "root");
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0, "open");
  imgdump__alloc_lock();
  struct imgdump_write w = {h->base, h->brk - h->base, 0};
  uint32_t crc;
  uint64_t written;
  int rc = imgdump__write_ranges(fd, &w, 1, &crc, 3, 0, &written);
  imgdump__alloc_unlock();
  CHECK(rc == 0 && written == w.size, "write_ranges %d", rc);
  close(fd);
  printf("created base=0x%llx brk=0x%llx\n", (unsigned long long)h->base, (unsigned long long)h->brk);
  return 0;
}

static int adopt(void) {
  struct imgdump_heap_header *h = imgdump__heap();
  CHECK(h, "adoption failed: %s", strerror(errno));
  CHECK(h->generation == 3, "generation %llu", (unsigned long long)h->generation);
  CHECK(alloc_state(h)->adopted_end >= h->brk, "adopted_end");
  CHECK(imgdump__heap_walk(NULL, NULL) == 0, "walk of the adopted heap");
  unsigned char **tab = imgdump_root(0);
  CHECK(tab && in_heap(tab, h->base, h->reserve), "root 0");
  for (int i = 0; i < NBLK; i++) {
    if (!tab[i]) continue;
    size_t n = 16 + (size_t)(i * 97) % 3000;
    for (size_t k = 0; k < n; k++) CHECK(tab[i][k] == fill_byte(i), "block %d byte %zu lost", i, k);
    if (i % 2) free(tab[i]), tab[i] = NULL;
  }
  /* Reused (file-backed, dirty) memory must come back zeroed from calloc. */
  for (int i = 0; i < 300; i++) {
    size_t n = 16 + (size_t)(i * 53) % 3000;
    unsigned char *p = calloc(1, n);
    CHECK(p, "calloc");
    for (size_t k = 0; k < n; k++) CHECK(p[k] == 0, "calloc byte %zu of %zu is %d", k, n, p[k]);
  }
  /* Grow well past the mapped part: the placeholder must have been replaced. */
  uint64_t mapped_end = alloc_state(h)->adopted_end;
  unsigned char *big = malloc(64 << 20);
  CHECK(big && (uint64_t)big + (64 << 20) > mapped_end, "growth past the adopted part");
  memset(big, 1, 64 << 20);
  unsigned char *z = calloc(1, 8 << 20);
  CHECK(z, "calloc big");
  for (size_t k = 0; k < (8u << 20); k += 4096) CHECK(z[k] == 0, "big calloc not zero");
  CHECK(imgdump__heap_walk(NULL, NULL) == 0, "walk after growth");
  printf("adopted generation=3 brk=0x%llx\n", (unsigned long long)h->brk);
  return 0;
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: heap-adopt create|adopt FILE");
  return !strcmp(argv[1], "create") ? create(argv[2]) : adopt();
}
