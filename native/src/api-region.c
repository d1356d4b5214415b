/*
 * api-region.c — extra fixed-address regions the runtime manages itself (GC spaces), saved
 * and restored with the heap. Page-aligned, non-empty, disjoint from the heap range and
 * from each other.
 */
#include "alloc-core.h"
#include "imgdump.h"
#include "os.h"

static int overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) { return a < b + bn && b < a + an; }

int imgdump_region(void *addr, size_t len) {
  uint64_t a = (uint64_t)addr, n = len;
  if (!addr || !n || (a & (IMGDUMP_PAGE - 1)) || (n & (IMGDUMP_PAGE - 1)) || a + n < a) return IMGDUMP_EINVAL;
  struct imgdump_heap_header *h = imgdump__heap();
  if (!h) return IMGDUMP_ENOHEAP;
  if (overlaps(a, n, h->base, h->reserve)) {
    imgdump__set_error("imgdump_region: [0x%llx, +0x%llx) overlaps the heap range", (unsigned long long)a,
                       (unsigned long long)n);
    return IMGDUMP_EINVAL;
  }
  int rc = 0;
  imgdump__lock_word(&h->lock);
  for (uint32_t i = 0; i < h->n_regions && rc == 0; i++) {
    struct imgdump_region_rec *r = &h->regions[i];
    if (r->addr == a && r->len == n) rc = 1; /* registering again is a no-op */
    else if (overlaps(a, n, r->addr, r->len)) rc = IMGDUMP_EINVAL;
  }
  if (rc == 0) {
    if (h->n_regions >= IMGDUMP_MAX_REGIONS) rc = IMGDUMP_ENOMEM;
    else h->regions[h->n_regions++] = (struct imgdump_region_rec){a, n};
  }
  imgdump__unlock_word(&h->lock);
  return rc > 0 ? 0 : rc;
}
