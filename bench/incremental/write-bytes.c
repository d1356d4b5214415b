/*
 * write-bytes — bench/cycle/write-loop.c to the byte: an incremental save writes a few pages,
 * and write-loop's MiB count in 16 MiB blocks would overstate its baseline several-fold.
 * Writes BYTES to a new file in 16 MiB blocks (the last one short), fsyncs unless `nosync`,
 * prints seconds. BYTES = 0 is the fsync floor: create, fsync, close.
 *   write-bytes FILE BYTES [nosync]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t block = 16u << 20, total = (size_t)strtoull(argv[2], NULL, 10);
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
