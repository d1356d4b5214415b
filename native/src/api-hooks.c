/*
 * api-hooks.c — on-save / on-restore hooks, kept in the heap header so the registrations
 * survive a save (function pointers stay valid: the executable is pinned at the same
 * address in the image).
 */
#include "alloc-core.h"
#include "imgdump.h"

static int add_hook(int which, void (*fn)(void *), void *arg) {
  if (!fn) return IMGDUMP_EINVAL;
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return IMGDUMP_ENOHEAP;
  int rc = 0;
  imgdump__lock_word(&h->lock);
  uint32_t *n = which == IMGDUMP_HOOK_SAVE ? &h->n_on_save : &h->n_on_restore;
  struct imgdump_hook *tab = which == IMGDUMP_HOOK_SAVE ? h->on_save : h->on_restore;
  if (*n >= IMGDUMP_MAX_HOOKS) rc = IMGDUMP_ENOMEM;
  else tab[*n] = (struct imgdump_hook){fn, arg}, ++*n;
  imgdump__unlock_word(&h->lock);
  return rc;
}

int imgdump_on_save(void (*fn)(void *arg), void *arg) { return add_hook(IMGDUMP_HOOK_SAVE, fn, arg); }

int imgdump_on_restore(void (*fn)(void *arg), void *arg) { return add_hook(IMGDUMP_HOOK_RESTORE, fn, arg); }

void imgdump__run_hooks(int which) {
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return;
  /* Unlocked: hooks may allocate or register further hooks (which then run too). */
  for (uint32_t i = 0;; i++) {
    uint32_t n = __atomic_load_n(which == IMGDUMP_HOOK_SAVE ? &h->n_on_save : &h->n_on_restore, __ATOMIC_ACQUIRE);
    if (i >= n) break;
    struct imgdump_hook k = which == IMGDUMP_HOOK_SAVE ? h->on_save[i] : h->on_restore[i];
    k.fn(k.arg);
  }
}
