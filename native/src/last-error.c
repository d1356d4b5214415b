/* last-error.c — the detail text behind the last failing call (imgdump_last_error). */
#include <stdarg.h>
#include <stdio.h>

#include "imgdump.h"
#include "internal.h"
#include "per-exec.h"

/* Per exec: a message from the saving run must not reappear in the restored one. */
static struct {
  struct per_exec_token token;
  char text[1024];
} last;

void imgdump__set_error(const char *fmt, ...) {
  per_exec_stale(&last.token);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last.text, sizeof last.text, fmt, ap);
  va_end(ap);
}

const char *imgdump_last_error(void) {
  if (per_exec_stale(&last.token)) last.text[0] = 0;
  return last.text;
}
