/*
 * manifest-read.h — the manifest (images/README.md, version 1) as libimgdump sees it: read
 * in place from the PT_NOTE the loader mapped, never from the file. Only the fields the
 * restore checks need are decoded; the planner (TypeScript) owns the format.
 */
#ifndef IMGDUMP_MANIFEST_READ_H
#define IMGDUMP_MANIFEST_READ_H

#include <stddef.h>
#include <stdint.h>

#define MANIFEST_NOTE_OWNER "IMGDUMP"
#define MANIFEST_NOTE_TYPE 0x31474d49u /* "IMG1" */
#define MANIFEST_VERSION 1u
#define MANIFEST_HEADER_SIZE 168u
#define MANIFEST_LIBRARY_SIZE 24u
#define MANIFEST_SEGMENT_SIZE 48u
#define MANIFEST_PAYLOAD_SIZE 24u
#define MANIFEST_UNDO_SIZE 16u

#define MANIFEST_FLAG_PIE 1u
#define MANIFEST_FLAG_NO_RANDOMIZE 2u
#define MANIFEST_FLAG_STACK_UNLIMITED 4u

#define SEGMENT_ROLE_DATA 1u
#define SEGMENT_ROLE_HEAP 2u
#define SEGMENT_ROLE_REGION 3u
#define SEGMENT_ROLE_RESERVE 4u

struct manifest {
  const unsigned char *bytes;
  uint32_t total_size;
  uint64_t generation;
  uint64_t heap_header;
  uint64_t load_bias;
  uint64_t stack_limit;
  uint32_t flags;
  uint32_t n_libraries, n_segments;
  const unsigned char *libraries, *segments, *blob;
  uint32_t blob_size;
};

struct imgdump__manifest_library {
  uint64_t base;
  const char *path;     /* NULL if none */
  const char *build_id; /* NULL if none */
};

struct imgdump__manifest_segment {
  uint32_t role;
  uint64_t address, mem_size, file_offset, file_size;
};

/* Validate and decode `len` bytes at `p`. Returns 0 or a negative reason:
 * -1 bad magic/version, -2 sizes out of bounds, -3 checksum mismatch. */
int imgdump__manifest_decode(const void *p, size_t len, struct manifest *m);
void imgdump__manifest_library(const struct manifest *m, uint32_t i, struct imgdump__manifest_library *out);
void imgdump__manifest_segment(const struct manifest *m, uint32_t i, struct imgdump__manifest_segment *out);

#endif
