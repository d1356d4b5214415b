/*
 * alloc-fork.c — fork while three other threads allocate: every child must find a
 * consistent heap (walk passes), allocate and free freely, and exit 0. A child that
 * inherited a held lock would hang (the test runner's timeout catches it).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/alloc-state.h"
#include "../src/internal.h"
#include "test-support.h"

static volatile int stop;

static void *allocator(void *arg) {
  uint64_t s = (uint64_t)(uintptr_t)arg;
  void *slots[64] = {0};
  while (!stop) {
    int i = (int)(rnd(&s) % 64);
    free(slots[i]);
    slots[i] = malloc(rnd(&s) % 3000);
    CHECK(slots[i], "malloc");
  }
  for (int i = 0; i < 64; i++) free(slots[i]);
  return NULL;
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 100;
  pthread_t t[3];
  for (int i = 0; i < 3; i++) CHECK(pthread_create(&t[i], NULL, allocator, (void *)(uintptr_t)(i + 1)) == 0, "create");
  for (int k = 0; k < forks; k++) {
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
      if (imgdump__heap_walk(NULL, NULL) != 0) _exit(3);
      void *p[100];
      for (int i = 0; i < 100; i++)
        if (!(p[i] = malloc((size_t)i * 37 + 1))) _exit(4);
      for (int i = 0; i < 100; i++) free(p[i]);
      _exit(imgdump__heap_walk(NULL, NULL) == 0 ? 0 : 5);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d status 0x%x", k, st);
  }
  stop = 1;
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  CHECK(imgdump__heap_walk(NULL, NULL) == 0, "parent walk");
  printf("ok forks=%d\n", forks);
  return 0;
}
