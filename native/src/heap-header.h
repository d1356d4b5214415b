/*
 * heap-header.h — the first page(s) of the heap segment: the one context of libimgdump.
 *
 * Everything the library needs to survive a save lives here, inside the dumped range, so a
 * dump of [base, brk) is a consistent allocator plus the runtime's roots, hooks, extern slots
 * and regions. The layout is a contract with src/heap/ (TypeScript reader) and with saved
 * images: fields are only appended, and IMGDUMP_HEAP_LAYOUT_VERSION changes when they move.
 * Specified in docs/heap-layout.md.
 */
#ifndef IMGDUMP_HEAP_HEADER_H
#define IMGDUMP_HEAP_HEADER_H

#include <stdint.h>

#define IMGDUMP_HEAP_MAGIC 0x50414548504d4449ull /* "IDMPHEAP" little-endian */
#define IMGDUMP_HEAP_LAYOUT_VERSION 1u

#ifndef IMGDUMP_DEFAULT_BASE
#define IMGDUMP_DEFAULT_BASE 0x600000000000ull /* above a pinned PIE's 0x555555554000 */
#endif
#ifndef IMGDUMP_DEFAULT_RESERVE
#define IMGDUMP_DEFAULT_RESERVE (64ull << 30) /* 64 GiB, PROT_NONE + MAP_NORESERVE */
#endif

#define IMGDUMP_MAX_HOOKS 32
#define IMGDUMP_MAX_EXTERNS 64
#define IMGDUMP_MAX_REGIONS 16
#define IMGDUMP_NROOTS 64 /* = IMGDUMP_ROOTS of the public header */

struct imgdump_hook {
  void (*fn)(void *arg);
  void *arg;
};

struct imgdump_extern_slot {
  void *value;  /* the resolved address (the slot imgdump_extern returns points here) */
  char *symbol; /* heap copy of the symbol name, NUL-terminated */
};

struct imgdump_region_rec {
  uint64_t addr;
  uint64_t len;
};

struct imgdump_heap_header {
  uint64_t magic;          /*   0 IMGDUMP_HEAP_MAGIC */
  uint32_t layout_version; /*   8 */
  uint32_t header_size;    /*  12 bytes from base to the first chunk (page multiple) */
  uint64_t base;           /*  16 address of this header */
  uint64_t reserve;        /*  24 bytes reserved for the whole range */
  uint64_t brk;            /*  32 emulated program break (absolute address) */
  uint64_t committed;      /*  40 end of the writable part (page aligned, >= brk) */
  uint64_t generation;     /*  48 generation of the image this heap was saved as; 0 fresh */
  uint32_t save_in_progress; /* 56 1 while imgdump_save runs; 0 in every written copy */
  uint32_t lock;           /*  60 allocator lock word; 0 in every written copy */
  uint32_t n_on_save;      /*  64 */
  uint32_t n_on_restore;   /*  68 */
  uint32_t n_externs;      /*  72 */
  uint32_t n_regions;      /*  76 */
  void *roots[IMGDUMP_NROOTS];                          /*   80 */
  struct imgdump_hook on_save[IMGDUMP_MAX_HOOKS];       /*  592 */
  struct imgdump_hook on_restore[IMGDUMP_MAX_HOOKS];    /* 1104 */
  struct imgdump_extern_slot externs[IMGDUMP_MAX_EXTERNS]; /* 1616 */
  struct imgdump_region_rec regions[IMGDUMP_MAX_REGIONS];  /* 2640 */
  uint64_t alloc_state_offset; /* 2896 offset from base of the allocator state (alloc.c) */
  uint64_t alloc_state_size;   /* 2904 */
  /* 2912: allocator state follows (see docs/heap-layout.md) */
};

_Static_assert(sizeof(struct imgdump_heap_header) == 2912, "heap header layout is a contract");

#endif
