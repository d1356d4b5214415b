/*
 * write-loop — the baseline of save throughput: write SIZE MiB to a new file with one
 * `write` loop of 16 MiB blocks, fsync, print seconds. Same page-cache conditions as a save.
 *   write-loop FILE MIB
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t block = 16u << 20, total = (size_t)atol(argv[2]) << 20;
  char *buf = malloc(block);
  memset(buf, 0x5a, block);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) { perror("open"); return 1; }
  for (size_t done = 0; done < total; done += block)
    if (write(fd, buf, block) != (ssize_t)block) { perror("write"); return 1; }
  fsync(fd);
  close(fd);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.4f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
