/*
 * json-lite.h — the JSON subset of the save protocol (docs/protocol.md): objects, arrays,
 * strings (with \" \\ \n \t \uXXXX escapes), numbers, true/false/null. Parsed into a scratch
 * arena (no heap use during a save). Writing is done with jw_* helpers into a bounded buffer.
 */
#ifndef IMGDUMP_JSON_LITE_H
#define IMGDUMP_JSON_LITE_H

#include <stddef.h>
#include <stdint.h>
#include "scratch.h"

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
  enum jtype type;
  double num;
  const char *str;      /* J_STR; object member name for members */
  struct jval *child;   /* first element / member (J_ARR, J_OBJ) */
  struct jval *next;    /* next sibling */
  const char *key;      /* member name when inside an object */
  int boolean;
};

/* Parse a NUL-terminated line; NULL on syntax error or arena exhaustion. */
struct jval *imgdump__json_parse(struct scratch *s, const char *text);
const struct jval *imgdump__json_get(const struct jval *obj, const char *key);
const char *imgdump__json_str(const struct jval *obj, const char *key);   /* NULL if absent / not a string */
int imgdump__json_num(const struct jval *obj, const char *key, double *out); /* 0 or -1 */
/* A "0x…" hex string member as uint64; 0 on success, -1 otherwise. */
int imgdump__json_hex(const struct jval *obj, const char *key, uint64_t *out);

/* Bounded writer: appends; `overflow` is set when the buffer was too small. */
struct jw {
  char *buf;
  size_t cap;
  size_t len;
  int overflow;
};
void imgdump__jw_raw(struct jw *w, const char *s);
void imgdump__jw_fmt(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imgdump__jw_str(struct jw *w, const char *s); /* quoted and escaped */
void imgdump__jw_hex(struct jw *w, uint64_t v);    /* "0x…" */

#endif
