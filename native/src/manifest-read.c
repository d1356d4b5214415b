#include "manifest-read.h"

#include <string.h>
#include "internal.h"

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A blob string reference, or NULL when absent or not NUL-terminated inside the blob. */
static const char *blob_str(const struct manifest *m, uint32_t off) {
  if (off == 0xffffffffu || off >= m->blob_size) return NULL;
  if (!memchr(m->blob + off, 0, m->blob_size - off)) return NULL;
  return (const char *)m->blob + off;
}

int imgdump__manifest_decode(const void *p, size_t len, struct manifest *m) {
  const unsigned char *b = p;
  memset(m, 0, sizeof *m);
  if (len < MANIFEST_HEADER_SIZE || memcmp(b, "IMGDMNF1", 8) || rd32(b + 8) != MANIFEST_VERSION) return -1;
  uint32_t header_size = rd32(b + 12), total = rd32(b + 16);
  if (header_size != MANIFEST_HEADER_SIZE || total > len || total < header_size) return -2;
  uint64_t need = header_size + (uint64_t)rd32(b + 72) * MANIFEST_LIBRARY_SIZE +
                  (uint64_t)rd32(b + 76) * MANIFEST_SEGMENT_SIZE + (uint64_t)rd32(b + 80) * MANIFEST_PAYLOAD_SIZE +
                  (uint64_t)rd32(b + 84) * MANIFEST_UNDO_SIZE + rd32(b + 88);
  if (need != total) return -2;
  /* CRC32C over the whole manifest with the crc field taken as zero. */
  static const unsigned char zero[4];
  uint32_t crc = imgdump__crc32c(0, b, 20);
  crc = imgdump__crc32c(crc, zero, 4);
  crc = imgdump__crc32c(crc, b + 24, total - 24);
  if (crc != rd32(b + 20)) return -3;
  m->bytes = b;
  m->total_size = total;
  m->generation = rd64(b + 24);
  m->heap_header = rd64(b + 40);
  m->load_bias = rd64(b + 48);
  m->stack_limit = rd64(b + 56);
  m->flags = rd32(b + 64);
  m->n_libraries = rd32(b + 72);
  m->n_segments = rd32(b + 76);
  m->libraries = b + header_size;
  m->segments = m->libraries + (size_t)m->n_libraries * MANIFEST_LIBRARY_SIZE;
  m->blob_size = rd32(b + 88);
  m->blob = b + total - m->blob_size;
  return 0;
}

void imgdump__manifest_library(const struct manifest *m, uint32_t i, struct imgdump__manifest_library *out) {
  const unsigned char *r = m->libraries + (size_t)i * MANIFEST_LIBRARY_SIZE;
  out->base = rd64(r);
  out->path = blob_str(m, rd32(r + 8));
  out->build_id = blob_str(m, rd32(r + 12));
}

void imgdump__manifest_segment(const struct manifest *m, uint32_t i, struct imgdump__manifest_segment *out) {
  const unsigned char *r = m->segments + (size_t)i * MANIFEST_SEGMENT_SIZE;
  out->role = rd32(r);
  out->address = rd64(r + 8);
  out->mem_size = rd64(r + 16);
  out->file_offset = rd64(r + 24);
  out->file_size = rd64(r + 32);
}
