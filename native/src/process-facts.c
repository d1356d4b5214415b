#include "process-facts.h"

#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

void imgdump__own_image(struct imgdump__own_image *out) {
  out->phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
  out->phnum = getauxval(AT_PHNUM);
  out->bias = 0;
  /* PT_PHDR's p_vaddr is where the table lives before relocation: the difference is the
   * bias (kernel: load_bias + e_phoff mapping, see fs/binfmt_elf.c). */
  for (size_t i = 0; out->phdr && i < out->phnum; i++)
    if (out->phdr[i].p_type == PT_PHDR) out->bias = (uint64_t)(uintptr_t)out->phdr - out->phdr[i].p_vaddr;
}

/* Walk the notes of one PT_NOTE in memory. */
static const void *find_in_notes(const unsigned char *p, size_t size, const char *owner, uint32_t type,
                                 size_t *len) {
  size_t owner_len = strlen(owner) + 1, off = 0;
  while (off + sizeof(ElfW(Nhdr)) <= size) {
    const ElfW(Nhdr) *n = (const void *)(p + off);
    size_t name_off = off + sizeof *n;
    size_t desc_off = name_off + ((n->n_namesz + 3) & ~3u);
    size_t next = desc_off + ((n->n_descsz + 3) & ~3u);
    if (next > size || desc_off > size) return NULL;
    if (n->n_type == type && n->n_namesz == owner_len && !memcmp(p + name_off, owner, owner_len)) {
      *len = n->n_descsz;
      return p + desc_off;
    }
    off = next;
  }
  return NULL;
}

const void *imgdump__own_note(const struct imgdump__own_image *img, const char *owner, uint32_t type, size_t *len) {
  for (size_t i = 0; i < img->phnum; i++) {
    const ElfW(Phdr) *ph = &img->phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const void *d = find_in_notes((const unsigned char *)(uintptr_t)(img->bias + ph->p_vaddr), ph->p_memsz,
                                  owner, type, len);
    if (d) return d;
  }
  return NULL;
}

int imgdump__build_id_hex(uint64_t base, const ElfW(Phdr) *phdr, size_t phnum, char *hex, size_t cap) {
  for (size_t i = 0; i < phnum; i++) {
    if (phdr[i].p_type != PT_NOTE) continue;
    size_t len;
    const unsigned char *d = find_in_notes((const unsigned char *)(uintptr_t)(base + phdr[i].p_vaddr),
                                           phdr[i].p_memsz, "GNU", NT_GNU_BUILD_ID, &len);
    if (!d || len * 2 + 1 > cap) continue;
    static const char digits[] = "0123456789abcdef";
    for (size_t k = 0; k < len; k++) {
      hex[2 * k] = digits[d[k] >> 4];
      hex[2 * k + 1] = digits[d[k] & 15];
    }
    hex[2 * len] = 0;
    return 0;
  }
  return -1;
}

struct iter_ctx {
  int (*fn)(const struct library_fact *, void *);
  void *arg;
  int index;
};

static int iterate_one(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct iter_ctx *ctx = data;
  if (ctx->index++ == 0) return 0; /* the first object is the main program */
  if (!info->dlpi_name || !info->dlpi_name[0] || !strncmp(info->dlpi_name, "linux-vdso", 10) ||
      !strncmp(info->dlpi_name, "linux-gate", 10))
    return 0; /* the vDSO changes with the kernel and is not a file */
  char hex[129];
  struct library_fact f = {info->dlpi_name, info->dlpi_addr, NULL};
  if (imgdump__build_id_hex(info->dlpi_addr, info->dlpi_phdr, info->dlpi_phnum, hex, sizeof hex) == 0) f.build_id = hex;
  return ctx->fn(&f, ctx->arg);
}

int imgdump__for_each_library(int (*fn)(const struct library_fact *, void *), void *arg) {
  struct iter_ctx ctx = {fn, arg, 0};
  return dl_iterate_phdr(iterate_one, &ctx);
}

char *imgdump__read_proc_file(struct scratch *s, const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = imgdump__scratch_alloc(s, cap);
  for (;;) {
    if (!buf) { close(fd); return NULL; }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) { close(fd); return NULL; }
    if (r == 0) break;
    n += (size_t)r;
    if (n + 1 == cap) { /* grow: copy into a bigger block (the arena never frees) */
      char *bigger = imgdump__scratch_alloc(s, cap * 4);
      if (bigger) memcpy(bigger, buf, n);
      buf = bigger;
      cap *= 4;
    }
  }
  close(fd);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}
