/*
 * api-extern.c — persistent slots holding shared-library symbol addresses (manual dynamic
 * linking): the slot and a heap copy of the name live in the header/heap and are saved;
 * every restored process re-resolves them with dlsym(RTLD_DEFAULT, …) before main.
 */
#include <dlfcn.h>
#include <string.h>

#include "alloc-core.h"
#include "imgdump.h"

void **imgdump_extern(const char *symbol) {
  if (!symbol || !*symbol) return NULL;
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return NULL;
  void *value = dlsym(RTLD_DEFAULT, symbol); /* outside the lock: ld.so may allocate */
  if (!value) {
    imgdump__set_error("imgdump_extern: symbol %s not found", symbol);
    return NULL;
  }
  size_t len = strlen(symbol) + 1;
  char *copy = imgdump__malloc(len); /* in the heap: saved with the slot */
  if (!copy) return NULL;
  memcpy(copy, symbol, len);
  void **slot = NULL;
  imgdump__lock_word(&h->lock);
  for (uint32_t i = 0; i < h->n_externs && !slot; i++)
    if (!strcmp(h->externs[i].symbol, symbol)) slot = &h->externs[i].value;
  if (!slot && h->n_externs < IMGDUMP_MAX_EXTERNS) {
    struct imgdump_extern_slot *e = &h->externs[h->n_externs++];
    e->symbol = copy, e->value = value;
    slot = &e->value;
    copy = NULL;
  }
  imgdump__unlock_word(&h->lock);
  imgdump__free(copy); /* already registered (or the table is full) */
  if (!slot) imgdump__set_error("imgdump_extern: all %d slots are in use", IMGDUMP_MAX_EXTERNS);
  return slot;
}

int imgdump__externs_resolve(void) {
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return 0;
  int missing = 0;
  for (uint32_t i = 0; i < h->n_externs; i++) {
    void *v = dlsym(RTLD_DEFAULT, h->externs[i].symbol);
    h->externs[i].value = v;
    if (!v) missing++;
  }
  return missing;
}
