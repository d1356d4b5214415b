/*
 * write-loop — the baseline of save throughput: write SIZE to a new file with one `write`
 * loop of 16 MiB blocks (the last one short), fsync unless `nosync`, print seconds. Same
 * page-cache conditions as a save. SIZE is bytes, or MiB with an `M` suffix; 0 bytes is the
 * fsync floor (create, fsync, close) — incremental saves write a few pages, so the baseline
 * is exact to the byte.
 *   write-loop FILE SIZE[M] [nosync]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  char *unit;
  size_t block = 16u << 20, total = (size_t)strtoull(argv[2], &unit, 10);
  if (*unit == 'M') total <<= 20;
  int sync = !(argc > 3 && !strcmp(argv[3], "nosync"));
  char *buf = malloc(block);
  memset(buf, 0x5a, block);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) { perror("open"); return 1; }
  for (size_t done = 0; done < total;) {
    size_t n = total - done < block ? total - done : block;
    if (write(fd, buf, n) != (ssize_t)n) { perror("write"); return 1; }
    done += n;
  }
  if (sync) fsync(fd);
  close(fd);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.6f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
