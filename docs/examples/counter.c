/* counter.c — the smallest runtime that persists: every run adds its arguments to a list
 * kept in the heap; `save` writes an image that starts with the list already there.
 *
 *   cc counter.c $(imgdump config --cflags --libs) -o counter
 *   ./counter apple pear save      # builds the list, saves ./counter.img
 *   ./counter.img plum             # restored: apple pear plum
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgdump.h"

struct item {
  struct item *next;
  char name[];
};

struct world {
  struct item *items;
  long runs;
};

static void add(struct world *w, const char *name) {
  struct item *it = malloc(sizeof *it + strlen(name) + 1);
  strcpy(it->name, name);
  it->next = w->items;
  w->items = it;
}

int main(int argc, char **argv) {
  struct world *w;
  if (imgdump_restored()) {
    w = imgdump_root(0); /* the saved world, as it was */
  } else {
    w = calloc(1, sizeof *w); /* a fresh start: build the world */
    imgdump_set_root(0, w);
  }
  w->runs++;
  int save = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "save")) save = 1;
    else add(w, argv[i]);
  }
  printf("generation %d, run %ld:", imgdump_restored(), w->runs);
  for (struct item *it = w->items; it; it = it->next) printf(" %s", it->name);
  printf("\n");
  if (save) {
    int rc = imgdump_save("counter.img", IMGDUMP_EXIT); /* does not return on success */
    fprintf(stderr, "save failed: %s (%s)\n", imgdump_strerror(rc), imgdump_last_error());
    return 1;
  }
  return 0;
}
