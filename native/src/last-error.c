/* last-error.c — the detail text behind the last failing call (imgdump_last_error). */
#include <stdarg.h>
#include <stdio.h>

#include "imgdump.h"
#include "internal.h"

/* Process-local: a message from the saving run must not reappear in the restored one. */
IMGDUMP_PROCESS_LOCAL static struct {
  char text[1024];
} last;

void imgdump__set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last.text, sizeof last.text, fmt, ap);
  va_end(ap);
}

const char *imgdump_last_error(void) {
  return last.text;
}
