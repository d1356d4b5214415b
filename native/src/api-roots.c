/* api-roots.c — root slots: pointers the runtime finds again after a restore. */
#include "imgdump.h"
#include "internal.h"

_Static_assert(IMGDUMP_ROOTS == IMGDUMP_NROOTS, "public and header root counts agree");

int imgdump_set_root(unsigned slot, void *p) {
  if (slot >= IMGDUMP_NROOTS) return IMGDUMP_EINVAL;
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return IMGDUMP_ENOHEAP;
  __atomic_store_n(&h->roots[slot], p, __ATOMIC_RELEASE);
  return 0;
}

void *imgdump_root(unsigned slot) {
  if (slot >= IMGDUMP_NROOTS) return NULL;
  struct imgdump_heap_header *h = imgdump__heap();
  return h ? __atomic_load_n(&h->roots[slot], __ATOMIC_ACQUIRE) : NULL;
}
