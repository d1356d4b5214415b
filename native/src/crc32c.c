/*
 * crc32c.c — CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of image
 * payloads; must equal @node-rs/crc32's crc32c(). SSE4.2's crc32 instruction when the CPU
 * has it (checked once with cpuid), a slicing-by-8 table otherwise. Chaining: pass the
 * previous result as `crc` (0 to start), like zlib's crc32().
 */
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static int table_ready; /* built on first use; racing builders write identical values */

static void build_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1)));
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
  __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc_table(uint32_t c, const unsigned char *p, size_t n) {
  if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_table();
  while (n && ((uintptr_t)p & 7)) c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff], n--;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= c;
    c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
        table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
        table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    p += 8, n -= 8;
  }
  while (n--) c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* One 8-byte stream: ~8 GB/s, well above what the file writes around it sustain. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p, size_t n) {
  uint64_t c0 = c;
  while (n && ((uintptr_t)p & 7)) c0 = _mm_crc32_u8((uint32_t)c0, *p++), n--;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c0 = _mm_crc32_u64(c0, w);
    p += 8, n -= 8;
  }
  while (n--) c0 = _mm_crc32_u8((uint32_t)c0, *p++);
  return (uint32_t)c0;
}

/* A CPU fact: process-local (zeroed in a saved image, so re-detected after restore). */
IMGDUMP_PROCESS_LOCAL static int sse42_known, sse42;

static int have_sse42(void) {
  if (!sse42_known) {
    __builtin_cpu_init();
    sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    sse42_known = 1;
  }
  return sse42;
}
#endif

/* The table path alone, for tests that compare both paths. */
uint32_t imgdump__crc32c_sw(uint32_t crc, const void *p, size_t n) { return ~crc_table(~crc, p, n); }

uint32_t imgdump__crc32c(uint32_t crc, const void *p, size_t n) {
  uint32_t c = ~crc;
#if defined(__x86_64__)
  if (have_sse42()) return ~crc_hw(c, p, n);
#endif
  return ~crc_table(c, p, n);
}
