/*
 * process-facts.h — what this process can learn about itself from memory: its own program
 * headers and load bias (getauxval), the manifest note the loader mapped, the loaded
 * libraries with their build-ids (dl_iterate_phdr). No executable file is parsed.
 */
#ifndef IMGDUMP_PROCESS_FACTS_H
#define IMGDUMP_PROCESS_FACTS_H

#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include "scratch.h"

struct imgdump__own_image {
  const ElfW(Phdr) *phdr;
  size_t phnum;
  uint64_t bias;
};

/* This executable's program headers and load bias (0 for ET_EXEC). Safe inside malloc. */
void imgdump__own_image(struct imgdump__own_image *out);

/* The descriptor of the note (owner, type) inside a loaded PT_NOTE, or NULL. */
const void *imgdump__own_note(const struct imgdump__own_image *img, const char *owner, uint32_t type, size_t *len);

/* Lower-case hex of the GNU build-id among `phdr` (loaded at `base`) into hex[0..2*20+1]. */
int imgdump__build_id_hex(uint64_t base, const ElfW(Phdr) *phdr, size_t phnum, char *hex, size_t cap);

struct library_fact {
  const char *path;
  uint64_t base;
  const char *build_id; /* NULL when the library has none */
};

/* Call fn for every loaded shared object except the main program and the vDSO. */
int imgdump__for_each_library(int (*fn)(const struct library_fact *, void *), void *arg);

/* Read a /proc file whole into the arena (NUL-terminated); NULL on failure. */
char *imgdump__read_proc_file(struct scratch *s, const char *path, size_t *len);

#endif
