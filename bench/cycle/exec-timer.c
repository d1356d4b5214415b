/*
 * exec-timer — time fork+execve+wait of a program, N runs, print the median in µs.
 * Forking from a small C process keeps Node's own spawn cost out of the numbers.
 *   exec-timer N pin|nopin PROGRAM [ARGS…]   (stdin of the child is /dev/null)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: exec-timer N pin|nopin PROGRAM [ARGS...]\n"); return 2; }
  int n = atoi(argv[1]), pin = !strcmp(argv[2], "pin");
  double *t = calloc((size_t)n, sizeof *t);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid == 0) {
      if (pin) personality(ADDR_NO_RANDOMIZE);
      int fd = open("/dev/null", O_RDWR);
      dup2(fd, 0);
      dup2(fd, 1);
      execv(argv[3], argv + 3);
      _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) { fprintf(stderr, "run %d failed: status %d\n", i, status); return 1; }
    t[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
  }
  qsort(t, (size_t)n, sizeof *t, cmp);
  printf("%.1f\n", t[n / 2]);
  return 0;
}
