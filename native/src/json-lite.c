#include "json-lite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
  struct scratch *s;
  const char *p;
  int depth;
};

static void skip_ws(struct parser *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n') ps->p++;
}

static struct jval *parse_value(struct parser *ps);

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes a string literal at ps->p (which points at the opening quote). */
static const char *parse_string(struct parser *ps) {
  const char *q = ps->p + 1;
  size_t n = 0;
  while (q[n] && q[n] != '"') n += (q[n] == '\\' && q[n + 1]) ? 2 : 1;
  if (q[n] != '"') return NULL;
  char *out = imgdump__scratch_alloc(ps->s, n * 3 + 1); /* \uXXXX expands to at most 3 UTF-8 bytes */
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = q[i];
    if (c != '\\') { out[o++] = c; continue; }
    c = q[++i];
    switch (c) {
    case 'n': out[o++] = '\n'; break;
    case 't': out[o++] = '\t'; break;
    case 'r': out[o++] = '\r'; break;
    case 'b': out[o++] = '\b'; break;
    case 'f': out[o++] = '\f'; break;
    case 'u': {
      if (i + 4 >= n + 1) return NULL;
      int v = 0;
      for (int k = 1; k <= 4; k++) {
        int h = hexval(q[i + k]);
        if (h < 0) return NULL;
        v = v * 16 + h;
      }
      i += 4;
      if (v < 0x80) out[o++] = (char)v;
      else if (v < 0x800) { out[o++] = (char)(0xc0 | (v >> 6)); out[o++] = (char)(0x80 | (v & 0x3f)); }
      else { out[o++] = (char)(0xe0 | (v >> 12)); out[o++] = (char)(0x80 | ((v >> 6) & 0x3f)); out[o++] = (char)(0x80 | (v & 0x3f)); }
      break;
    }
    default: out[o++] = c; break; /* \" \\ \/ */
    }
  }
  out[o] = 0;
  ps->p = q + n + 1;
  return out;
}

static struct jval *parse_container(struct parser *ps, int is_obj) {
  struct jval *v = imgdump__scratch_alloc(ps->s, sizeof *v);
  if (!v || ++ps->depth > 32) return NULL;
  v->type = is_obj ? J_OBJ : J_ARR;
  ps->p++;
  struct jval **tail = &v->child;
  skip_ws(ps);
  if (*ps->p == (is_obj ? '}' : ']')) { ps->p++; ps->depth--; return v; }
  for (;;) {
    const char *key = NULL;
    skip_ws(ps);
    if (is_obj) {
      if (*ps->p != '"' || !(key = parse_string(ps))) return NULL;
      skip_ws(ps);
      if (*ps->p++ != ':') return NULL;
    }
    struct jval *item = parse_value(ps);
    if (!item) return NULL;
    item->key = key;
    *tail = item;
    tail = &item->next;
    skip_ws(ps);
    if (*ps->p == ',') { ps->p++; continue; }
    if (*ps->p++ != (is_obj ? '}' : ']')) return NULL;
    ps->depth--;
    return v;
  }
}

static struct jval *parse_value(struct parser *ps) {
  skip_ws(ps);
  char c = *ps->p;
  if (c == '{' || c == '[') return parse_container(ps, c == '{');
  struct jval *v = imgdump__scratch_alloc(ps->s, sizeof *v);
  if (!v) return NULL;
  if (c == '"') {
    v->type = J_STR;
    v->str = parse_string(ps);
    return v->str ? v : NULL;
  }
  if (!strncmp(ps->p, "true", 4) || !strncmp(ps->p, "false", 5)) {
    v->type = J_BOOL;
    v->boolean = c == 't';
    ps->p += v->boolean ? 4 : 5;
    return v;
  }
  if (!strncmp(ps->p, "null", 4)) { v->type = J_NULL; ps->p += 4; return v; }
  char *end;
  v->num = strtod(ps->p, &end); /* strtod does not allocate */
  if (end == ps->p) return NULL;
  v->type = J_NUM;
  ps->p = end;
  return v;
}

struct jval *imgdump__json_parse(struct scratch *s, const char *text) {
  struct parser ps = {s, text, 0};
  struct jval *v = parse_value(&ps);
  if (!v) return NULL;
  skip_ws(&ps);
  return *ps.p ? NULL : v;
}

const struct jval *imgdump__json_get(const struct jval *obj, const char *key) {
  if (!obj || obj->type != J_OBJ) return NULL;
  for (const struct jval *m = obj->child; m; m = m->next)
    if (m->key && !strcmp(m->key, key)) return m;
  return NULL;
}

const char *imgdump__json_str(const struct jval *obj, const char *key) {
  const struct jval *v = imgdump__json_get(obj, key);
  return v && v->type == J_STR ? v->str : NULL;
}

int imgdump__json_num(const struct jval *obj, const char *key, double *out) {
  const struct jval *v = imgdump__json_get(obj, key);
  if (!v || v->type != J_NUM) return -1;
  *out = v->num;
  return 0;
}

int imgdump__json_hex(const struct jval *obj, const char *key, uint64_t *out) {
  const char *s = imgdump__json_str(obj, key);
  if (!s || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || !s[2]) return -1;
  uint64_t v = 0;
  for (const char *p = s + 2; *p; p++) {
    int h = hexval(*p);
    if (h < 0 || v >> 60) return -1;
    v = v << 4 | (uint64_t)h;
  }
  *out = v;
  return 0;
}

void imgdump__jw_raw(struct jw *w, const char *s) {
  size_t n = strlen(s);
  if (w->len + n + 1 > w->cap) { w->overflow = 1; return; }
  memcpy(w->buf + w->len, s, n + 1);
  w->len += n;
}

void imgdump__jw_fmt(struct jw *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = w->len < w->cap ? w->cap - w->len : 0;
  int n = vsnprintf(w->buf + w->len, room, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= room) { w->overflow = 1; if (room) w->buf[w->len] = 0; return; }
  w->len += (size_t)n;
}

void imgdump__jw_str(struct jw *w, const char *s) {
  imgdump__jw_raw(w, "\"");
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') imgdump__jw_fmt(w, "\\%c", c);
    else if (c < 0x20) imgdump__jw_fmt(w, "\\u%04x", c);
    else { char one[2] = {(char)c, 0}; imgdump__jw_raw(w, one); }
  }
  imgdump__jw_raw(w, "\"");
}

void imgdump__jw_hex(struct jw *w, uint64_t v) {
  imgdump__jw_fmt(w, "\"0x%llx\"", (unsigned long long)v);
}
